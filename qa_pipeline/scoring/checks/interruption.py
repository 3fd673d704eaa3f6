"""`interruption`: the agent does not talk over the customer for more than `max_overlap_s` (stereo only)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from qa_pipeline.records import AGENT, CUSTOMER, FAIL, NA, PASS, UNKNOWN
from qa_pipeline.scoring.checks.context import Call, Seg, Verdict
from qa_pipeline.scoring.checks.kind import Kind
from qa_pipeline.scoring.rubric_reader import RubricReader
from qa_pipeline.scoring.rubric_records import Item


@dataclass(frozen=True)
class InterruptionCheck:
    max_overlap_s: float = 1.0
    type: str = "interruption"


def parse(r: RubricReader, node: yaml.Node, m: dict[str, yaml.Node], where: str, weight: float) -> InterruptionCheck:
    return InterruptionCheck(max_overlap_s=r.number_at(m, "max_overlap_s", where, 1.0, above=False))


def judge(call: Call, item: Item, c: InterruptionCheck, after: float | None) -> Verdict:
    if call.t.n_channels < 2:
        return call.verdict(NA, "interruption.mono")
    if any(s.utt.speaker == UNKNOWN for s in call.segs):
        return call.verdict(NA, "interruption.unseparated")
    worst: tuple[float, Seg] | None = None
    for o in call.timeline.overlaps:
        if o.second == AGENT and o.first == CUSTOMER and (worst is None or o.seconds > worst[0]):
            worst = (o.seconds, call.by_id[o.utterance_id])
    if worst is not None and worst[0] > c.max_overlap_s:
        overlap, seg = worst
        return call.verdict(FAIL, "interruption.talks_over", {"len": f"{overlap:.1f}", "t": f"{seg.utt.start:.1f}"},
                            evidence_text=seg.utt.text, start=seg.utt.start, end=seg.utt.end, matched_by="timeline")
    longest = worst[0] if worst else 0.0
    return call.verdict(
        PASS, "interruption.ok", {"max": f"{c.max_overlap_s:g}", "len": f"{longest:.1f}"},
        evidence_text=call.say("evidence.no_overlap") if worst is None else worst[1].utt.text,
        start=0.0 if worst is None else worst[1].utt.start,
        end=call.t.duration_s if worst is None else worst[1].utt.end,
        matched_by="timeline",
    )


KIND = Kind("interruption", InterruptionCheck, ("type", "max_overlap_s"), parse, judge)
