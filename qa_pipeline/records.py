"""Typed records passed between the pipeline's stages.

Every stage takes and returns these; dicts live only inside a stage.  All records are frozen so
that no stage can mutate what an earlier one produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

AGENT = "agent"
CUSTOMER = "customer"
UNKNOWN = "unknown"
SPEAKERS = (AGENT, CUSTOMER, UNKNOWN)

PASS = "pass"
FAIL = "fail"
NA = "na"
RESULTS = (PASS, FAIL, NA)


@dataclass(frozen=True)
class CallMeta:
    """One call to process: where its audio is and what the phone system knows about it."""

    call_id: str
    path: Path
    agent_id: str | None = None
    agent_name: str | None = None
    team: str | None = None
    started_at: str | None = None  # ISO 8601 as given, e.g. 2025-03-03T09:14:05+08:00
    direction: str | None = None  # inbound | outbound
    hangup_by: str | None = None  # agent | customer | None (unknown)
    agent_channel: int | None = None  # 0 | 1 | None (decide from content)
    line: int | None = None  # manifest line this call came from, for error messages


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float
    prob: float


@dataclass(frozen=True)
class Utterance:
    """One stretch of speech by one speaker, as transcribed."""

    utterance_id: str  # f"{call_id}-{n:05d}", n in time order
    call_id: str
    speaker: str  # agent | customer | unknown
    channel: int  # source channel; 0 for mono
    start: float  # seconds from the start of the recording
    end: float
    text: str  # simplified Chinese, as displayed and matched
    raw_text: str  # what the model emitted
    avg_logprob: float
    no_speech_prob: float
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class AudioEvent:
    """Something heard in the audio that is not speech, e.g. a busy tone after a hang-up."""

    kind: str  # busy_tone
    start: float
    end: float
    channel: int | None = None


@dataclass(frozen=True)
class CallTranscript:
    """Everything the scoring stage needs to know about one call's audio."""

    call_id: str
    duration_s: float
    n_channels: int
    utterances: tuple[Utterance, ...]  # sorted by start
    model: str
    events: tuple[AudioEvent, ...] = ()
    agent_channel: int | None = None  # the channel judged to be the agent's (stereo)
    agent_channel_method: str | None = None  # manifest | content | default
    dropped: tuple[Utterance, ...] = ()  # segments removed as hallucinations, kept for audit
    drop_reasons: tuple[str, ...] = ()  # parallel to dropped


@dataclass(frozen=True)
class ItemResult:
    """The verdict on one rubric item for one call, with the evidence behind it."""

    call_id: str
    item_id: str
    item_name: str
    result: str  # pass | fail | na
    points: float
    max_points: float
    reason: str
    evidence_text: str | None = None
    evidence_start: float | None = None
    evidence_end: float | None = None
    critical: bool = False
    needs_review: bool = False
    matched_by: str | None = None  # text | pinyin | manifest | audio | timeline


@dataclass(frozen=True)
class CallScore:
    """One call's outcome: its score and item verdicts, or why it could not be scored."""

    call_id: str
    status: str  # ok | failed
    agent_id: str | None = None
    agent_name: str | None = None
    team: str | None = None
    started_at: str | None = None
    duration_s: float | None = None
    rubric_id: str | None = None
    rubric_version: str | None = None
    score: float | None = None  # 0-100
    passed: bool | None = None
    critical_failed: bool | None = None
    error: str | None = None
    model: str | None = None
    processed_at: str | None = None
    items: tuple[ItemResult, ...] = field(default_factory=tuple)
