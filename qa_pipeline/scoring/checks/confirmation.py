"""`confirmation`: the agent confirms what the customer gave — a confirming phrase, the customer's
digits repeated, or (optionally) their words read back."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from qa_pipeline.records import AGENT, CUSTOMER, FAIL, NA, PASS
from qa_pipeline.scoring.checks.context import (
    FORMULAIC,
    QUOTE_CHARS,
    SLACK_S,
    Call,
    Hit,
    Seg,
    Verdict,
    quote,
    said_at,
    searched,
)
from qa_pipeline.scoring.checks.kind import Kind
from qa_pipeline.scoring.matching import BY_TEXT, Phrase
from qa_pipeline.scoring.rubric_reader import RubricReader
from qa_pipeline.scoring.rubric_records import Centre, Item

GIVEN = ("numbers", "details")
_DIGITS = re.compile(r"\d+")
TAG_CHARS = 3


@dataclass(frozen=True)
class ConfirmationCheck:
    phrases: tuple[Phrase, ...] = ()
    min_digits: int = 4  # a repeated digit string must share this many consecutive digits
    na_without_numbers: bool = True  # n/a when the customer gave nothing to confirm and nothing was confirmed
    given: str = "numbers"  # what the customer must have given to need confirming: numbers | details
    min_detail_chars: int = 4  # details: characters left once greetings, yes/no and thanks are taken out
    read_back_syllables: int = 0  # the agent repeating this many syllables of what the customer said confirms
    type: str = "confirmation"


def parse(r: RubricReader, node: yaml.Node, m: dict[str, yaml.Node], where: str, weight: float) -> ConfirmationCheck:
    return ConfirmationCheck(
        phrases=r.phrases_at(m, "phrases", where),
        min_digits=r.integer(m["min_digits"], f"{where}: min_digits", minimum=2) if "min_digits" in m else 4,
        na_without_numbers=(
            r.boolean(m["na_without_numbers"], f"{where}: na_without_numbers")
            if "na_without_numbers" in m
            else True
        ),
        given=r.choice(m["given"], f"{where}: given", GIVEN) if "given" in m else "numbers",
        min_detail_chars=(
            r.integer(m["min_detail_chars"], f"{where}: min_detail_chars", minimum=1) if "min_detail_chars" in m else 4
        ),
        read_back_syllables=(
            r.integer(m["read_back_syllables"], f"{where}: read_back_syllables", minimum=0)
            if "read_back_syllables" in m
            else 0
        ),
    )


def digit_runs(call: Call, segs: tuple[Seg, ...], min_digits: int) -> list[tuple[str, Hit]]:
    out = []
    for seg in segs:
        for m in _DIGITS.finditer(seg.prep.norm):
            if m.end() - m.start() < min_digits:
                continue
            out.append((m.group(), call.hit_at(seg, m.group(), m.start(), m.end())))
    return out


def _shares(a: str, b: str, n: int) -> bool:
    return any(a[i : i + n] in b for i in range(len(a) - n + 1))


def details(segs: tuple[Seg, ...], min_chars: int) -> list[Seg]:
    """Customer utterances that tell something (a name, an address, the problem): at least
    `min_chars` characters left once greetings, yes/no, thanks and particles are taken out."""
    return [s for s in segs if len(FORMULAIC.sub("", s.prep.norm)) >= min_chars]


def read_back(call: Call, agent: tuple[Seg, ...], told: list[Seg], n: int) -> tuple[Hit, Seg] | None:
    """An agent utterance that repeats `n` syllables in a row of an earlier customer utterance
    (by sound, so both sides' misrecognitions still meet), digits aside."""
    for seg in agent:
        syl = seg.prep.pinyin
        for heard in told:
            if heard.utt.start >= seg.utt.start:
                continue
            grams = {heard.prep.pinyin[i : i + n] for i in range(len(heard.prep.pinyin) - n + 1)}
            for i in range(len(syl) - n + 1):
                g = syl[i : i + n]
                if g in grams and not any(ch.isdigit() for ch in seg.prep.norm[i : i + n]):
                    return call.hit_at(seg, "", i, i + n), heard
    return None


def _tag_question(phrase: str) -> bool:
    """对吗 / 是吧 / 没错吧 …: a phrase of at most TAG_CHARS characters (rubric spelling, = aside)."""
    return len(phrase.lstrip("=")) <= TAG_CHARS


def judge(call: Call, item: Item, c: ConfirmationCheck, after: float | None) -> Verdict:
    agent = call.eligible(AGENT)
    customer = call.eligible(CUSTOMER)
    told = digit_runs(call, customer, c.min_digits)
    told_details = details(customer, c.min_detail_chars) if c.given == "details" else []
    candidates: list[tuple[Hit, str, dict]] = []
    # A bare tag question before the customer told anything (王先生是吧 / 请问是郑女士吗) asks who
    # answered; it confirms nothing. 跟您确认一下… then confirms what the agent holds (a return call).
    told_from = min([h.start for _d, h in told] + [s.utt.start for s in told_details], default=None)
    explicit = [h for h in call.hits(agent, c.phrases)
                if told_from is None or h.start >= told_from - SLACK_S or not _tag_question(h.match.phrase)]
    if explicit:
        candidates.append((explicit[0], "confirm.phrase", {"said": said_at(call, explicit[0])}))
    for digits, said in digit_runs(call, agent, c.min_digits):
        for cdigits, heard in told:
            same = heard.seg.n == said.seg.n and heard.match.norm_start == said.match.norm_start
            if not same and said.start >= heard.end - SLACK_S and _shares(cdigits, digits, c.min_digits):
                candidates.append((said, "confirm.digits", {"digits": digits, "t": f"{said.start:.1f}",
                                                            "told": cdigits, "ct": f"{heard.start:.1f}"}))
                break
    if c.read_back_syllables and told_details:
        back = read_back(call, agent, told_details, c.read_back_syllables)
        if back is not None:
            hit, heard_seg = back
            candidates.append((hit, "confirm.read_back", {"text": hit.match.text, "t": f"{hit.start:.1f}",
                                                          "ct": f"{heard_seg.utt.start:.1f}"}))
    if candidates:
        hit, code, params = min(candidates, key=lambda x: x[0].start)
        return call.verdict(PASS, code, params, evidence_text=quote(hit), start=hit.start, end=hit.end,
                            matched_by=hit.match.how, needs_review=call.hit_low(hit))
    review = any(call.low_confidence(s) for s in agent)
    if told:
        first = told[0][1]
        return call.verdict(FAIL, "confirm.missed_number", {"digits": told[0][0], "t": f"{first.start:.1f}"},
                            evidence_text=quote(first), start=first.start, end=first.end, matched_by=BY_TEXT,
                            needs_review=review)
    if told_details:
        first_seg = told_details[0]
        return call.verdict(FAIL, "confirm.missed_details", {"t": f"{first_seg.utt.start:.1f}"},
                            evidence_text=first_seg.utt.text[:QUOTE_CHARS], start=first_seg.utt.start,
                            end=first_seg.utt.end, matched_by=BY_TEXT, needs_review=review)
    if c.na_without_numbers:
        return call.verdict(NA, "confirm.na_nothing" if c.given == "details" else "confirm.na_no_number")
    text, start, end = searched(agent, AGENT, call)
    return call.verdict(FAIL, "confirm.never", evidence_text=text, start=start, end=end, matched_by=BY_TEXT)


def hotwords(c: ConfirmationCheck, centre: Centre) -> tuple[Phrase, ...]:
    return c.phrases


KIND = Kind("confirmation", ConfirmationCheck,
            ("type", "phrases", "min_digits", "na_without_numbers", "given", "min_detail_chars", "read_back_syllables"),
            parse, judge, hotwords)
