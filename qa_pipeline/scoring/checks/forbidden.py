"""`forbidden`: each forbidden phrase the speaker says takes its points off (a critical one fails
the call), unless it was said inside its polite form (`unless`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import yaml

from qa_pipeline.meaning.judge import Closest
from qa_pipeline.records import AGENT, FAIL, PASS
from qa_pipeline.scoring.checks.context import (
    BY_MODEL,
    Call,
    Hit,
    Seg,
    Verdict,
    how_matched,
    overlaps,
    quotes,
    said_at,
    searched,
)
from qa_pipeline.scoring.checks.kind import Kind
from qa_pipeline.scoring.intents import labels_of, load_model
from qa_pipeline.scoring.matching import BY_TEXT, Phrase
from qa_pipeline.scoring.rubric_reader import RubricReader
from qa_pipeline.scoring.rubric_records import REVIEW_BAND, Item


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
    points_per_hit: float | None = None  # None: the item's weight (a hit by meaning or model deducts this)
    # a label of the bundled intent model (intents.py) that hears the forbidden meaning in an utterance of
    # the agent's, and the probability from which it counts (None: the model's own threshold)
    intent: str | None = None
    intent_threshold: float | None = None
    # an utterance shorter than this (normal form) gives the model little to go on, and on a transcript
    # is more often a fragment or a garble: it counts only from intent_threshold_short
    intent_short_chars: int = 0
    intent_threshold_short: float | None = None
    type: str = "forbidden"

    @cached_property
    def listed(self) -> tuple[Phrase, ...]:
        """Every forbidden phrase, in order (one index of them all, asked once per call)."""
        return tuple(fp.phrase for fp in self.phrases)


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
    intent = r.choice(m["intent"], f"{where}: intent", labels_of("agent")) if "intent" in m else None
    if "intent_threshold" in m and intent is None:
        raise r.error(m["intent_threshold"], f"{where}: intent_threshold needs intent")
    threshold = r.number(m["intent_threshold"], f"{where}: intent_threshold", above=True, maximum=1.0) \
        if "intent_threshold" in m else None
    short_chars, short_threshold = 0, None
    if "intent_short_chars" in m or "intent_threshold_short" in m:
        node = m.get("intent_short_chars") or m["intent_threshold_short"]
        if intent is None or not ("intent_short_chars" in m and "intent_threshold_short" in m):
            raise r.error(node, f"{where}: intent_short_chars and intent_threshold_short go together, with intent")
        short_chars = r.integer(m["intent_short_chars"], f"{where}: intent_short_chars", minimum=1)
        short_threshold = r.number(m["intent_threshold_short"], f"{where}: intent_threshold_short", above=True,
                                   maximum=1.0)
    return ForbiddenCheck(phrases=tuple(out), tolerance=tolerance, points_per_hit=per_hit, intent=intent,
                          intent_threshold=threshold, intent_short_chars=short_chars,
                          intent_threshold_short=short_threshold)


def intent_threshold(c: ForbiddenCheck, chars: int | None = None) -> float:
    """From which probability the model's hearing counts, in an utterance of `chars` characters (normal form)."""
    if chars is not None and chars < c.intent_short_chars and c.intent_threshold_short is not None:
        return c.intent_threshold_short
    return c.intent_threshold if c.intent_threshold is not None else load_model().labels[c.intent].threshold


def model_hits(call: Call, c: ForbiddenCheck, segs: tuple[Seg, ...]) -> list[tuple[Hit, float]]:
    """The utterances the intent model finds forbidden, with its probability. Whole utterances: a clause
    alone (狗狗叫什么名字, 都带上就行) has lost the polite words around it that say how it was meant."""
    model = load_model()
    out = []
    for seg in segs:
        if len(seg.prep.norm) < MIN_MEANING_CHARS:
            continue
        p = model.probability(c.intent, seg.utt.text, norm=seg.prep.norm, pinyin=seg.prep.pinyin)
        if p >= intent_threshold(c, len(seg.prep.norm)):
            out.append((call.span_hit(seg, 0, len(seg.utt.text), c.intent, BY_MODEL), p))
    return out


def judge(call: Call, item: Item, c: ForbiddenCheck, after: float | None) -> Verdict:
    segs = call.eligible(item.speaker)
    found: list[tuple[Hit, float, bool]] = []
    taken: list[tuple[int, int, int]] = []  # (seg, norm_start, norm_end) already counted
    maybe = call.may_hit(segs, c.listed, c.tolerance, strict_you=True)
    for n, fp in enumerate(c.phrases):
        if n not in maybe:
            continue
        listed = call.hits(maybe[n], (fp.phrase,), c.tolerance, strict_you=True)
        excused = call.hits(segs, fp.unless) if fp.unless and listed else []
        for h in listed:
            span = (h.seg.n, h.match.norm_start, h.match.norm_end)
            if any(s == span[0] and a < span[2] and span[1] < b for s, a, b in taken):
                continue
            if any(overlaps(h, e) for e in excused):
                continue
            taken.append(span)
            found.append((h, fp.points, fp.critical))
            break
    who = call.who(item.speaker)
    per_hit = c.points_per_hit if c.points_per_hit is not None else item.weight  # what a meaning or model hit deducts
    # By meaning, then by the model: the agent's own turns only (never the customer's words, nor unseparated
    # speech), one hit per utterance, none where something before already matched.
    mine = tuple(s for s in segs if s.utt.speaker == AGENT)
    taken_segs = {h.seg.n for h, _, _ in found}
    closest: dict[int, Closest] = {}  # id(hit) → the example a meaning hit came closest to
    if item.meaning is not None:
        for close in call.by_meaning(item.meaning, mine):
            if close.seg in taken_segs or len(close.unit.text) < MIN_MEANING_CHARS:
                continue
            taken_segs.add(close.seg)
            h = call.meaning_hit(close)
            closest[id(h)] = close
            found.append((h, per_hit, close.example.critical))
    model_p: dict[int, tuple[float, float]] = {}  # id(hit) → the intent model's probability, and its threshold there
    if c.intent is not None:
        for h, p in model_hits(call, c, tuple(s for s in mine if s.n not in taken_segs)):
            model_p[id(h)] = (p, intent_threshold(c, len(h.seg.prep.norm)))
            found.append((h, per_hit, False))
    if not found:
        text, start, end = searched(segs, item.speaker, call)
        return call.verdict(PASS, "forbidden.none", {"who": who}, evidence_text=text, start=start, end=end,
                            matched_by=BY_TEXT)
    found.sort(key=lambda x: x[0].start)
    hits = [h for h, _, _ in found]
    deduction = min(item.weight, sum(p for _, p, _ in found))
    critical = any(cr for _, _, cr in found)
    said = [call.say("forbidden.hit_critical" if cr else "forbidden.hit", who=who,
                     said=call.said_meaning(h, closest[id(h)]) if id(h) in closest
                     else call.say("said.model", quote=h.match.text, t=f"{h.start:.1f}", p=f"{model_p[id(h)][0]:.2f}")
                     if id(h) in model_p else said_at(call, h))
            for h, _, cr in found]
    borderline = any(b.borderline(item.meaning) for b in closest.values())
    # a deduction the model was barely sure of is the inspector's to hear
    model_borderline = any(p < threshold + REVIEW_BAND for p, threshold in model_p.values())
    reason = call.join(said + [call.say("forbidden.deduction", points=f"{deduction:g}")])
    return call.verdict(
        FAIL, "forbidden.said", reason=reason, evidence_text=quotes(hits), start=hits[0].start, end=hits[-1].end,
        matched_by=how_matched(hits), needs_review=any(call.hit_low(h) for h in hits) or borderline or model_borderline,
        deduction=deduction, critical_hit=critical,
        review_code="review.meaning_borderline" if borderline else
        "review.model_borderline" if model_borderline else "review.low_confidence",
    )


KIND = Kind("forbidden", ForbiddenCheck, ("type", "phrases", "tolerance", "points_per_hit", "intent", "intent_threshold",
                                                 "intent_short_chars", "intent_threshold_short"),
            parse, judge)
