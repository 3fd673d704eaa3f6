"""`phrase`: the speaker says one of `any`, one of each group of `all`, and none of `none`, in a
window of the call (after the item's `when`, if it has one)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import yaml

from qa_pipeline.meaning.judge import Closest
from qa_pipeline.records import FAIL, PASS
from qa_pipeline.scoring.checks.context import (
    Call,
    Hit,
    Verdict,
    alternatives,
    best,
    describe,
    hits_verdict,
    in_window,
    said_at,
    searched,
    window_segs,
)
from qa_pipeline.scoring.checks.kind import Kind
from qa_pipeline.scoring.matching import BY_TEXT, Phrase
from qa_pipeline.scoring.rubric_reader import RubricReader
from qa_pipeline.scoring.rubric_records import Centre, Item, Window


@dataclass(frozen=True)
class PhraseCheck:
    any: tuple[Phrase, ...] = ()
    outbound_any: tuple[Phrase, ...] = ()  # on an outbound call (manifest direction=outbound) these count as `any`
    all: tuple[tuple[Phrase, ...], ...] = ()  # each entry: alternatives, one of which must occur
    none: tuple[Phrase, ...] = ()
    window: Window = Window()
    tolerance: float | None = None  # phonetic cost a sound match may have; None = by phrase length
    strict_you: bool = False  # 您 must be heard as 您, not 你 (by text or sound)
    type: str = "phrase"


def parse(r: RubricReader, node: yaml.Node, m: dict[str, yaml.Node], where: str, weight: float) -> PhraseCheck:
    if "outbound_any" in m and "any" not in m:
        raise r.error(m["outbound_any"], f"{where}: outbound_any adds to any; give any too")
    if not any(k in m for k in ("any", "all", "none")):
        raise r.error(node, f"{where}: a phrase check needs any, all or none")
    groups: list[tuple[Phrase, ...]] = []
    if "all" in m:
        seq = m["all"]
        if not isinstance(seq, yaml.SequenceNode) or not seq.value:
            raise r.error(seq, f"{where}: all must be a non-empty list of phrases or lists of phrases")
        for entry in seq.value:
            if isinstance(entry, yaml.SequenceNode):
                groups.append(r.phrases(entry, f"{where}: all"))
            else:
                groups.append((r.phrase(entry, f"{where}: all"),))
    return PhraseCheck(
        any=r.phrases(m["any"], f"{where}: any") if "any" in m else (),
        outbound_any=r.phrases(m["outbound_any"], f"{where}: outbound_any") if "outbound_any" in m else (),
        all=tuple(groups),
        none=r.phrases(m["none"], f"{where}: none") if "none" in m else (),
        window=r.window(m["window"], where) if "window" in m else Window(),
        tolerance=r.number(m["tolerance"], f"{where}: tolerance") if "tolerance" in m else None,
        strict_you=r.boolean(m["strict_you"], f"{where}: strict_you") if "strict_you" in m else False,
    )


def judge(call: Call, item: Item, c: PhraseCheck, after: float | None) -> Verdict:
    segs = window_segs(call, item.speaker, c.window)
    where = describe(call, c.window, item.speaker)
    who = call.who(item.speaker)

    heard = call.spoken_in(segs, [(after, math.inf)]) if after is not None else segs  # a hit ends after `after`

    def found(phrases: tuple[Phrase, ...]) -> list[Hit]:
        hs = [h for h in call.hits(heard, phrases, c.tolerance, c.strict_you) if in_window(call, h, c.window)]
        return [h for h in hs if after is None or h.end >= after]

    def fail(code: str, **params) -> Verdict:
        text, start, end = searched(segs, item.speaker, call)
        review = any(call.low_confidence(s) for s in segs)
        return call.verdict(FAIL, code, params, evidence_text=text, start=start, end=end, matched_by=BY_TEXT,
                            needs_review=review)

    bad = found(c.none)
    if bad:
        return hits_verdict(call, FAIL, bad[:1], "phrase.disallowed",
                            {"who": who, "said": said_at(call, bad[0]), "where": where})
    chosen: list[Hit] = []
    by_meaning: dict[int, Closest] = {}  # id(hit) → how it was found
    anys = c.any + (c.outbound_any if call.meta.direction == "outbound" else ())
    if anys:
        hits = found(anys)
        if not hits and item.meaning is not None:
            # the same meaning in words no list holds: the unit closest to an example, in the window
            for close in call.by_meaning(item.meaning, heard):
                h = call.meaning_hit(close)
                if in_window(call, h, c.window) and (after is None or h.end >= after):
                    hits, by_meaning[id(h)] = [h], close
                    break
        if not hits:
            return fail("phrase.missing", who=who, wanted=alternatives(anys), where=where)
        chosen.append(best(hits))
    missing = []
    for group in c.all:
        hits = found(group)
        if hits:
            chosen.append(best(hits))
        else:
            missing.append(alternatives(group))
    if missing:
        return fail("phrase.missing_groups", who=who, missing=call.say("sep.clause").join(missing), where=where)
    if not chosen:  # only `none` phrases, and none said
        text, start, end = searched(segs, item.speaker, call)
        return call.verdict(PASS, "phrase.none_said", {"where": where}, evidence_text=text, start=start, end=end,
                            matched_by=BY_TEXT)
    said = call.say("sep.list").join(call.said_meaning(h, by_meaning[id(h)]) if id(h) in by_meaning
                                     else said_at(call, h) for h in chosen)
    v = hits_verdict(call, PASS, chosen, "phrase.said", {"who": who, "said": said})
    if any(b.borderline(item.meaning) for b in by_meaning.values()):
        v = replace(v, needs_review=True, review_code="review.meaning_borderline")
    return v


def hotwords(c: PhraseCheck, centre: Centre) -> tuple[Phrase, ...]:
    return c.any + c.outbound_any + tuple(p for group in c.all for p in group)


KIND = Kind("phrase", PhraseCheck, ("type", "any", "outbound_any", "all", "none", "window", "tolerance", "strict_you"), parse, judge,
            hotwords)
