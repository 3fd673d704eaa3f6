"""Why customers called: group purity and coverage, and accuracy with a pinned reason list, on the
dev corpora, where each call's scenario is known.

    .venv/bin/python bench/reasons.py --corpus ../shared/dev-calls=/tmp/qa-dev --corpus ../shared/dev-calls-2=/tmp/qa-dev2

Each `--corpus DIR=OUT` names a labelled corpus and the OUT of a `qa run` on it (Whisper's text);
all calls together are one period. Truth: bench/reasons_truth.yaml (five coarse classes from the
scripts' scenarios). Reference text = the customer's turns as scripted (labels.json), Whisper text
= the transcript in OUT. Groups (no pinned reasons): purity = of the calls in a named group, the
share whose class is their group's most common one; coverage = the share of calls in a named group
(not 其他). Pinned (bench/reasons_pinned.yaml, example sentences written apart from the dev calls):
accuracy = the share of calls given their class (a call left in 其他 counts as wrong).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_pipeline.morning import call_text, default_embeddings  # noqa: E402
from qa_pipeline.output.tables import read_transcripts  # noqa: E402
from qa_pipeline.reasons.assign import assign  # noqa: E402
from qa_pipeline.reasons.pinned import MIN_SIMILARITY, OTHER, PinnedVectors, ReasonsConfig, parse_reasons  # noqa: E402
from qa_pipeline.records import CallTranscript, Utterance  # noqa: E402
from qa_pipeline.review.policy import Reader  # noqa: E402
from qa_pipeline.yaml_nodes import compose_text  # noqa: E402


def reference(corpus: Path) -> dict[str, CallTranscript]:
    labels = json.loads((corpus / "labels.json").read_text(encoding="utf-8"))
    return {c: CallTranscript(c, lab["duration"], 2, tuple(
        Utterance(f"{c}-{k:05d}", c, t["speaker"], 0, t["start"], t["end"], t["text"], t["text"], 0.0, 0.0)
        for k, t in enumerate(lab["turns"])), "reference") for c, lab in labels.items()}


def pinned_config(path: Path) -> ReasonsConfig:
    text = path.read_text(encoding="utf-8")
    r = Reader(str(path))
    root = r.mapping(compose_text(text, str(path), r.error_type), "file", ("reasons",))
    return parse_reasons(r, root["reasons"])


def groups_line(period, truth: dict[str, str]) -> tuple[str, list[str]]:
    named = [g for g in period.groups if g.name != OTHER]
    in_groups = sum(len(g.call_ids) for g in named)
    pure = sum(Counter(truth[c] for c in g.call_ids).most_common(1)[0][1] for g in named)
    n = len(period.reasons)
    detail = [f"      {g.name}: " + ", ".join(f"{c}({truth[c]})" for c in g.call_ids) for g in named]
    return (f"{len(named)} groups, coverage {in_groups}/{n} = {in_groups / n:.0%}, "
            f"purity {pure}/{max(1, in_groups)} = {pure / max(1, in_groups):.0%}"), detail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", required=True, help="DIR=OUT")
    parser.add_argument("--truth", type=Path, default=ROOT / "bench" / "reasons_truth.yaml")
    parser.add_argument("--pinned", type=Path, default=ROOT / "bench" / "reasons_pinned.yaml")
    parser.add_argument("--show", action="store_true", help="list each group's calls and each wrong pinned call")
    args = parser.parse_args()
    truth = {c: k for k, calls in yaml.safe_load(args.truth.read_text(encoding="utf-8"))["classes"].items() for c in calls}
    embeddings = default_embeddings()
    texts: dict[str, dict[str, CallTranscript]] = {"reference": {}, "Whisper": {}}
    for spec in args.corpus:
        folder, _, out = spec.partition("=")
        texts["reference"].update(reference(Path(folder)))
        texts["Whisper"].update(read_transcripts(Path(out), words=False))
    pinned = pinned_config(args.pinned)
    pinned_vectors = PinnedVectors.of(pinned, embeddings)
    dim = embeddings.encoder.dim
    for kind, transcripts in texts.items():
        requests = [call_text(transcripts[c], embeddings).request for c in sorted(truth) if c in transcripts]
        print(f"\n{kind} text: {len(requests)} calls, {len(set(truth.values()))} classes")
        for similarity in (0.4, 0.5, 0.6):
            period = assign(requests, ReasonsConfig(group_similarity=similarity), None, dim)
            line, detail = groups_line(period, truth)
            print(f"  groups at cosine {similarity}{' (default)' if similarity == 0.5 else ''}: {line}")
            if args.show and similarity == 0.5:
                print("\n".join(detail))
        for floor in (0.3, 0.35, 0.4, 0.5):
            config = ReasonsConfig(pinned=pinned.pinned, min_similarity=floor)
            period = assign(requests, config, pinned_vectors, dim)
            right = sum(r.reason == truth[r.call_id] for r in period.reasons)
            other = sum(r.reason == OTHER for r in period.reasons)
            print(f"  pinned, min_similarity {floor}{' (default)' if floor == MIN_SIMILARITY else ''}: "
                  f"accuracy {right}/{len(period.reasons)} = {right / len(period.reasons):.1%} ({other} left in 其他)")
            if args.show and floor == MIN_SIMILARITY:
                for r in period.reasons:
                    if r.reason != truth[r.call_id]:
                        print(f"      {r.call_id} {truth[r.call_id]} -> {r.reason} ({r.score:.2f}): {r.request[:40]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
