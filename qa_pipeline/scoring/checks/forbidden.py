"""`forbidden`: each forbidden phrase the speaker says takes its points off (a critical one fails
the call), unless it was said inside its polite form (`unless`)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from qa_pipeline.meaning.judge import Closest
from qa_pipeline.records import AGENT, FAIL, PASS
from qa_pipeline.scoring.checks.context import (
    Call,
    Hit,
    Verdict,
    how_matched,
    overlaps,
    quotes,
    said_at,
    searched,
)
from qa_pipeline.scoring.checks.kind import Kind
from qa_pipeline.scoring.matching import BY_TEXT, Phrase
from qa_pipeline.scoring.rubric_reader import RubricReader
from qa_pipeline.scoring.rubric_records import Item


# A deduction by meaning needs a clause that says something of its own: a fragment of three or four
# characters (查到您, 不会吧) lands near some short example by accident. Listed phrases still match it.
MIN_MEANING_CHARS = 5


@dataclass(frozen=True)
class ForbiddenPhrase:
    phrase: Phrase
    points: float
    critical: bool = False
    unless: tuple[Phrase, ...] = ()  # a hit inside one of these is the polite form, not the forbidden one


@dataclass(frozen=True)
class ForbiddenCheck:
    phrases: tuple[ForbiddenPhrase, ...] = ()
    tolerance: float | None = 0
    points_per_hit: float | None = None  # None: the item's weight (a hit by meaning deducts this)
    type: str = "forbidden"


def parse(r: RubricReader, node: yaml.Node, m: dict[str, yaml.Node], where: str, weight: float) -> ForbiddenCheck:
    per_hit = (
        r.number(m["points_per_hit"], f"{where}: points_per_hit", above=True)
        if "points_per_hit" in m
        else weight
    )
    seq = r.require(m, node, "phrases", where)
    if not isinstance(seq, yaml.SequenceNode) or not seq.value:
        raise r.error(seq, f"{where}: phrases must be a non-empty list")
    out: list[ForbiddenPhrase] = []
    for entry in seq.value:
        if isinstance(entry, yaml.MappingNode):
            e = r.mapping(entry, f"{where}: forbidden phrase", ("phrase", "points", "critical", "unless"))
            phrase = r.phrase(r.require(e, entry, "phrase", f"{where}: forbidden phrase"), f"{where}: phrase")
            points = r.number(e["points"], f"{where}: points") if "points" in e else per_hit
            critical = r.boolean(e["critical"], f"{where}: critical") if "critical" in e else False
            unless = r.phrases(e["unless"], f"{where}: unless") if "unless" in e else ()
            out.append(ForbiddenPhrase(phrase, points, critical, unless))
        else:
            out.append(ForbiddenPhrase(r.phrase(entry, f"{where}: phrases"), per_hit))
    tolerance = r.number(m["tolerance"], f"{where}: tolerance") if "tolerance" in m else 0
    return ForbiddenCheck(phrases=tuple(out), tolerance=tolerance, points_per_hit=per_hit)


def judge(call: Call, item: Item, c: ForbiddenCheck, after: float | None) -> Verdict:
    segs = call.eligible(item.speaker)
    found: list[tuple[Hit, float, bool]] = []
    taken: list[tuple[int, int, int]] = []  # (seg, norm_start, norm_end) already counted
    for fp in c.phrases:
        excused = call.hits(segs, fp.unless) if fp.unless else []
        for h in call.hits(segs, (fp.phrase,), c.tolerance, strict_you=True):
            span = (h.seg.n, h.match.norm_start, h.match.norm_end)
            if any(s == span[0] and a < span[2] and span[1] < b for s, a, b in taken):
                continue
            if any(overlaps(h, e) for e in excused):
                continue
            taken.append(span)
            found.append((h, fp.points, fp.critical))
            break
    who = call.who(item.speaker)
    closest: dict[int, Closest] = {}  # id(hit) → the example a meaning hit came closest to
    if item.meaning is not None:
        # By meaning: the agent's own turns only (never the customer's words, nor unseparated speech),
        # one hit per utterance, none where a listed phrase already matched.
        mine = tuple(s for s in segs if s.utt.speaker == AGENT)
        taken_segs = {h.seg.n for h, _, _ in found}
        for close in call.by_meaning(item.meaning, mine):
            if close.seg in taken_segs or len(close.unit.text) < MIN_MEANING_CHARS:
                continue
            taken_segs.add(close.seg)
            h = call.meaning_hit(close)
            closest[id(h)] = close
            found.append((h, c.points_per_hit if c.points_per_hit is not None else item.weight,
                          close.example.critical))
    if not found:
        text, start, end = searched(segs, item.speaker, call)
        return call.verdict(PASS, "forbidden.none", {"who": who}, evidence_text=text, start=start, end=end,
                            matched_by=BY_TEXT)
    found.sort(key=lambda x: x[0].start)
    hits = [h for h, _, _ in found]
    deduction = min(item.weight, sum(p for _, p, _ in found))
    critical = any(cr for _, _, cr in found)
    said = [call.say("forbidden.hit_critical" if cr else "forbidden.hit", who=who,
                     said=call.said_meaning(h, closest[id(h)]) if id(h) in closest else said_at(call, h))
            for h, _, cr in found]
    borderline = any(b.borderline(item.meaning) for b in closest.values())
    reason = call.join(said + [call.say("forbidden.deduction", points=f"{deduction:g}")])
    return call.verdict(
        FAIL, "forbidden.said", reason=reason, evidence_text=quotes(hits), start=hits[0].start, end=hits[-1].end,
        matched_by=how_matched(hits), needs_review=any(call.hit_low(h) for h in hits) or borderline,
        deduction=deduction, critical_hit=critical,
        review_code="review.meaning_borderline" if borderline else "review.low_confidence",
    )


KIND = Kind("forbidden", ForbiddenCheck, ("type", "phrases", "tolerance", "points_per_hit"), parse, judge)
