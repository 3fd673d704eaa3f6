"""Score one call against a rubric: a pure function of (transcript, metadata, rubric).

Every item gets pass / fail / n/a.  Every pass and fail carries evidence (quoted words and their
start/end seconds, from word timestamps where the transcript has them) and a one-line reason; an
n/a carries its reason.  Utterances whose speaker is `unknown` (mono calls before diarization) are
eligible for both agent and customer checks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

from qa_pipeline.scoring.matching import BY_TEXT, Match, Phrase, PreparedText, find_all, prepare
from qa_pipeline.records import (
    AGENT,
    CUSTOMER,
    FAIL,
    NA,
    PASS,
    UNKNOWN,
    CallMeta,
    CallScore,
    CallTranscript,
    ItemResult,
    Utterance,
)
from qa_pipeline.scoring.rubric import (
    ConfirmationCheck,
    ForbiddenCheck,
    HangupCheck,
    HoldCheck,
    InterruptionCheck,
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
    reason: str
    evidence_text: str | None = None
    start: float | None = None
    end: float | None = None
    matched_by: str | None = None
    needs_review: bool = False
    deduction: float | None = None  # forbidden: points taken off instead of all-or-nothing
    critical_hit: bool = False


def _na(reason: str) -> _Verdict:
    return _Verdict(NA, reason)


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
    def __init__(self, transcript: CallTranscript, meta: CallMeta) -> None:
        self.t = transcript
        self.meta = meta
        segs = []
        for n, u in enumerate(sorted(transcript.utterances, key=lambda u: (u.start, u.end))):
            p = prepare(u.text)
            segs.append(_Seg(n, u, p, _word_map(u, p)))
        self.segs: tuple[_Seg, ...] = tuple(segs)
        self.speech_end = max((s.utt.end for s in segs), default=0.0)

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
        self, segs: tuple[_Seg, ...], phrases: tuple[Phrase, ...], tolerance: int | None = None
    ) -> list[_Hit]:
        out = []
        for seg in segs:
            for phrase in phrases:
                for m in find_all(seg.prep, phrase, tolerance=tolerance):
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


def _said(hit: _Hit) -> str:
    m = hit.match
    heard = "" if m.how == BY_TEXT else f", heard as '{m.text}'"
    return f"'{m.phrase.lstrip('^=')}' at {hit.start:.1f} s{heard}"


def _wait_text(w: _Wait) -> str:
    """The words either side of a silence; one segment spanning it is split at the silence."""
    gap = f"[{w.length:.1f} s silence]"
    if w.before is w.after and w.before.utt.words:
        words = w.before.utt.words
        pre = "".join(x.text for x in words if x.end <= w.start + 1e-6)
        post = "".join(x.text for x in words if x.start >= w.end - 1e-6)
        before, after = pre[-QUOTE_CHARS:], post[:QUOTE_CHARS]
    else:
        before, after = w.before.utt.text[-QUOTE_CHARS:], w.after.utt.text[:QUOTE_CHARS]
    return f"{before.strip()} {gap} {after.strip()}"


def _searched(segs: tuple[_Seg, ...], what: str, call: _Call) -> tuple[str, float, float]:
    if not segs:
        return f"(no {what} speech)", 0.0, call.t.duration_s
    text = " / ".join(s.utt.text for s in segs)
    if len(text) > 2 * QUOTE_CHARS:
        text = text[: 2 * QUOTE_CHARS] + "…"
    return text, segs[0].utt.start, segs[-1].utt.end


def _by(hits: list[_Hit]) -> str:
    return BY_TEXT if all(h.match.how == BY_TEXT for h in hits) else "pinyin"


def _who(speaker: str) -> str:
    return {"any": "anyone"}.get(speaker, speaker)


# --- checks -----------------------------------------------------------------------------------


def _window_segs(call: _Call, speaker: str, w: Window) -> tuple[_Seg, ...]:
    segs = call.eligible(speaker)
    if w.first_turns is not None:
        segs = segs[: w.first_turns]
    if w.last_turns is not None:
        segs = segs[-w.last_turns :]
    if w.first_seconds is not None:
        segs = tuple(s for s in segs if s.utt.start < w.first_seconds)
    if w.last_seconds is not None:
        segs = tuple(s for s in segs if s.utt.end > call.speech_end - w.last_seconds)
    return segs


def _in_window(call: _Call, hit: _Hit, w: Window) -> bool:
    if w.first_seconds is not None and hit.start >= w.first_seconds:
        return False
    if w.last_seconds is not None and hit.end <= call.speech_end - w.last_seconds:
        return False
    return True


def _describe(w: Window, speaker: str) -> str:
    parts = []
    if w.first_turns is not None:
        parts.append(f"{speaker}'s first {'turn' if w.first_turns == 1 else f'{w.first_turns} turns'}")
    if w.last_turns is not None:
        parts.append(f"{speaker}'s last {'turn' if w.last_turns == 1 else f'{w.last_turns} turns'}")
    if w.first_seconds is not None:
        parts.append(f"first {w.first_seconds:g} s")
    if w.last_seconds is not None:
        parts.append(f"last {w.last_seconds:g} s")
    return ", ".join(parts) if parts else "the whole call"


def _best(hits: list[_Hit]) -> _Hit:
    """The earliest character match, else the earliest sound match."""
    return next((h for h in hits if h.match.how == BY_TEXT), hits[0])


def _phrase(call: _Call, item: Item, c: PhraseCheck, after: float | None) -> _Verdict:
    segs = _window_segs(call, item.speaker, c.window)
    where = _describe(c.window, _who(item.speaker))

    def found(phrases: tuple[Phrase, ...]) -> list[_Hit]:
        hs = [h for h in call.hits(segs, phrases, c.tolerance) if _in_window(call, h, c.window)]
        return [h for h in hs if after is None or h.end >= after]

    def fail(reason: str) -> _Verdict:
        text, start, end = _searched(segs, _who(item.speaker), call)
        review = any(call.low_confidence(s) for s in segs)
        return _Verdict(FAIL, reason, text, start, end, BY_TEXT, review)

    def verdict(result: str, hits: list[_Hit], reason: str) -> _Verdict:
        return _Verdict(
            result,
            reason,
            " … ".join(dict.fromkeys(_quote(h) for h in hits)),
            min(h.start for h in hits),
            max(h.end for h in hits),
            _by(hits),
            any(call.hit_low(h) for h in hits),
        )

    bad = found(c.none)
    if bad:
        return verdict(FAIL, bad[:1], f"{_who(item.speaker)} says {_said(bad[0])}, which is not allowed ({where})")
    chosen: list[_Hit] = []
    if c.any:
        hits = found(c.any)
        if not hits:
            wanted = "/".join(p.source.lstrip("^=") for p in c.any[:4])
            return fail(f"no {wanted} from the {_who(item.speaker)} ({where})")
        chosen.append(_best(hits))
    missing = []
    for group in c.all:
        hits = found(group)
        if hits:
            chosen.append(_best(hits))
        else:
            missing.append("/".join(p.source.lstrip("^=") for p in group[:4]))
    if missing:
        return fail(f"missing {'; '.join(missing)} ({where})")
    if not chosen:  # only `none` phrases, and none said
        text, start, end = _searched(segs, _who(item.speaker), call)
        return _Verdict(PASS, f"no disallowed phrase ({where})", text, start, end, BY_TEXT)
    said = "; ".join(_said(h) for h in chosen)
    return verdict(PASS, chosen, f"{_who(item.speaker)} says {said}")


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


def _confirmation(call: _Call, item: Item, c: ConfirmationCheck) -> _Verdict:
    agent = call.eligible(AGENT)
    told = _digit_runs(call, call.eligible(CUSTOMER), c.min_digits)
    candidates: list[tuple[_Hit, str]] = []
    explicit = call.hits(agent, c.phrases)
    if explicit:
        candidates.append((explicit[0], f"agent confirms: {_said(explicit[0])}"))
    for digits, said in _digit_runs(call, agent, c.min_digits):
        for cdigits, heard in told:
            same = heard.seg.n == said.seg.n and heard.match.norm_start == said.match.norm_start
            if not same and said.start >= heard.end - SLACK_S and _shares(cdigits, digits, c.min_digits):
                candidates.append(
                    (said, f"agent repeats the number {digits} at {said.start:.1f} s "
                     f"(customer said {cdigits} at {heard.start:.1f} s)")
                )
                break
    if candidates:
        hit, reason = min(candidates, key=lambda x: x[0].start)
        return _Verdict(PASS, reason, _quote(hit), hit.start, hit.end, hit.match.how, call.hit_low(hit))
    if told:
        first = told[0][1]
        return _Verdict(
            FAIL,
            f"customer gives {told[0][0]} at {first.start:.1f} s; agent never repeats or confirms it",
            _quote(first),
            first.start,
            first.end,
            BY_TEXT,
            any(call.low_confidence(s) for s in agent),
        )
    if c.na_without_numbers:
        return _na("customer gave no number to confirm and the agent confirmed nothing")
    text, start, end = _searched(agent, "agent", call)
    return _Verdict(FAIL, "agent never confirms the customer's details", text, start, end, BY_TEXT)


def _hold(call: _Call, item: Item, c: HoldCheck) -> _Verdict:
    waits = call.waits(c.max_wait_s)
    if not waits:
        return _na(f"no wait longer than {c.max_wait_s:g} s")
    segs = call.eligible(item.speaker)
    before_hits = call.hits(segs, c.before)
    after_hits = call.hits(segs, c.after)
    good: list[_Hit] = []
    for w in waits:
        pre = [h for h in before_hits if w.start - c.within_s <= h.end <= w.start + SLACK_S]
        post = [h for h in after_hits if w.end - SLACK_S <= h.start <= w.end + c.within_s]
        lacks = []
        if not pre:
            lacks.append(f"no {c.before[0].source} before it")
        if not post:
            lacks.append(f"no {c.after[0].source} after it")
        if lacks:
            text = _wait_text(w)
            review = call.low_confidence(w.before) or call.low_confidence(w.after)
            return _Verdict(
                FAIL,
                f"{w.length:.1f} s silence {w.start:.1f}-{w.end:.1f} s; {', '.join(lacks)}",
                text,
                w.start,
                w.end,
                "timeline",
                review,
            )
        good.extend((pre[-1], post[0]))
    first = waits[0]
    return _Verdict(
        PASS,
        f"{len(waits)} wait(s), e.g. {first.length:.1f} s at {first.start:.1f}-{first.end:.1f} s; "
        f"announced ({_said(good[0])}) and thanked ({_said(good[1])})",
        " … ".join(dict.fromkeys(_quote(h) for h in good)),
        min(h.start for h in good),
        max(h.end for h in good),
        _by(good),
        any(call.hit_low(h) for h in good),
    )


def _silence(call: _Call, item: Item, c: SilenceCheck) -> _Verdict:
    if not call.segs:
        return _na("no speech in the call")
    excuses = call.hits(call.segs, c.excused_by) if c.excused_by else []
    for w in call.waits(c.max_s):
        if not any(w.start - c.within_s <= h.end <= w.start + SLACK_S for h in excuses):
            return _Verdict(
                FAIL,
                f"{w.length:.1f} s of unexplained silence {w.start:.1f}-{w.end:.1f} s",
                _wait_text(w), w.start, w.end, "timeline",
            )  # fmt: skip
    gaps = call.waits(0.0)
    if gaps:
        g = max(gaps, key=lambda g: g.length)
        return _Verdict(
            PASS,
            f"no unexplained silence over {c.max_s:g} s (longest gap {g.length:.1f} s at {g.start:.1f} s)",
            _wait_text(g),
            g.start, g.end, "timeline",
        )  # fmt: skip
    return _Verdict(
        PASS, f"no silence over {c.max_s:g} s", call.segs[0].utt.text,
        call.segs[0].utt.start, call.speech_end, "timeline",
    )  # fmt: skip


def _interruption(call: _Call, item: Item, c: InterruptionCheck) -> _Verdict:
    if call.t.n_channels < 2:
        return _na("mono recording: talk-over cannot be measured")
    if any(s.utt.speaker == UNKNOWN for s in call.segs):
        return _na("speakers not separated: talk-over cannot be measured")
    worst: tuple[float, _Seg] | None = None
    for o in call.timeline.overlaps:
        if o.second == AGENT and o.first == CUSTOMER and (worst is None or o.seconds > worst[0]):
            worst = (o.seconds, call.by_id[o.utterance_id])
    if worst is not None and worst[0] > c.max_overlap_s:
        overlap, seg = worst
        return _Verdict(
            FAIL,
            f"agent talks over the customer for {overlap:.1f} s from {seg.utt.start:.1f} s",
            seg.utt.text, seg.utt.start, seg.utt.end, "timeline",
        )  # fmt: skip
    longest = worst[0] if worst else 0.0
    return _Verdict(
        PASS,
        f"agent never talks over the customer for more than {c.max_overlap_s:g} s (longest {longest:.1f} s)",
        "(no agent turn starts while the customer is speaking)" if worst is None else worst[1].utt.text,
        0.0 if worst is None else worst[1].utt.start,
        call.t.duration_s if worst is None else worst[1].utt.end,
        "timeline",
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
        return _na(f"too little {_who(item.speaker)} speech to measure the pace ({seconds:.1f} s)")
    cpm = chars / seconds * 60
    ok = c.min_cpm <= cpm <= c.max_cpm
    text, start, end = _searched(segs, _who(item.speaker), call)
    judgement = "within" if ok else ("below" if cpm < c.min_cpm else "above")
    return _Verdict(
        PASS if ok else FAIL,
        f"{cpm:.0f} characters/min over {seconds:.0f} s of speech, {judgement} {c.min_cpm:g}-{c.max_cpm:g}",
        text, start, end, "timeline",
    )  # fmt: skip


def _hangup(call: _Call, item: Item, c: HangupCheck) -> _Verdict:
    side, method, why = None, None, ""
    last_customer = max((s.utt.end for s in call.eligible(CUSTOMER)), default=0.0)
    last = call.segs[-1] if call.segs else None
    if call.meta.hangup_by in (AGENT, CUSTOMER):
        side, method = call.meta.hangup_by, "manifest"
        why = f"manifest says hangup_by={side}"
        ev_text, ev_start, ev_end = f"hangup_by={side} (manifest)", call.speech_end, call.t.duration_s
    else:
        tone = next(
            (e for e in call.t.events if e.kind == "busy_tone" and e.start >= last_customer - SLACK_S), None
        )
        if tone is not None:
            side, method = CUSTOMER, "audio"
            why = f"customer's last words end at {last_customer:.1f} s; busy tone {tone.start:.1f}-{tone.end:.1f} s"
            ev_text, ev_start, ev_end = f"[busy tone {tone.start:.1f}-{tone.end:.1f} s]", tone.start, tone.end
        elif last is not None and last.utt.speaker in (AGENT, UNKNOWN):
            tail = call.t.duration_s - last.utt.end
            if tail <= c.tail_s:
                side, method = AGENT, "audio"
                why = (f"agent's last words end at {last.utt.end:.1f} s and the recording ends "
                       f"{tail:.1f} s later with no busy tone")  # fmt: skip
                ev_text, ev_start, ev_end = last.utt.text, last.utt.start, call.t.duration_s
    if side is None:
        tail = call.t.duration_s - call.speech_end
        return _na(f"undecidable: no manifest entry, no busy tone, recording runs {tail:.1f} s after the last words")
    result = PASS if side == c.expect else FAIL
    return _Verdict(result, f"{side} hung up first ({why})", ev_text, ev_start, ev_end, method)


def _forbidden(call: _Call, item: Item, c: ForbiddenCheck) -> _Verdict:
    segs = call.eligible(item.speaker)
    found: list[tuple[_Hit, float, bool]] = []
    taken: list[tuple[int, int, int]] = []  # (seg, norm_start, norm_end) already counted
    for fp in c.phrases:
        for h in call.hits(segs, (fp.phrase,), c.tolerance):
            span = (h.seg.n, h.match.norm_start, h.match.norm_end)
            if any(s == span[0] and a < span[2] and span[1] < b for s, a, b in taken):
                continue
            taken.append(span)
            found.append((h, fp.points, fp.critical))
            break
    if not found:
        text, start, end = _searched(segs, _who(item.speaker), call)
        return _Verdict(PASS, f"no forbidden phrase in {_who(item.speaker)} speech", text, start, end, BY_TEXT)
    found.sort(key=lambda x: x[0].start)
    hits = [h for h, _, _ in found]
    deduction = min(item.weight, sum(p for _, p, _ in found))
    critical = any(cr for _, _, cr in found)
    reason = "; ".join(f"{_who(item.speaker)} says {_said(h)}" + (" (critical)" if cr else "") for h, _, cr in found)
    return _Verdict(
        FAIL,
        f"{reason}; -{deduction:g} points",
        " … ".join(dict.fromkeys(_quote(h) for h in hits)),
        hits[0].start,
        hits[-1].end,
        _by(hits),
        any(call.hit_low(h) for h in hits),
        deduction=deduction,
        critical_hit=critical,
    )


# --- triggers, items, call --------------------------------------------------------------------


def _trigger(call: _Call, w: When) -> tuple[float, str] | None:
    """(time, description) of the earliest trigger, or None."""
    found: list[tuple[float, str]] = []
    for speaker, phrases in ((CUSTOMER, w.customer_says), (AGENT, w.agent_says)):
        if phrases:
            hits = call.hits(call.eligible(speaker), phrases)
            if hits:
                found.append((hits[0].start, f"{speaker} says {_said(hits[0])}"))
    if w.wait_over_s is not None:
        waits = call.waits(w.wait_over_s)
        if waits:
            found.append((waits[0].start, f"{waits[0].length:.1f} s wait at {waits[0].start:.1f} s"))
    return min(found) if found else None


def _ignoring_after(judge: Callable[[_Call, Item, Any], _Verdict]) -> Callable[[_Call, Item, Any, float | None], _Verdict]:
    return lambda call, item, check, _after: judge(call, item, check)


# check type → the function that judges it (call, item, check, trigger time); only a phrase check
# looks for its phrases after the time an item's `when` was triggered
_CHECKS: dict[type, Callable[[_Call, Item, Any, float | None], _Verdict]] = {
    PhraseCheck: _phrase,
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
    if item.when is not None:
        trig = _trigger(call, item.when)
        if trig is None:
            return _na(item.when.reason)
        after, prefix = trig[0], f"{trig[1]}; "
    c = item.check
    judge = _CHECKS.get(type(c))
    if judge is None:  # the rubric loader only builds the types in _CHECKS
        raise TypeError(f"unknown check {type(c).__name__}")
    v = judge(call, item, c, after)
    if prefix and v.result != NA:
        v = _Verdict(v.result, prefix + v.reason, v.evidence_text, v.start, v.end, v.matched_by, v.needs_review,
                     v.deduction, v.critical_hit)  # fmt: skip
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
    call = _Call(transcript, meta)
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
