"""Item agreement of the rubric alone: each labelled call's reference turns scored as if Whisper and the
speaker stage had made no mistake, against the human inspector's verdicts.

    .venv/bin/python bench/reference_agreement.py --dev-calls ../shared/dev-calls --dev-calls ../shared/dev-calls-2
    .venv/bin/python bench/reference_agreement.py --dev-calls bench/corpora/dev-calls-5 --list

`bench/agreement.py` measures the product (audio → transcript → roles → verdicts); this measures the
verdict rules and the meaning layer on their own, so that a change to them can be judged without
audio (labels.json and manifest.csv are enough: the corpora under bench/corpora keep no audio). The
reference turns carry one word per character, spread evenly over the turn; a recorded announcement
(label event `prompt`) becomes a `system` turn, a busy tone an audio event, as the pipeline gives them;
the call's metadata comes from manifest.csv, read as `qa run` reads it. Prints per folder and overall agreement and the
confusions (human verdict → ours); `--list` prints every disagreement with our reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from qa_pipeline.records import SYSTEM, CallTranscript, Utterance, Word  # noqa: E402


def with_prompts(t: CallTranscript, label: dict) -> CallTranscript:
    """The label's recorded announcements as `system` turns, in time order with the others."""
    prompts = []
    for n, e in enumerate(x for x in label["events"] if x["type"] == "prompt" and x.get("text")):
        text, step = e["text"], (e["end"] - e["start"]) / max(len(e["text"]), 1)
        words = tuple(Word(ch, e["start"] + i * step, e["start"] + (i + 1) * step, 0.9) for i, ch in enumerate(text))
        prompts.append(Utterance(f"{t.call_id}-p{n:03d}", t.call_id, SYSTEM, e.get("channel") or 0, e["start"], e["end"],
                                 text, text, -0.3, 0.05, words))
    if not prompts:
        return t
    return replace(t, utterances=tuple(sorted(t.utterances + tuple(prompts), key=lambda u: (u.start, u.end))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev-calls", type=Path, action="append", required=True,
                        help="a folder with labels.json and manifest.csv (repeat for several)")
    parser.add_argument("--rubric", type=Path, default=None, help="default: the bundled default rubric")
    parser.add_argument("--list", action="store_true", help="print every disagreement with our reason")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    from scoring import reference_transcripts

    from qa_pipeline.audio.discover import read_manifest
    from qa_pipeline.scoring.rubric import load_rubric, rubric_path_default
    from qa_pipeline.scoring.score import score_call

    rubric = load_rubric(args.rubric or rubric_path_default())
    agree = total = 0
    confusions: Counter[tuple[str, str, str]] = Counter()
    for folder in args.dev_calls:
        labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
        metas = {m.call_id: m for m in read_manifest(folder / "manifest.csv")}  # as `qa run` reads it
        n = a = 0
        for label, t in reference_transcripts(labels):
            score = score_call(with_prompts(t, label), metas[t.call_id], rubric, processed_at="reference")
            ours = {i.item_id: i for i in score.items}
            for item_id, want in sorted(label["items"].items()):
                if item_id not in ours:
                    continue
                n += 1
                got = ours[item_id].result
                if got == want:
                    a += 1
                    continue
                confusions[(item_id, want, got)] += 1
                if args.list:
                    print(f"  {folder.name} {t.call_id} {item_id}: human {want}, ours {got}: {ours[item_id].reason}")
        print(f"{folder.name:<16} {a}/{n} = {100 * a / max(n, 1):.1f}%")
        agree, total = agree + a, total + n
    print(f"overall          {agree}/{total} = {100 * agree / max(total, 1):.2f}%")
    for (item_id, want, got), k in confusions.most_common():
        print(f"  {k:3d}  {item_id}: {want} → {got}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
