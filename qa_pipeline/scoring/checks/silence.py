"""`silence`: no dead air longer than `max_s` unless someone said why just before it."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from qa_pipeline.records import FAIL, NA, PASS
from qa_pipeline.scoring.checks.context import SLACK_S, Call, Verdict, wait_text
from qa_pipeline.scoring.checks.kind import Kind
from qa_pipeline.scoring.matching import Phrase
from qa_pipeline.scoring.rubric_reader import RubricReader
from qa_pipeline.scoring.rubric_records import Item


@dataclass(frozen=True)
class SilenceCheck:
    max_s: float = 7.0
    excused_by: tuple[Phrase, ...] = ()  # said by anyone just before the silence: not dead air
    within_s: float = 15.0
    type: str = "silence"


def parse(r: RubricReader, node: yaml.Node, m: dict[str, yaml.Node], where: str, weight: float) -> SilenceCheck:
    return SilenceCheck(max_s=r.number_at(m, "max_s", where, 7.0), excused_by=r.phrases_at(m, "excused_by", where),
                        within_s=r.number_at(m, "within_s", where, 15.0))


def judge(call: Call, item: Item, c: SilenceCheck, after: float | None) -> Verdict:
    if not call.segs:
        return call.verdict(NA, "silence.no_speech")
    waits = call.waits(c.max_s)
    near = call.spoken_in(call.segs, [(w.start - c.within_s, w.start + SLACK_S) for w in waits])
    excuses = call.hits(near, c.excused_by) if c.excused_by and near else []
    for w in waits:
        if not any(w.start - c.within_s <= h.end <= w.start + SLACK_S for h in excuses):
            return call.verdict(FAIL, "silence.unexplained",
                                {"len": f"{w.length:.1f}", "a": f"{w.start:.1f}", "b": f"{w.end:.1f}"},
                                evidence_text=wait_text(w), start=w.start, end=w.end, matched_by="timeline")
    gaps = call.waits(0.0)
    if gaps:
        g = max(gaps, key=lambda g: g.length)
        return call.verdict(PASS, "silence.ok_longest",
                            {"max": f"{c.max_s:g}", "len": f"{g.length:.1f}", "a": f"{g.start:.1f}"},
                            evidence_text=wait_text(g), start=g.start, end=g.end, matched_by="timeline")
    return call.verdict(PASS, "silence.ok", {"max": f"{c.max_s:g}"}, evidence_text=call.segs[0].utt.text,
                        start=call.segs[0].utt.start, end=call.speech_end, matched_by="timeline")


KIND = Kind("silence", SilenceCheck, ("type", "max_s", "excused_by", "within_s"), parse, judge)
