"""Each customer turn beside the same caller's own first turns: what the mood model reads.

The voice is compared with the caller's own, never with a norm: a deep voice is not a calm one. The
baseline is the median over the customer's first BASELINE_TURNS substantive turns (4+ characters),
where a caller usually states the request and answers the first questions — three, so that one
agitated turn among them does not move it (the calmer of two biased every later turn upwards); a
turn's pitch is then so many semitones above it, its level so many dB, its speaking rate so many
times faster (log2). Talking over the agent is the
customer starting while the agent still had OVERLAP_S or more to say.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from qa_pipeline.records import AGENT, CUSTOMER, CallTranscript, Utterance

BASELINE_TURNS = 3
SUBSTANTIVE_CHARS = 4
OVERLAP_S = 0.3
MIN_RATE_SPAN_S = 0.6  # a shorter stretch of words gives no speaking rate


@dataclass(frozen=True)
class VoiceFeatures:
    pitch_st: float | None
    level_db: float | None
    rate: float | None
    overlap: bool


def spoken_chars(text: str) -> int:
    return sum(map(str.isalnum, text))


def speaking_rate(u: Utterance) -> float | None:
    """Characters per second over the stretch its words cover (its span when it has none)."""
    start, end = (u.words[0].start, u.words[-1].end) if u.words else (u.start, u.end)
    n = spoken_chars(u.text)
    return n / (end - start) if end - start >= MIN_RATE_SPAN_S and n else None


def customer_turns(transcript: CallTranscript) -> list[Utterance]:
    return [u for u in transcript.utterances if u.speaker == CUSTOMER]


def _median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def talks_over(u: Utterance, agent: Sequence[Utterance]) -> bool:
    return any(a.start < u.start < a.end - OVERLAP_S for a in agent)


def voice_features(transcript: CallTranscript) -> list[VoiceFeatures]:
    """One entry per customer turn (in order), relative to the caller's own first turns."""
    turns = customer_turns(transcript)
    agent = [u for u in transcript.utterances if u.speaker == AGENT]
    first = [u for u in turns if spoken_chars(u.text) >= SUBSTANTIVE_CHARS][:BASELINE_TURNS] or turns[:BASELINE_TURNS]
    pitch0 = _median([u.pitch_hz for u in first])
    level0 = _median([u.level_db for u in first])
    rate0 = _median([speaking_rate(u) for u in first])
    out = []
    for u in turns:
        rate = speaking_rate(u)
        out.append(VoiceFeatures(
            pitch_st=12 * math.log2(u.pitch_hz / pitch0) if u.pitch_hz and pitch0 else None,
            level_db=u.level_db - level0 if u.level_db is not None and level0 is not None else None,
            rate=math.log2(rate / rate0) if rate and rate0 else None,
            overlap=talks_over(u, agent),
        ))
    return out
