"""What every check kind reads: one call made ready for checking (`Call`), the records a check
works with (`Seg`, `Hit`, `Wait`, `Verdict`), and the helpers that quote evidence and describe
where a check looked.

A `Call` prepares each utterance once (normalised text, pinyin, word map) for all checks; what
only some checks need is computed the first time one asks for it (`cached_property`: the
timeline, utterances by id) — the place for anything else a check needs once per call, such as
the utterances' sentence vectors of the meaning layer.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from qa_pipeline import messages
from qa_pipeline.records import AGENT, CUSTOMER, SYSTEM, UNKNOWN, CallMeta, CallTranscript, Utterance
from qa_pipeline.scoring.matching import (BY_TEXT, Match, Phrase, PreparedText, find_all, is_pattern, phrase_index,
                                          possible, prepare)
from qa_pipeline.meaning.judge import CallMeaning, Closest, MeaningJudge, default_judge
from qa_pipeline.scoring.normalize import normalize_text, normalize_with_map
from qa_pipeline.scoring.rubric_records import Meaning, Rubric, Window
from qa_pipeline.scoring.timeline import Timeline, build_timeline

LOW_WORD_PROB = 0.5
LOW_AVG_LOGPROB = -1.0
QUOTE_CHARS = 60
SLACK_S = 0.5  # timestamp slack when ordering phrases around a silence
DETAIL_CHARS = 4  # a customer utterance with fewer characters than this, formulas aside, says nothing
BY_MEANING = "meaning"  # decided by the sentence encoder: closest example and similarity in the reason
BY_MODEL = "model"  # decided by the bundled intent model (intents.py): its probability in the reason

# What a customer says that gives the agent nothing to confirm: greetings, yes/no, thanks, goodbyes.
FORMULAIC = re.compile(
    r"你好|您好|喂|谢谢|谢了|多谢|再见|拜拜|好的|好吧|好|行|对的|对|是的|是|嗯|哦|啊|没有了|没有|没了|不用了|"
    r"可以|知道了|明白了|清楚了|了|吧|呢|呀|嘛|啦"
)


@dataclass(frozen=True)
class Seg:
    n: int
    utt: Utterance
    prep: PreparedText
    word_at: tuple[int, ...] | None  # normalised position → index into utt.words


@dataclass(frozen=True)
class Hit:
    seg: Seg
    match: Match
    start: float
    end: float


@dataclass(frozen=True)
class Wait:
    start: float
    end: float
    before: Seg
    after: Seg

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Verdict:
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
    review_code: str = "review.low_confidence"  # why it is held for review (review.meaning_borderline)


def _word_map(utt: Utterance, prep: PreparedText) -> tuple[int, ...] | None:
    if not utt.words:
        return None
    owner: list[int] = []
    for i, w in enumerate(utt.words):
        owner.extend([i] * len(w.text))
    joined = "".join(w.text for w in utt.words)
    norm, index = (prep.norm, prep.index) if joined == prep.original else normalize_with_map(joined)
    if norm != prep.norm:
        return None
    return tuple(owner[j] for j in index)


class Call:
    def __init__(self, transcript: CallTranscript, meta: CallMeta, rubric: Rubric,
                 judge: MeaningJudge | None = None) -> None:
        self._judge = judge
        self.t = transcript
        self.meta = meta
        self.rubric = rubric
        self.lang = rubric.language
        segs = []
        for n, u in enumerate(sorted(transcript.utterances, key=lambda u: (u.start, u.end))):
            p = prepare(u.text)
            segs.append(Seg(n, u, p, _word_map(u, p)))
        self.segs: tuple[Seg, ...] = tuple(segs)
        self.speech_end = max((s.utt.end for s in segs), default=0.0)
        # the call's opening starts when the agent is put through, after the recorded announcements
        # (speaker `system`, found in the opening only): `first_seconds` windows count from there
        self.opening_at = max((s.utt.end for s in segs if s.utt.speaker == SYSTEM), default=0.0)
        # what find_all found, by (seg, phrase, tolerance, strict_you): checks search the same phrases
        # again (the phrase is held with its result, so its id stays its own while the call is scored)
        self._found: dict[tuple[int, int, float | None, bool], tuple[Phrase, tuple[Match, ...]]] = {}

    # -- language --
    def say(self, code: str, **params: object) -> str:
        return messages.text(self.lang, code, **params)

    def verdict(self, result: str, code: str, params: dict | None = None, *, reason: str | None = None,
                **kw) -> Verdict:
        text = reason if reason is not None else self.say(code, **(params or {}))
        return Verdict(result, code, text, **kw)

    def join(self, parts: list[str]) -> str:
        return self.say("sep.clause").join(parts)

    def who(self, speaker: str) -> str:
        return self.say(f"who.{speaker}")

    # -- text --
    def eligible(self, speaker: str) -> tuple[Seg, ...]:
        if speaker == AGENT:
            return tuple(s for s in self.segs if s.utt.speaker in (AGENT, UNKNOWN))
        if speaker == CUSTOMER:
            return tuple(s for s in self.segs if s.utt.speaker in (CUSTOMER, UNKNOWN))
        return self.segs

    def times(self, seg: Seg, ns: int, ne: int) -> tuple[float, float]:
        if seg.word_at is None:
            return seg.utt.start, seg.utt.end
        words = seg.utt.words
        return words[seg.word_at[ns]].start, words[seg.word_at[ne - 1]].end

    def hits(
        self, segs: tuple[Seg, ...], phrases: tuple[Phrase, ...], tolerance: float | None = None,
        strict_you: bool = False,
    ) -> list[Hit]:
        out = []
        index = phrase_index(phrases, strict_you, tolerance) if len(phrases) > 1 else None
        found = self._found
        for seg in segs:
            for n in possible(index, seg.prep) if index is not None else range(len(phrases)):
                phrase = phrases[n]
                key = (seg.n, id(phrase), tolerance, strict_you)
                held = found.get(key)
                if held is None or held[0] is not phrase:
                    held = found[key] = (phrase, find_all(seg.prep, phrase, tolerance=tolerance, strict_you=strict_you))
                for m in held[1]:
                    start, end = self.times(seg, m.norm_start, m.norm_end)
                    out.append(Hit(seg, m, start, end))
        out.sort(key=lambda h: (h.start, h.match.how != BY_TEXT, h.match.edits))
        return out

    @cached_property
    def _spans(self) -> tuple[tuple[float, float], ...]:
        """Per seg, from when to when its utterance and its words are timed: every hit in it lies inside."""
        out = []
        for s in self.segs:
            u = s.utt
            lo, hi = u.start, u.end
            if u.words:
                lo, hi = min(lo, min(w.start for w in u.words)), max(hi, max(w.end for w in u.words))
            out.append((lo, hi))
        return tuple(out)

    def spoken_in(self, segs: tuple[Seg, ...], stretches: Sequence[tuple[float, float]]) -> tuple[Seg, ...]:
        """The segs of `segs` timed within some of the (start, end) `stretches`: a hit that starts or
        ends inside a stretch is found in these or nowhere."""
        spans = self._spans
        return tuple(s for s in segs if any(spans[s.n][1] >= a and spans[s.n][0] <= b for a, b in stretches))

    def may_hit(self, segs: tuple[Seg, ...], phrases: tuple[Phrase, ...], tolerance: float | None = None,
                strict_you: bool = False) -> dict[int, tuple[Seg, ...]]:
        """Per position of `phrases`, the segs (in order) where `hits` may find that phrase; it finds
        it in no other, and the phrases left out nowhere."""
        index = phrase_index(phrases, strict_you, tolerance)
        where: dict[int, list[Seg]] = {}
        for seg in segs:
            for n in possible(index, seg.prep):
                where.setdefault(n, []).append(seg)
        return {n: tuple(found) for n, found in where.items()}

    def hit_at(self, seg: Seg, phrase: str, ns: int, ne: int) -> Hit:
        """A text match of normalised positions ns:ne of `seg` (found by a check's own search)."""
        p = seg.prep
        match = Match(phrase, p.original[p.index[ns]: p.index[ne - 1] + 1], BY_TEXT, p.index[ns], p.index[ne - 1] + 1,
                      ns, ne)
        start, end = self.times(seg, ns, ne)
        return Hit(seg, match, start, end)

    @cached_property
    def timeline(self) -> Timeline:
        return build_timeline(self.t)

    @cached_property
    def by_id(self) -> dict[str, Seg]:
        return {s.utt.utterance_id: s for s in self.segs}

    def waits(self, longer_than: float) -> list[Wait]:
        """Silences between consecutive stretches of speech (any speaker) longer than given."""
        return [Wait(g.start, g.end, self.by_id[g.before_utterance], self.by_id[g.after_utterance])
                for g in self.timeline.gaps(longer_than)]

    def low_confidence(self, seg: Seg, ns: int | None = None, ne: int | None = None) -> bool:
        if seg.utt.avg_logprob < LOW_AVG_LOGPROB:
            return True
        words = seg.utt.words
        if not words:
            return False
        if ns is not None and ne is not None and seg.word_at is not None:
            idx = sorted(set(seg.word_at[ns:ne]))
            words = tuple(words[i] for i in idx)
        return sum(w.prob for w in words) / len(words) < LOW_WORD_PROB

    def hit_low(self, hit: Hit) -> bool:
        return self.low_confidence(hit.seg, hit.match.norm_start, hit.match.norm_end)

    # -- meaning --
    @cached_property
    def meaning(self) -> CallMeaning:
        """Every utterance's clauses and their vectors (one canonical batch of this call's texts)."""
        judge = self._judge or default_judge(self.rubric.encoder)
        meanings = [m for i in self.rubric.items for m in (i.meaning, i.when.meaning if i.when else None) if m]
        return judge.call([s.utt.text for s in self.segs], meanings, [(s.prep.norm, s.prep.index) for s in self.segs])

    def by_meaning(self, meaning: Meaning, segs: tuple[Seg, ...]) -> list[Closest]:
        """The units of `segs` that count under `meaning`, the most similar first."""
        return self.meaning.closest(meaning, [s.n for s in segs], counting=True)

    def meaning_hit(self, c: Closest) -> Hit:
        return self.span_hit(self.segs[c.seg], c.unit.start, c.unit.end, c.example.text, BY_MEANING)

    def span_hit(self, seg: Seg, a: int, b: int, phrase: str, how: str) -> Hit:
        """A hit on characters a:b of the utterance's original text, found by meaning or by a model."""
        p = seg.prep
        ns, ne = bisect_left(p.index, a), bisect_left(p.index, b)
        start, end = self.times(seg, ns, ne) if ne > ns else (seg.utt.start, seg.utt.end)
        return Hit(seg, Match(phrase, seg.utt.text[a:b], how, a, b, ns, ne), start, end)

    def said_meaning(self, hit: Hit, c: Closest) -> str:
        return self.say("said.meaning", quote=hit.match.text, t=f"{hit.start:.1f}", example=c.example.text,
                        sim=f"{c.similarity:.2f}")


# --- evidence ---------------------------------------------------------------------------------


def quote(hit: Hit) -> str:
    text = hit.seg.utt.text
    if len(text) <= QUOTE_CHARS:
        return text
    pad = max(0, (QUOTE_CHARS - (hit.match.end - hit.match.start)) // 2)
    a, b = max(0, hit.match.start - pad), min(len(text), hit.match.end + pad)
    return ("…" if a > 0 else "") + text[a:b] + ("…" if b < len(text) else "")


def quotes(hits: list[Hit]) -> str:
    """Each hit's quote once, in order."""
    return " … ".join(dict.fromkeys(quote(h) for h in hits))


def said_at(call: Call, hit: Hit) -> str:
    m = hit.match
    if is_pattern(m.phrase):
        return call.say("said.at", phrase=m.text, t=f"{hit.start:.1f}")
    phrase = m.phrase.lstrip("^=")
    if m.how == BY_TEXT and normalize_eq(m.text, phrase):
        return call.say("said.at", phrase=phrase, t=f"{hit.start:.1f}")
    return call.say("said.heard", phrase=phrase, t=f"{hit.start:.1f}", heard=m.text)


def normalize_eq(a: str, b: str) -> bool:
    return normalize_text(a) == normalize_text(b)


def wait_text(w: Wait) -> str:
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


def searched(segs: tuple[Seg, ...], speaker: str, call: Call) -> tuple[str, float, float]:
    """What a check looked through and found nothing in: (text, start, end)."""
    if not segs:
        return call.say("evidence.no_speech", who=call.who(speaker)), 0.0, call.t.duration_s
    text = " / ".join(s.utt.text for s in segs)
    if len(text) > 2 * QUOTE_CHARS:
        text = text[: 2 * QUOTE_CHARS] + "…"
    return text, segs[0].utt.start, segs[-1].utt.end


def how_matched(hits: list[Hit]) -> str:
    for how in (BY_MEANING, BY_MODEL):
        if any(h.match.how == how for h in hits):
            return how
    return BY_TEXT if all(h.match.how == BY_TEXT for h in hits) else "pinyin"


def alternatives(phrases: tuple[Phrase, ...], n: int = 4) -> str:
    """The first `n` phrases as a reader says them: no ^ / = / $ marks, each once (=再见 and 再见$ are 再见)."""
    said = dict.fromkeys(p.source.lstrip("^=").removesuffix("$") for p in phrases)
    return "/".join(list(said)[:n])


def best(hits: list[Hit]) -> Hit:
    """The earliest character match, else the earliest sound match."""
    return next((h for h in hits if h.match.how == BY_TEXT), hits[0])


def overlaps(a: Hit, b: Hit) -> bool:
    return a.seg.n == b.seg.n and a.match.norm_start < b.match.norm_end and b.match.norm_start < a.match.norm_end


def hits_verdict(call: Call, result: str, hits: list[Hit], code: str, params: dict) -> Verdict:
    """A verdict resting on phrases heard: their quotes, span, how they matched, and whether one
    was heard with low confidence."""
    return call.verdict(result, code, params, evidence_text=quotes(hits), start=min(h.start for h in hits),
                        end=max(h.end for h in hits), matched_by=how_matched(hits),
                        needs_review=any(call.hit_low(h) for h in hits))


# --- windows ----------------------------------------------------------------------------------


def window_segs(call: Call, speaker: str, w: Window) -> tuple[Seg, ...]:
    segs = call.eligible(speaker)
    if w.first_turns is not None:
        segs = segs[: w.first_turns]
    if w.last_turns is not None:
        segs = segs[-w.last_turns :]
    first = w.first_seconds_of(call.meta.direction)
    if first is not None:
        segs = tuple(s for s in segs if s.utt.start < call.opening_at + first)
    if w.last_seconds is not None:
        segs = tuple(s for s in segs if s.utt.end > call.speech_end - w.last_seconds)
    return segs


def in_window(call: Call, hit: Hit, w: Window) -> bool:
    first = w.first_seconds_of(call.meta.direction)
    if first is not None and hit.start >= call.opening_at + first:
        return False
    if w.last_seconds is not None and hit.end <= call.speech_end - w.last_seconds:
        return False
    return True


def describe(call: Call, w: Window, speaker: str) -> str:
    who = call.who(speaker)
    parts = []
    if w.first_turns is not None:
        parts.append(call.say("window.first_turns" if w.first_turns > 1 else "window.first_turn",
                              who=who, n=w.first_turns))
    if w.last_turns is not None:
        parts.append(call.say("window.last_turns" if w.last_turns > 1 else "window.last_turn",
                              who=who, n=w.last_turns))
    first = w.first_seconds_of(call.meta.direction)
    if first is not None:
        parts.append(call.say("window.first_seconds", s=f"{first:g}"))
    if w.last_seconds is not None:
        parts.append(call.say("window.last_seconds", s=f"{w.last_seconds:g}"))
    return call.say("sep.list").join(parts) if parts else call.say("window.whole")
