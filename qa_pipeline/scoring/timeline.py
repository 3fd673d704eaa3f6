"""One call's timeline: who spoke when, the silences between them, and who talked over whom.

A pure function of the transcript. Speech is measured on word timestamps where the transcript has
them, so a hold inside one long utterance (请您稍等 … 12 s … 让您久等了) is a silence too. The
rubric's dead-air, hold and interruption checks (score.py) read it.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from operator import itemgetter
from typing import Callable

from qa_pipeline.records import UNKNOWN, CallTranscript, Utterance

MERGE_GAP_S = 1.0  # one speaker's utterances closer than this, nobody else starting between, are one turn


@dataclass(frozen=True)
class Turn:
    """One speaker holding the floor: consecutive utterances of theirs with short pauses."""

    speaker: str
    start: float
    end: float
    text: str
    utterance_ids: tuple[str, ...]


@dataclass(frozen=True)
class Silence:
    """A stretch where nobody speaks. `before`/`after` is None at the start/end of the recording."""

    start: float
    end: float
    before: str | None  # the speaker whose speech ends it … (the last to stop)
    after: str | None  # … and the one whose speech ends it
    before_utterance: str | None = None  # their utterance ids
    after_utterance: str | None = None

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Overlap:
    """`second` starts an utterance while `first` is speaking; both talk for `seconds` in all
    (summed over the words of that utterance), between `start` and `end`."""

    start: float  # when `second` came in
    end: float  # when the last stretch of double talk in that utterance ends
    first: str  # who was talking
    second: str  # who came in
    seconds: float
    utterance_id: str  # the utterance `second` came in with


@dataclass(frozen=True)
class Timeline:
    turns: tuple[Turn, ...]
    silences: tuple[Silence, ...]  # every gap in the speech, longest or not, in time order
    overlaps: tuple[Overlap, ...]  # stereo only: on one channel nobody can be heard over anyone

    def gaps(self, longer_than: float = 0.0) -> tuple[Silence, ...]:
        """The silences between two stretches of speech (not before the first or after the last
        words of the call) longer than `longer_than` seconds."""
        return tuple(s for s in self.silences if s.before is not None and s.after is not None
                     and s.seconds > longer_than)


def speech_intervals(utterance: Utterance) -> list[tuple[float, float]]:
    """Where the utterance is speech: its words, or its whole span when it has none."""
    if utterance.words:
        return [(w.start, w.end) for w in utterance.words]
    return [(utterance.start, utterance.end)]


def build_timeline(transcript: CallTranscript) -> Timeline:
    utterances = sorted(transcript.utterances, key=lambda u: (u.start, u.end))
    overlaps = _overlaps(utterances) if transcript.n_channels > 1 else ()
    return Timeline(_turns(utterances), _silences(utterances, transcript.duration_s), overlaps)


def _turns(utterances: list[Utterance]) -> tuple[Turn, ...]:
    groups: list[list[Utterance]] = []
    latest: dict[str, list[Utterance]] = {}  # each speaker's latest turn
    last_start: dict[str, float] = {}  # when each speaker last started an utterance
    for u in utterances:
        current = latest.get(u.speaker)
        if current is not None:
            end = max(x.end for x in current)
            someone_else = any(t >= end for who, t in last_start.items() if who != u.speaker)
            if u.start - end < MERGE_GAP_S and not someone_else:
                current.append(u)
                last_start[u.speaker] = u.start
                continue
        group = [u]
        groups.append(group)
        latest[u.speaker] = group
        last_start[u.speaker] = u.start
    return tuple(
        Turn(g[0].speaker, g[0].start, max(u.end for u in g), " ".join(u.text for u in g),
             tuple(u.utterance_id for u in g))
        for g in groups
    )


def _silences(utterances: list[Utterance], duration_s: float) -> tuple[Silence, ...]:
    intervals = sorted(((a, b, u) for u in utterances for a, b in speech_intervals(u)), key=itemgetter(0, 1))
    if not intervals:
        return ()
    out: list[Silence] = []
    first = intervals[0]
    if first[0] > 0:
        out.append(Silence(0.0, first[0], None, first[2].speaker, None, first[2].utterance_id))
    end, owner = first[1], first[2]
    for start, e, u in intervals[1:]:
        if start - end > 0:
            out.append(Silence(end, start, owner.speaker, u.speaker, owner.utterance_id, u.utterance_id))
        if e > end:
            end, owner = e, u
    if duration_s > end:
        out.append(Silence(end, duration_s, owner.speaker, None, owner.utterance_id, None))
    return tuple(out)


def _overlaps(utterances: list[Utterance]) -> tuple[Overlap, ...]:
    known = [u for u in utterances if u.speaker != UNKNOWN]
    spoken = [(a, b, u.speaker) for u in known for a, b in speech_intervals(u)]
    others_of = {who: [x for x in spoken if x[2] != who] for who in {u.speaker for u in known}}
    talking_at = {who: _talking(others) for who, others in others_of.items()}
    out: list[Overlap] = []
    for u in known:
        others = others_of[u.speaker]
        talking = talking_at[u.speaker](u.start)
        if talking is None:
            continue
        both = [(max(a1, a2), min(b1, b2)) for a1, b1 in speech_intervals(u) for a2, b2, _who in others
                if min(b1, b2) > max(a1, a2)]
        seconds = sum(b - a for a, b in both)
        if seconds > 0:
            out.append(Overlap(u.start, max(b for _a, b in both), talking, u.speaker, seconds, u.utterance_id))
    return tuple(out)


def _talking(spoken: list[tuple[float, float, str]]) -> Callable[[float], str | None]:
    """Who, of `spoken` (start, end, speaker), is talking at a moment: the first in order whose
    speech holds it strictly inside.  With one speaker there (two-sided calls), any will do, so a
    bisection over the starts with the latest end so far answers it."""
    if len({who for _a, _b, who in spoken}) != 1:
        return lambda t: next((who for a, b, who in spoken if a < t < b), None)
    (who,) = {who for _a, _b, who in spoken}
    ordered = sorted(spoken, key=itemgetter(0))
    starts = [a for a, _b, _who in ordered]
    latest = list(itertools.accumulate((b for _a, b, _who in ordered), max))

    def at(t: float) -> str | None:
        n = bisect.bisect_left(starts, t)  # the stretches that began before t
        return who if n and latest[n - 1] > t else None

    return at
