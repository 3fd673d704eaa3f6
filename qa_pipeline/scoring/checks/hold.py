"""`hold`: every wait longer than `max_wait_s` is announced before and thanked for after."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from qa_pipeline.records import FAIL, NA, PASS
from qa_pipeline.scoring.checks.context import SLACK_S, Call, Hit, Verdict, hits_verdict, said_at, wait_text
from qa_pipeline.scoring.checks.kind import Kind
from qa_pipeline.scoring.matching import Phrase
from qa_pipeline.scoring.rubric_reader import RubricReader
from qa_pipeline.scoring.rubric_records import Centre, Item


@dataclass(frozen=True)
class HoldCheck:
    max_wait_s: float = 7.0
    before: tuple[Phrase, ...] = ()  # announcement, said within `within_s` before the wait
    after: tuple[Phrase, ...] = ()  # thanks/apology, said within `within_s` after it
    within_s: float = 15.0
    type: str = "hold"


def parse(r: RubricReader, node: yaml.Node, m: dict[str, yaml.Node], where: str, weight: float) -> HoldCheck:
    return HoldCheck(
        max_wait_s=r.number_at(m, "max_wait_s", where, 7.0),
        before=r.phrases(r.require(m, node, "before", where), f"{where}: before"),
        after=r.phrases(r.require(m, node, "after", where), f"{where}: after"),
        within_s=r.number_at(m, "within_s", where, 15.0),
    )


def judge(call: Call, item: Item, c: HoldCheck, after: float | None) -> Verdict:
    waits = call.waits(c.max_wait_s)
    if not waits:
        return call.verdict(NA, "hold.none", {"s": f"{c.max_wait_s:g}"})
    segs = call.eligible(item.speaker)
    before_hits = call.hits(call.spoken_in(segs, [(w.start - c.within_s, w.start + SLACK_S) for w in waits]), c.before)
    after_hits = call.hits(call.spoken_in(segs, [(w.end - SLACK_S, w.end + c.within_s) for w in waits]), c.after)
    good: list[Hit] = []
    for w in waits:
        pre = [h for h in before_hits if w.start - c.within_s <= h.end <= w.start + SLACK_S]
        post = [h for h in after_hits if w.end - SLACK_S <= h.start <= w.end + c.within_s]
        if not pre or not post:
            code = "hold.unannounced" if not pre and post else "hold.unthanked" if pre else "hold.neither"
            return call.verdict(
                FAIL, code,
                {"len": f"{w.length:.1f}", "a": f"{w.start:.1f}", "b": f"{w.end:.1f}",
                 "before": c.before[0].source, "after": c.after[0].source},
                evidence_text=wait_text(w), start=w.start, end=w.end, matched_by="timeline",
                needs_review=call.low_confidence(w.before) or call.low_confidence(w.after),
            )  # fmt: skip
        good.extend((pre[-1], post[0]))
    first = waits[0]
    return hits_verdict(call, PASS, good, "hold.ok",
                        {"n": len(waits), "len": f"{first.length:.1f}", "a": f"{first.start:.1f}",
                         "b": f"{first.end:.1f}", "before": said_at(call, good[0]), "after": said_at(call, good[1])})


def hotwords(c: HoldCheck, centre: Centre) -> tuple[Phrase, ...]:
    return c.before + c.after


KIND = Kind("hold", HoldCheck, ("type", "max_wait_s", "before", "after", "within_s"), parse, judge, hotwords)
