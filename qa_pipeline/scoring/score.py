"""Score one call against a rubric: a pure function of (transcript, metadata, rubric).

Every item gets pass / fail / n/a.  Every pass and fail carries evidence (quoted words and their
start/end seconds, from word timestamps where the transcript has them) and a one-line reason; an
n/a carries its reason.  Reasons are written in the rubric's language from the message catalogue
(messages.py) and keep a stable `reason_code`.  Utterances whose speaker is `unknown` (mono calls
before diarization) are eligible for both agent and customer checks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Callable

from qa_pipeline import messages
from qa_pipeline.records import (
    AGENT,
    CUSTOMER,
    FAIL,
    NA,
    PASS,
    SYSTEM,
    UNKNOWN,
    CallMeta,
    CallScore,
    CallTranscript,
    ItemResult,
    Utterance,
)
from qa_pipeline.scoring.intents import load_model
from qa_pipeline.scoring.matching import BY_TEXT, Match, Phrase, PreparedText, find_all, is_pattern, prepare
from qa_pipeline.scoring.rubric import (
    ConfirmationCheck,
    ForbiddenCheck,
    HangupCheck,
    HoldCheck,
    InterruptionCheck,
    IntroductionCheck,
    Item,
    PhraseCheck,
    Rubric,
    SilenceCheck,
    SpeechRateCheck,
    When,
    Window,
)
from qa_pipeline.scoring.timeline import Timeline, build_timeline

log = logging.getLogger("qa_pipeline")

LOW_WORD_PROB = 0.5
LOW_AVG_LOGPROB = -1.0
QUOTE_CHARS = 60
SLACK_S = 0.5  # timestamp slack when ordering phrases around a silence
SPEECH_GAP_S = 1.0  # pauses longer than this inside an utterance are not speaking time
BY_MODEL = "model"
DETAIL_CHARS = 4  # a customer utterance with fewer characters than this, formulas aside, says nothing

# What a customer says that gives the agent nothing to confirm: greetings, yes/no, thanks, goodbyes.
_FORMULAIC = re.compile(
    r"你好|您好|喂|谢谢|谢了|多谢|再见|拜拜|好的|好吧|好|行|对的|对|是的|是|嗯|哦|啊|没有了|没有|没了|不用了|"
    r"可以|知道了|明白了|清楚了|了|吧|呢|呀|嘛|啦"
)


@dataclass(frozen=True)
class _Seg:
    n: int
    utt: Utterance
    prep: PreparedText
    word_at: tuple[int, ...] | None  # normalised position → index into utt.words


@dataclass(frozen=True)
class _Hit:
    seg: _Seg
    match: Match
    start: float
    end: float


@dataclass(frozen=True)
class _Wait:
    start: float
    end: float
    before: _Seg
    after: _Seg

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class _Verdict:
    result: str
    code: str  # stable reason code (messages catalogue msgid)
    reason: str  # rendered in the rubric's language
    evidence_text: str | None = None
    start: float | None = None
    end: float | None = None
    matched_by: str | None = None
    needs_review: bool = False
    deduction: float | None = None  # forbidden: points taken off instead of all-or-nothing
    critical_hit: bool = False


# --- per-call context -------------------------------------------------------------------------


def _word_map(utt: Utterance, prep: PreparedText) -> tuple[int, ...] | None:
    if not utt.words:
        return None
    owner: list[int] = []
    for i, w in enumerate(utt.words):
        owner.extend([i] * len(w.text))
    wprep = prepare("".join(w.text for w in utt.words))
    if wprep.norm != prep.norm:
        return None
    return tuple(owner[j] for j in wprep.index)


class _Call:
    def __init__(self, transcript: CallTranscript, meta: CallMeta, rubric: Rubric) -> None:
        self.t = transcript
        self.meta = meta
        self.rubric = rubric
        self.lang = rubric.language
        segs = []
        for n, u in enumerate(sorted(transcript.utterances, key=lambda u: (u.start, u.end))):
            p = prepare(u.text)
            segs.append(_Seg(n, u, p, _word_map(u, p)))
        self.segs: tuple[_Seg, ...] = tuple(segs)
        self.speech_end = max((s.utt.end for s in segs), default=0.0)
        # the call's opening starts when the agent is put through, after the recorded announcements
        # (speaker `system`, found in the opening only): `first_seconds` windows count from there
        self.opening_at = max((s.utt.end for s in segs if s.utt.speaker == SYSTEM), default=0.0)

    # -- language --
    def say(self, code: str, **params: object) -> str:
        return messages.text(self.lang, code, **params)

    def verdict(self, result: str, code: str, params: dict | None = None, *, reason: str | None = None,
                **kw) -> _Verdict:
        text = reason if reason is not None else self.say(code, **(params or {}))
        return _Verdict(result, code, text, **kw)

    def join(self, parts: list[str]) -> str:
        return self.say("sep.clause").join(parts)

    def who(self, speaker: str) -> str:
        return self.say(f"who.{speaker}")

    # -- text --
    def eligible(self, speaker: str) -> tuple[_Seg, ...]:
        if speaker == AGENT:
            return tuple(s for s in self.segs if s.utt.speaker in (AGENT, UNKNOWN))
        if speaker == CUSTOMER:
            return tuple(s for s in self.segs if s.utt.speaker in (CUSTOMER, UNKNOWN))
        return self.segs

    def times(self, seg: _Seg, ns: int, ne: int) -> tuple[float, float]:
        if seg.word_at is None:
            return seg.utt.start, seg.utt.end
        words = seg.utt.words
        return words[seg.word_at[ns]].start, words[seg.word_at[ne - 1]].end

    def hits(
        self, segs: tuple[_Seg, ...], phrases: tuple[Phrase, ...], tolerance: float | None = None,
        strict_you: bool = False,
    ) -> list[_Hit]:
        out = []
        for seg in segs:
            for phrase in phrases:
                for m in find_all(seg.prep, phrase, tolerance=tolerance, strict_you=strict_you):
                    start, end = self.times(seg, m.norm_start, m.norm_end)
                    out.append(_Hit(seg, m, start, end))
        out.sort(key=lambda h: (h.start, h.match.how != BY_TEXT, h.match.edits))
        return out

    @cached_property
    def timeline(self) -> Timeline:
        return build_timeline(self.t)

    @cached_property
    def by_id(self) -> dict[str, _Seg]:
        return {s.utt.utterance_id: s for s in self.segs}

    def waits(self, longer_than: float) -> list[_Wait]:
        """Silences between consecutive stretches of speech (any speaker) longer than given."""
        return [_Wait(g.start, g.end, self.by_id[g.before_utterance], self.by_id[g.after_utterance])
                for g in self.timeline.gaps(longer_than)]

    def low_confidence(self, seg: _Seg, ns: int | None = None, ne: int | None = None) -> bool:
        if seg.utt.avg_logprob < LOW_AVG_LOGPROB:
            return True
        words = seg.utt.words
        if not words:
            return False
        if ns is not None and ne is not None and seg.word_at is not None:
            idx = sorted(set(seg.word_at[ns:ne]))
            words = tuple(words[i] for i in idx)
        return sum(w.prob for w in words) / len(words) < LOW_WORD_PROB

    def hit_low(self, hit: _Hit) -> bool:
        return self.low_confidence(hit.seg, hit.match.norm_start, hit.match.norm_end)


# --- evidence helpers -------------------------------------------------------------------------


def _quote(hit: _Hit) -> str:
    text = hit.seg.utt.text
    if len(text) <= QUOTE_CHARS:
        return text
    pad = max(0, (QUOTE_CHARS - (hit.match.end - hit.match.start)) // 2)
    a, b = max(0, hit.match.start - pad), min(len(text), hit.match.end + pad)
    return ("…" if a > 0 else "") + text[a:b] + ("…" if b < len(text) else "")


def _said(call: _Call, hit: _Hit) -> str:
    m = hit.match
    if is_pattern(m.phrase):
        return call.say("said.at", phrase=m.text, t=f"{hit.start:.1f}")
    phrase = m.phrase.lstrip("^=")
    if m.how == BY_TEXT and normalize_eq(m.text, phrase):
        return call.say("said.at", phrase=phrase, t=f"{hit.start:.1f}")
    return call.say("said.heard", phrase=phrase, t=f"{hit.start:.1f}", heard=m.text)


def normalize_eq(a: str, b: str) -> bool:
    return prepare(a).norm == prepare(b).norm


def _wait_text(w: _Wait) -> str:
    """The words either side of a silence; one segment spanning it is split at the silence."""
    gap = f"[{w.length:.1f} s]"
    if w.before is w.after and w.before.utt.words:
        words = w.before.utt.words
        pre = "".join(x.text for x in words if x.end <= w.start + 1e-6)
        post = "".join(x.text for x in words if x.start >= w.end - 1e-6)
        before, after = pre[-QUOTE_CHARS:], post[:QUOTE_CHARS]
    else:
        before, after = w.before.utt.text[-QUOTE_CHARS:], w.after.utt.text[:QUOTE_CHARS]
    return f"{before.strip()} {gap} {after.strip()}"


def _searched(segs: tuple[_Seg, ...], speaker: str, call: _Call) -> tuple[str, float, float]:
    if not segs:
        return call.say("evidence.no_speech", who=call.who(speaker)), 0.0, call.t.duration_s
    text = " / ".join(s.utt.text for s in segs)
    if len(text) > 2 * QUOTE_CHARS:
        text = text[: 2 * QUOTE_CHARS] + "…"
    return text, segs[0].utt.start, segs[-1].utt.end


def _by(hits: list[_Hit]) -> str:
    return BY_TEXT if all(h.match.how == BY_TEXT for h in hits) else "pinyin"


def _alternatives(phrases: tuple[Phrase, ...], n: int = 4) -> str:
    return "/".join(p.source.lstrip("^=") for p in phrases[:n])


# --- checks -----------------------------------------------------------------------------------


def _window_segs(call: _Call, speaker: str, w: Window) -> tuple[_Seg, ...]:
    segs = call.eligible(speaker)
    if w.first_turns is not None:
        segs = segs[: w.first_turns]
    if w.last_turns is not None:
        segs = segs[-w.last_turns :]
    if w.first_seconds is not None:
        segs = tuple(s for s in segs if s.utt.start < call.opening_at + w.first_seconds)
    if w.last_seconds is not None:
        segs = tuple(s for s in segs if s.utt.end > call.speech_end - w.last_seconds)
    return segs


def _in_window(call: _Call, hit: _Hit, w: Window) -> bool:
    if w.first_seconds is not None and hit.start >= call.opening_at + w.first_seconds:
        return False
    if w.last_seconds is not None and hit.end <= call.speech_end - w.last_seconds:
        return False
    return True


def _describe(call: _Call, w: Window, speaker: str) -> str:
    who = call.who(speaker)
    parts = []
    if w.first_turns is not None:
        parts.append(call.say("window.first_turns" if w.first_turns > 1 else "window.first_turn",
                              who=who, n=w.first_turns))
    if w.last_turns is not None:
        parts.append(call.say("window.last_turns" if w.last_turns > 1 else "window.last_turn",
                              who=who, n=w.last_turns))
    if w.first_seconds is not None:
        parts.append(call.say("window.first_seconds", s=f"{w.first_seconds:g}"))
    if w.last_seconds is not None:
        parts.append(call.say("window.last_seconds", s=f"{w.last_seconds:g}"))
    return call.say("sep.list").join(parts) if parts else call.say("window.whole")


def _best(hits: list[_Hit]) -> _Hit:
    """The earliest character match, else the earliest sound match."""
    return next((h for h in hits if h.match.how == BY_TEXT), hits[0])


def _phrase(call: _Call, item: Item, c: PhraseCheck, after: float | None) -> _Verdict:
    segs = _window_segs(call, item.speaker, c.window)
    where = _describe(call, c.window, item.speaker)
    who = call.who(item.speaker)

    def found(phrases: tuple[Phrase, ...]) -> list[_Hit]:
        hs = [h for h in call.hits(segs, phrases, c.tolerance, c.strict_you) if _in_window(call, h, c.window)]
        return [h for h in hs if after is None or h.end >= after]

    def fail(code: str, **params) -> _Verdict:
        text, start, end = _searched(segs, item.speaker, call)
        review = any(call.low_confidence(s) for s in segs)
        return call.verdict(FAIL, code, params, evidence_text=text, start=start, end=end, matched_by=BY_TEXT,
                            needs_review=review)

    def verdict(result: str, hits: list[_Hit], code: str, **params) -> _Verdict:
        return call.verdict(
            result, code, params,
            evidence_text=" … ".join(dict.fromkeys(_quote(h) for h in hits)),
            start=min(h.start for h in hits), end=max(h.end for h in hits),
            matched_by=_by(hits), needs_review=any(call.hit_low(h) for h in hits),
        )  # fmt: skip

    bad = found(c.none)
    if bad:
        return verdict(FAIL, bad[:1], "phrase.disallowed", who=who, said=_said(call, bad[0]), where=where)
    chosen: list[_Hit] = []
    if c.any:
        hits = found(c.any)
        if not hits:
            return fail("phrase.missing", who=who, wanted=_alternatives(c.any), where=where)
        chosen.append(_best(hits))
    missing = []
    for group in c.all:
        hits = found(group)
        if hits:
            chosen.append(_best(hits))
        else:
            missing.append(_alternatives(group))
    if missing:
        return fail("phrase.missing_groups", who=who, missing=call.say("sep.clause").join(missing), where=where)
    if not chosen:  # only `none` phrases, and none said
        text, start, end = _searched(segs, item.speaker, call)
        return call.verdict(PASS, "phrase.none_said", {"where": where}, evidence_text=text, start=start, end=end,
                            matched_by=BY_TEXT)
    said = call.say("sep.list").join(_said(call, h) for h in chosen)
    return verdict(PASS, chosen, "phrase.said", who=who, said=said)


# --- self-introduction --------------------------------------------------------------------------


def _opening(call: _Call, speaker: str, w: Window) -> tuple[_Seg, ...]:
    """The speaker's utterances in the window up to the customer's first words that say something
    (对，我是 to an outbound agent's 请问是孙先生吗 does not end the opening)."""
    segs = _window_segs(call, speaker, w)
    if not segs:
        return segs
    first = segs[0].utt.start
    replies = [s.utt.start for s in call.segs if s.utt.speaker == CUSTOMER and s.utt.start > first + SLACK_S
               and len(_FORMULAIC.sub("", s.prep.norm)) >= DETAIL_CHARS]
    if replies:
        segs = tuple(s for s in segs if s.utt.start < min(replies))
    return segs


def _company_phrases(call: _Call) -> tuple[tuple[Phrase, ...], tuple[str, ...]]:
    """The centre's names (and aliases) for this call's company; all companies if the call's team
    or manifest company names none.  Returns (phrases, names)."""
    centre = call.rubric.centre
    if not centre.companies:
        return (), ()
    mine = [c for c in centre.companies
            if (call.meta.company and (c.name == call.meta.company or call.meta.company in c.names))
            or (call.meta.team and call.meta.team in c.teams)]
    chosen = mine or list(centre.companies)
    return tuple(p for c in chosen for p in c.aliases), tuple(c.name for c in chosen)


def _self_from_meta(call: _Call, segs: tuple[_Seg, ...]) -> list[_Hit]:
    """The agent says their id's digits or '小'+surname from the manifest."""
    wanted = []
    meta = call.meta
    if meta.agent_id:
        digits = "".join(ch for ch in meta.agent_id if ch.isdigit())
        if len(digits) >= 3:
            wanted.append(digits)
    if meta.agent_name:
        wanted.append("小" + meta.agent_name.strip()[0])
    out = []
    for want in wanted:
        for seg in segs:
            pos = seg.prep.norm.find(want)
            if pos >= 0:
                p = seg.prep
                start, end = call.times(seg, pos, pos + len(want))
                out.append(_Hit(seg, Match(want, p.original[p.index[pos]: p.index[pos + len(want) - 1] + 1], BY_TEXT,
                                           p.index[pos], p.index[pos + len(want) - 1] + 1, pos, pos + len(want)),
                                start, end))
    return out


def _introduction(call: _Call, item: Item, c: IntroductionCheck) -> _Verdict:
    segs = _opening(call, item.speaker, c.window)
    where = _describe(call, c.window, item.speaker)
    names, configured = _company_phrases(call)
    company = call.hits(segs, names) + call.hits(segs, c.company) + call.hits(segs, c.organisations)
    company = [h for h in company if _in_window(call, h, c.window)]
    selves = [h for h in call.hits(segs, c.self) if _in_window(call, h, c.window)]
    if c.use_metadata:
        selves += _self_from_meta(call, segs)
    # A stretch that names the agent is not also the company (工号三三零二为您服务).
    company = [h for h in company if not any(_overlaps(h, s) for s in selves)]
    if company and selves:
        hits = [min(company, key=lambda h: (h.match.how != BY_TEXT, h.start)),
                min(selves, key=lambda h: (h.match.how != BY_TEXT, h.start))]
        return call.verdict(
            PASS, "intro.both", {"company": _said(call, hits[0]), "agent": _said(call, hits[1])},
            evidence_text=" … ".join(dict.fromkeys(_quote(h) for h in hits)),
            start=min(h.start for h in hits), end=max(h.end for h in hits),
            matched_by=_by(hits), needs_review=any(call.hit_low(h) for h in hits),
        )  # fmt: skip
    text, start, end = _searched(segs, item.speaker, call)
    review = any(call.low_confidence(s) for s in segs)
    expected = call.say("sep.list").join(configured) if configured else _alternatives(c.company, 3)
    code = "intro.no_self" if company else ("intro.no_company" if selves else "intro.neither")
    return call.verdict(FAIL, code, {"company": expected, "where": where}, evidence_text=text, start=start,
                        end=end, matched_by=BY_TEXT, needs_review=review)


def _overlaps(a: _Hit, b: _Hit) -> bool:
    return a.seg.n == b.seg.n and a.match.norm_start < b.match.norm_end and b.match.norm_start < a.match.norm_end


# --- confirmation -------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")


def _digit_runs(call: _Call, segs: tuple[_Seg, ...], min_digits: int) -> list[tuple[str, _Hit]]:
    out = []
    for seg in segs:
        for m in _DIGITS.finditer(seg.prep.norm):
            if m.end() - m.start() < min_digits:
                continue
            p = seg.prep
            match = Match(
                phrase=m.group(),
                text=p.original[p.index[m.start()] : p.index[m.end() - 1] + 1],
                how=BY_TEXT,
                start=p.index[m.start()],
                end=p.index[m.end() - 1] + 1,
                norm_start=m.start(),
                norm_end=m.end(),
            )
            start, end = call.times(seg, m.start(), m.end())
            out.append((m.group(), _Hit(seg, match, start, end)))
    return out


def _shares(a: str, b: str, n: int) -> bool:
    return any(a[i : i + n] in b for i in range(len(a) - n + 1))


def _details(call: _Call, segs: tuple[_Seg, ...], min_chars: int) -> list[_Seg]:
    """Customer utterances that tell something (a name, an address, the problem): at least
    `min_chars` characters left once greetings, yes/no, thanks and particles are taken out."""
    return [s for s in segs if len(_FORMULAIC.sub("", s.prep.norm)) >= min_chars]


def _read_back(call: _Call, agent: tuple[_Seg, ...], told: list[_Seg], n: int) -> tuple[_Hit, _Seg] | None:
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
                    p = seg.prep
                    m = Match("", p.original[p.index[i] : p.index[i + n - 1] + 1], BY_TEXT, p.index[i],
                              p.index[i + n - 1] + 1, i, i + n)
                    start, end = call.times(seg, i, i + n)
                    return _Hit(seg, m, start, end), heard
    return None


def _confirmation(call: _Call, item: Item, c: ConfirmationCheck) -> _Verdict:
    agent = call.eligible(AGENT)
    customer = call.eligible(CUSTOMER)
    told = _digit_runs(call, customer, c.min_digits)
    candidates: list[tuple[_Hit, str, dict]] = []
    explicit = call.hits(agent, c.phrases)
    if explicit:
        candidates.append((explicit[0], "confirm.phrase", {"said": _said(call, explicit[0])}))
    for digits, said in _digit_runs(call, agent, c.min_digits):
        for cdigits, heard in told:
            same = heard.seg.n == said.seg.n and heard.match.norm_start == said.match.norm_start
            if not same and said.start >= heard.end - SLACK_S and _shares(cdigits, digits, c.min_digits):
                candidates.append((said, "confirm.digits", {"digits": digits, "t": f"{said.start:.1f}",
                                                            "told": cdigits, "ct": f"{heard.start:.1f}"}))
                break
    details = _details(call, customer, c.min_detail_chars) if c.given == "details" else []
    if c.read_back_syllables and details:
        back = _read_back(call, agent, details, c.read_back_syllables)
        if back is not None:
            hit, heard = back
            candidates.append((hit, "confirm.read_back", {"text": hit.match.text, "t": f"{hit.start:.1f}",
                                                          "ct": f"{heard.utt.start:.1f}"}))
    if candidates:
        hit, code, params = min(candidates, key=lambda x: x[0].start)
        return call.verdict(PASS, code, params, evidence_text=_quote(hit), start=hit.start, end=hit.end,
                            matched_by=hit.match.how, needs_review=call.hit_low(hit))
    review = any(call.low_confidence(s) for s in agent)
    if told:
        first = told[0][1]
        return call.verdict(FAIL, "confirm.missed_number", {"digits": told[0][0], "t": f"{first.start:.1f}"},
                            evidence_text=_quote(first), start=first.start, end=first.end, matched_by=BY_TEXT,
                            needs_review=review)
    if details:
        first = details[0]
        return call.verdict(FAIL, "confirm.missed_details", {"t": f"{first.utt.start:.1f}"},
                            evidence_text=first.utt.text[:QUOTE_CHARS], start=first.utt.start, end=first.utt.end,
                            matched_by=BY_TEXT, needs_review=review)
    if c.na_without_numbers:
        return call.verdict(NA, "confirm.na_nothing" if c.given == "details" else "confirm.na_no_number")
    text, start, end = _searched(agent, AGENT, call)
    return call.verdict(FAIL, "confirm.never", evidence_text=text, start=start, end=end, matched_by=BY_TEXT)


# --- timing checks ------------------------------------------------------------------------------


def _hold(call: _Call, item: Item, c: HoldCheck) -> _Verdict:
    waits = call.waits(c.max_wait_s)
    if not waits:
        return call.verdict(NA, "hold.none", {"s": f"{c.max_wait_s:g}"})
    segs = call.eligible(item.speaker)
    before_hits = call.hits(segs, c.before)
    after_hits = call.hits(segs, c.after)
    good: list[_Hit] = []
    for w in waits:
        pre = [h for h in before_hits if w.start - c.within_s <= h.end <= w.start + SLACK_S]
        post = [h for h in after_hits if w.end - SLACK_S <= h.start <= w.end + c.within_s]
        if not pre or not post:
            code = "hold.unannounced" if not pre and post else "hold.unthanked" if pre else "hold.neither"
            return call.verdict(
                FAIL, code,
                {"len": f"{w.length:.1f}", "a": f"{w.start:.1f}", "b": f"{w.end:.1f}",
                 "before": c.before[0].source, "after": c.after[0].source},
                evidence_text=_wait_text(w), start=w.start, end=w.end, matched_by="timeline",
                needs_review=call.low_confidence(w.before) or call.low_confidence(w.after),
            )  # fmt: skip
        good.extend((pre[-1], post[0]))
    first = waits[0]
    return call.verdict(
        PASS, "hold.ok",
        {"n": len(waits), "len": f"{first.length:.1f}", "a": f"{first.start:.1f}", "b": f"{first.end:.1f}",
         "before": _said(call, good[0]), "after": _said(call, good[1])},
        evidence_text=" … ".join(dict.fromkeys(_quote(h) for h in good)),
        start=min(h.start for h in good), end=max(h.end for h in good),
        matched_by=_by(good), needs_review=any(call.hit_low(h) for h in good),
    )  # fmt: skip


def _silence(call: _Call, item: Item, c: SilenceCheck) -> _Verdict:
    if not call.segs:
        return call.verdict(NA, "silence.no_speech")
    excuses = call.hits(call.segs, c.excused_by) if c.excused_by else []
    for w in call.waits(c.max_s):
        if not any(w.start - c.within_s <= h.end <= w.start + SLACK_S for h in excuses):
            return call.verdict(FAIL, "silence.unexplained",
                                {"len": f"{w.length:.1f}", "a": f"{w.start:.1f}", "b": f"{w.end:.1f}"},
                                evidence_text=_wait_text(w), start=w.start, end=w.end, matched_by="timeline")
    gaps = call.waits(0.0)
    if gaps:
        g = max(gaps, key=lambda g: g.length)
        return call.verdict(PASS, "silence.ok_longest",
                            {"max": f"{c.max_s:g}", "len": f"{g.length:.1f}", "a": f"{g.start:.1f}"},
                            evidence_text=_wait_text(g), start=g.start, end=g.end, matched_by="timeline")
    return call.verdict(PASS, "silence.ok", {"max": f"{c.max_s:g}"}, evidence_text=call.segs[0].utt.text,
                        start=call.segs[0].utt.start, end=call.speech_end, matched_by="timeline")


def _interruption(call: _Call, item: Item, c: InterruptionCheck) -> _Verdict:
    if call.t.n_channels < 2:
        return call.verdict(NA, "interruption.mono")
    if any(s.utt.speaker == UNKNOWN for s in call.segs):
        return call.verdict(NA, "interruption.unseparated")
    worst: tuple[float, _Seg] | None = None
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


def _speaking_time(seg: _Seg) -> float:
    words = seg.utt.words
    if not words:
        return max(0.0, seg.utt.end - seg.utt.start)
    total = 0.0
    run_start, run_end = words[0].start, words[0].end
    for w in words[1:]:
        if w.start - run_end > SPEECH_GAP_S:
            total += run_end - run_start
            run_start = w.start
        run_end = max(run_end, w.end)
    return total + run_end - run_start


def _speech_rate(call: _Call, item: Item, c: SpeechRateCheck) -> _Verdict:
    segs = call.eligible(item.speaker)
    seconds = sum(_speaking_time(s) for s in segs)
    chars = sum(len(s.prep.norm) for s in segs)
    if seconds < 5.0:
        return call.verdict(NA, "rate.too_little", {"who": call.who(item.speaker), "s": f"{seconds:.1f}"})
    cpm = chars / seconds * 60
    ok = c.min_cpm <= cpm <= c.max_cpm
    text, start, end = _searched(segs, item.speaker, call)
    code = "rate.within" if ok else ("rate.below" if cpm < c.min_cpm else "rate.above")
    return call.verdict(PASS if ok else FAIL, code,
                        {"cpm": f"{cpm:.0f}", "s": f"{seconds:.0f}", "lo": f"{c.min_cpm:g}", "hi": f"{c.max_cpm:g}"},
                        evidence_text=text, start=start, end=end, matched_by="timeline")


def _hangup(call: _Call, item: Item, c: HangupCheck) -> _Verdict:
    side, method, why = None, None, ""
    last_customer = max((s.utt.end for s in call.eligible(CUSTOMER)), default=0.0)
    last = call.segs[-1] if call.segs else None
    if call.meta.hangup_by in (AGENT, CUSTOMER):
        side, method = call.meta.hangup_by, "manifest"
        why = call.say("hangup.by_manifest", side=side)
        ev_text, ev_start, ev_end = f"hangup_by={side} (manifest)", call.speech_end, call.t.duration_s
    else:
        tone = next(
            (e for e in call.t.events if e.kind == "busy_tone" and e.start >= last_customer - SLACK_S), None
        )
        if tone is not None:
            side, method = CUSTOMER, "audio"
            why = call.say("hangup.by_tone", t=f"{last_customer:.1f}", a=f"{tone.start:.1f}", b=f"{tone.end:.1f}")
            ev_text, ev_start, ev_end = f"[busy tone {tone.start:.1f}-{tone.end:.1f} s]", tone.start, tone.end
        elif last is not None and last.utt.speaker in (AGENT, UNKNOWN):
            tail = call.t.duration_s - last.utt.end
            if tail <= c.tail_s:
                side, method = AGENT, "audio"
                why = call.say("hangup.by_end", t=f"{last.utt.end:.1f}", tail=f"{tail:.1f}")
                ev_text, ev_start, ev_end = last.utt.text, last.utt.start, call.t.duration_s
    if side is None:
        tail = call.t.duration_s - call.speech_end
        return call.verdict(NA, "hangup.undecidable", {"tail": f"{tail:.1f}"})
    result = PASS if side == c.expect else FAIL
    return call.verdict(result, f"hangup.{side}_first", {"why": why}, evidence_text=ev_text, start=ev_start,
                        end=ev_end, matched_by=method)


def _forbidden(call: _Call, item: Item, c: ForbiddenCheck) -> _Verdict:
    segs = call.eligible(item.speaker)
    found: list[tuple[_Hit, float, bool]] = []
    taken: list[tuple[int, int, int]] = []  # (seg, norm_start, norm_end) already counted
    for fp in c.phrases:
        excused = call.hits(segs, fp.unless) if fp.unless else []
        for h in call.hits(segs, (fp.phrase,), c.tolerance, strict_you=True):
            span = (h.seg.n, h.match.norm_start, h.match.norm_end)
            if any(s == span[0] and a < span[2] and span[1] < b for s, a, b in taken):
                continue
            if any(_overlaps(h, e) for e in excused):
                continue
            taken.append(span)
            found.append((h, fp.points, fp.critical))
            break
    who = call.who(item.speaker)
    if not found:
        text, start, end = _searched(segs, item.speaker, call)
        return call.verdict(PASS, "forbidden.none", {"who": who}, evidence_text=text, start=start, end=end,
                            matched_by=BY_TEXT)
    found.sort(key=lambda x: x[0].start)
    hits = [h for h, _, _ in found]
    deduction = min(item.weight, sum(p for _, p, _ in found))
    critical = any(cr for _, _, cr in found)
    said = [call.say("forbidden.hit_critical" if cr else "forbidden.hit", who=who, said=_said(call, h))
            for h, _, cr in found]
    reason = call.join(said + [call.say("forbidden.deduction", points=f"{deduction:g}")])
    return call.verdict(
        FAIL, "forbidden.said", reason=reason,
        evidence_text=" … ".join(dict.fromkeys(_quote(h) for h in hits)),
        start=hits[0].start, end=hits[-1].end, matched_by=_by(hits),
        needs_review=any(call.hit_low(h) for h in hits), deduction=deduction, critical_hit=critical,
    )  # fmt: skip


# --- triggers, items, call --------------------------------------------------------------------


def _trigger(call: _Call, w: When) -> tuple[float, str, bool] | None:
    """(time, description, decided by the model) of the earliest trigger, or None."""
    found: list[tuple[float, str, bool]] = []
    for speaker, phrases in ((CUSTOMER, w.customer_says), (AGENT, w.agent_says)):
        if phrases:
            # Cue words match as written or as homophones only: one confused syllable turns
            # 怎么还 into 怎么改; the intent model covers what the words miss.
            hits = call.hits(call.eligible(speaker), phrases, tolerance=0)
            if hits:
                found.append((hits[0].start, call.say("trigger.says", who=call.who(speaker),
                                                      said=_said(call, hits[0])), False))
    if w.customer_intent:
        model = load_model()
        for seg in call.eligible(CUSTOMER):
            for label in w.customer_intent:
                yes, p = model.says(label, seg.utt.text, norm=seg.prep.norm, pinyin=seg.prep.pinyin)
                if yes:
                    found.append((seg.utt.start, call.say(f"trigger.model.{label}", t=f"{seg.utt.start:.1f}",
                                                          quote=seg.utt.text[:20], p=f"{p:.2f}"), True))
                    break
            else:
                continue
            break
    if w.wait_over_s is not None:
        waits = call.waits(w.wait_over_s)
        if waits:
            found.append((waits[0].start, call.say("trigger.wait", len=f"{waits[0].length:.1f}",
                                                   t=f"{waits[0].start:.1f}"), False))
    return min(found, key=lambda f: f[0]) if found else None


def _ignoring_after(judge: Callable[[_Call, Item, Any], _Verdict]) -> Callable[[_Call, Item, Any, float | None], _Verdict]:
    return lambda call, item, check, _after: judge(call, item, check)


# check type → the function that judges it (call, item, check, trigger time); only a phrase check
# looks for its phrases after the time an item's `when` was triggered
_CHECKS: dict[type, Callable[[_Call, Item, Any, float | None], _Verdict]] = {
    PhraseCheck: _phrase,
    IntroductionCheck: _ignoring_after(_introduction),
    ConfirmationCheck: _ignoring_after(_confirmation),
    HoldCheck: _ignoring_after(_hold),
    SilenceCheck: _ignoring_after(_silence),
    InterruptionCheck: _ignoring_after(_interruption),
    SpeechRateCheck: _ignoring_after(_speech_rate),
    HangupCheck: _ignoring_after(_hangup),
    ForbiddenCheck: _ignoring_after(_forbidden),
}


def _verdict(call: _Call, item: Item) -> _Verdict:
    after = None
    prefix = ""
    by_model = False
    if item.when is not None:
        trig = _trigger(call, item.when)
        if trig is None:
            reason = item.when.reason if item.when.reason is not None else call.say("when.not_triggered")
            return call.verdict(NA, "when.not_triggered", reason=reason)
        after, prefix, by_model = trig
    judge = _CHECKS.get(type(item.check))
    if judge is None:  # the rubric loader only builds the types in _CHECKS
        raise TypeError(f"unknown check {type(item.check).__name__}")
    v = judge(call, item, item.check, after)
    if prefix and v.result != NA:
        v = replace(v, reason=call.join([prefix, v.reason]),
                    matched_by=BY_MODEL if by_model and v.result == FAIL else v.matched_by)
    if v.needs_review:
        v = replace(v, reason=call.join([v.reason, call.say("review.low_confidence")]))
    return v


def _item_result(call: _Call, item: Item) -> ItemResult:
    v = _verdict(call, item)
    if v.result == PASS:
        points = item.weight
    elif v.result == FAIL and v.deduction is not None:
        points = max(0.0, item.weight - v.deduction)
    else:
        points = 0.0
    return ItemResult(
        call_id=call.t.call_id,
        item_id=item.id,
        item_name=item.name,
        result=v.result,
        points=points,
        max_points=item.weight,
        reason=v.reason,
        evidence_text=v.evidence_text,
        evidence_start=None if v.start is None else round(v.start, 2),
        evidence_end=None if v.end is None else round(v.end, 2),
        critical=item.critical or v.critical_hit,
        needs_review=v.needs_review,
        matched_by=v.matched_by,
        reason_code=v.code,
    )


def call_outcome(items: Sequence[ItemResult], pass_score: float) -> tuple[float, bool, bool]:
    """The rubric's rule for a call: (score 0-100, passed, critical_failed) from its item verdicts.

    n/a items count neither way; a call passes at ``pass_score`` or above unless a critical item
    failed. Used for the machine's verdicts and for the final ones with people's decisions applied.
    """
    applicable = [r for r in items if r.result != NA]
    total = sum(r.max_points for r in applicable)
    score = 100.0 if total == 0 else round(100.0 * sum(r.points for r in applicable) / total, 1)
    critical_failed = any(r.result == FAIL and r.critical for r in items)
    return score, score >= pass_score and not critical_failed, critical_failed


def score_call(transcript: CallTranscript, meta: CallMeta, rubric: Rubric, *, processed_at: str) -> CallScore:
    """One CallScore with one ItemResult per rubric item, in rubric order."""
    call = _Call(transcript, meta, rubric)
    items = tuple(_item_result(call, item) for item in rubric.items)
    score, passed, critical_failed = call_outcome(items, rubric.pass_score)
    return CallScore(
        call_id=transcript.call_id,
        status="ok",
        agent_id=meta.agent_id,
        agent_name=meta.agent_name,
        team=meta.team,
        started_at=meta.started_at,
        duration_s=transcript.duration_s,
        rubric_id=rubric.id,
        rubric_version=rubric.version,
        score=score,
        passed=passed,
        critical_failed=critical_failed,
        pass_score=rubric.pass_score,
        model=transcript.model,
        processed_at=processed_at,
        items=items,
    )
