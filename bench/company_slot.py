"""Who the centre is without a file: the words between the greeting and the self, measured (issue 23).

    .venv/bin/python bench/company_slot.py --corpus ../shared/dev-calls=/tmp/qa-dev \\
        --corpus ../shared/dev-calls-2=/tmp/qa-dev2 --corpus ../corpora/dev-calls-3=/tmp/qa-dev3

For every call (Whisper text of each `=OUT`; the reference turns too), the default rubric's
self-introduction is run with its company slot (checks/introduction.slot_company: 2-8 characters after the
greeting, up to the first self hit, not_company applied) and every slot taken as a company is
compared with the labels: right when the label names that company (the label's "company 'X'", or the
opening it quotes on a passed item; at least half of the slot's toneless syllables among X's); a false
accept when the label says the agent named no company, or names another one (a customer's name, a
product, a greeting).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from generalisation import metas  # noqa: E402
from qa_pipeline.output.tables import read_transcripts  # noqa: E402
from qa_pipeline.records import AGENT, CallMeta, CallTranscript, Utterance  # noqa: E402
from qa_pipeline.scoring.checks import introduction  # noqa: E402
from qa_pipeline.scoring.checks.context import Call, in_window  # noqa: E402
from qa_pipeline.scoring.normalize import normalize_text, to_pinyin  # noqa: E402
from qa_pipeline.scoring.rubric import IntroductionCheck, load_rubric, rubric_path_default  # noqa: E402

# company 'X' / company (X) (dev-calls-5), hotline (X) (dev-calls-8)
_COMPANY = re.compile(r"(?:company|hotline) (?:'([^']+)'|\(([^)]+)\))")
_QUOTED = re.compile(r"'([^']+)'")
# dev-calls-6: "X and <name> at 2.4 s"; dev-calls-13: "X + 调度员田颖 at 5.8 s"
_LEADING = re.compile(r"^(?:company )?([^\s'(]+) (?:and|\+) ")
# dev-calls-7: "0.4 s: X + 我是小蒋", "7.2 s: X的刘师傅"; dev-calls-9: "5.9 s: X and 课程老师蒋婉清";
# dev-calls-10: "7.8 s X + 我是小韩", "0.3 s X: company and department only"; dev-calls-11: "0.4 s: X (the company) only"
_AFTER_TIME = re.compile(r"^[\d.]+ s:? ([^\s+:]+?)(?: \+ | and | only| \(|:|$|的)")


def slots(transcript: CallTranscript, meta: CallMeta, rubric) -> list[str]:
    item = next(i for i in rubric.items if isinstance(i.check, IntroductionCheck))
    c = item.check
    call = Call(transcript, meta, rubric)
    segs = introduction.opening(call, item.speaker, c.window)
    selves = [h for h in call.hits(segs, c.self) if in_window(call, h, c.window)]
    if c.use_metadata:
        selves += introduction.self_from_meta(call, segs)
    return [h.match.phrase for h in introduction.slot_company(call, segs, selves, c)]


def same_name(slot: str, name: str) -> bool:
    a, b = to_pinyin(normalize_text(slot)), to_pinyin(normalize_text(name))
    shared = sum(1 for s in set(a) if s in b)
    return shared * 2 >= len(set(a)) or shared >= 2  # a garbled name (新人水雾 for 清源水务) still shares syllables


def reference(call_id: str, label: dict) -> CallTranscript:
    utts = tuple(Utterance(f"{call_id}-{n}", call_id, t["speaker"], 0 if t["speaker"] == AGENT else 1, t["start"],
                           t["end"], t["text"], t["text"], -0.2, 0.01) for n, t in enumerate(label["turns"]))
    return CallTranscript(call_id, label.get("duration", 0.0), 2, utts, "reference", ())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", required=True, help="DIR=OUT")
    args = parser.parse_args()
    rubric = load_rubric(rubric_path_default())
    totals = {"reference": [0, 0, 0], "whisper": [0, 0, 0]}  # slots taken, right, false accepts
    lines = []
    for spec in args.corpus:
        corpus, _, out = spec.partition("=")
        labels = json.loads((Path(corpus) / "labels.json").read_text(encoding="utf-8"))
        transcripts = read_transcripts(Path(out))
        for meta in metas(Path(out)):
            label = labels.get(meta.call_id)
            if label is None:
                continue
            why = label["why"].get("self_introduction", "")
            # dev-calls(-2): "company 'X' and …", dev-calls-5 "company (X) and …"; dev-calls-3 quotes the
            # opening: "'X，我是…' at 0.4 s"; dev-calls-6: "X and 张老师 at 2.4 s"; dev-calls-7: "0.4 s: X + …"
            # (the forms of the later sets beside the patterns above)
            passed = label["items"].get("self_introduction") == "pass"
            named = _COMPANY.search(why) or (_QUOTED.search(why) or _LEADING.search(why) or _AFTER_TIME.search(why)
                                             if passed else None)
            for kind, t in (("reference", reference(meta.call_id, label)), ("whisper", transcripts.get(meta.call_id))):
                if t is None:
                    continue
                for slot in slots(t, meta, rubric):
                    row = totals[kind]
                    row[0] += 1
                    if named and same_name(slot, next(g for g in named.groups() if g)):
                        row[1] += 1
                    else:
                        row[2] += 1
                        lines.append(f"  {kind:<9} {Path(corpus).name} {meta.call_id}: slot '{slot}' — label: {why[:70]}")
    print("company slot (no centre file): slots taken as the company, right, false accepts")
    for kind, (n, right, false) in totals.items():
        print(f"  {kind:<10} {n:>4} taken  {right:>4} right  {false:>4} false accepts")
    print("false accepts:" if lines else "false accepts: none")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
