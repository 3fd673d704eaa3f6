"""Typed records that cross a module boundary: between the stages, and between the batch's parts.

Every stage takes and returns these; dicts live only inside a stage.  All records are frozen so
that no stage can mutate what an earlier one produced.  Flow: CallMeta → RawSegment (Whisper) →
CachedAudio (what the transcript cache keeps) → CallTranscript (speakers) → CallScore (rubric) →
CallPart (what the batch stores per call) → the tables and reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

AGENT = "agent"
CUSTOMER = "customer"
UNKNOWN = "unknown"

PASS = "pass"
FAIL = "fail"
NA = "na"


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
    company: str | None = None  # the company (brand) the call was for, where the manifest says


@dataclass(frozen=True)
class RawWord:
    text: str
    start: float
    end: float
    prob: float


@dataclass(frozen=True)
class RawSegment:
    """One stretch of one channel's speech as Whisper wrote it (traditional characters and all)."""

    channel: int
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: tuple[RawWord, ...]


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
class CachedAudio:
    """What the transcript cache keeps of one recording: the expensive part only (Whisper's raw
    segments, tones, speaker turns, levels); speaker labelling, guards and scoring re-run every time."""

    duration_s: float
    n_channels: int
    segments: tuple[RawSegment, ...]
    events: tuple[AudioEvent, ...]
    speaker_turns: tuple[tuple[float, float, int], ...] | None = None  # mono: (start, end, cluster); None: not diarized
    levels: tuple[tuple[int, ...], ...] | None = None  # stereo: dBFS per 50 ms frame per channel; None: not measured
    diarizer: str | None = None  # mono: diarize.speaker_model_id() that made speaker_turns; another id: stale turns
    loops_redecoded: bool = False  # looped stretches decoded again (asr.loops); False: cached before that was done
    # what decoding said (audio.decode.DecodedAudio); decoded_s None: cached before it was kept
    decoded_s: float | None = None  # seconds actually decoded
    container_s: float | None = None  # the duration the container states (None: none, or an estimate)
    lost_s: float = 0.0  # seconds that could not be decoded (damaged packets, a file cut short)
    decode_errors: int = 0  # packets that could not be decoded
    audio_note: str | None = None  # what else decoding found (identical channels, several streams …)


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
    decoded_s: float | None = None  # seconds of audio actually decoded; not given: duration_s (older outputs)
    container_s: float | None = None  # the duration the container states (None: none, or an estimate)
    lost_s: float = 0.0  # seconds of the recording that could not be decoded
    decode_errors: int = 0  # packets that could not be decoded
    audio_note: str | None = None  # what decoding found: damaged packets, identical channels, several streams …

    def __post_init__(self) -> None:
        if self.decoded_s is None:
            object.__setattr__(self, "decoded_s", self.duration_s)


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
    matched_by: str | None = None  # text | pinyin | model | manifest | audio | timeline
    reason_code: str | None = None  # stable code of `reason` (message catalogue id), whatever its language


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
    pass_score: float | None = None  # the rubric's pass mark this call was judged against
    error: str | None = None
    model: str | None = None
    processed_at: str | None = None
    items: tuple[ItemResult, ...] = field(default_factory=tuple)
    held_reason: str | None = None  # why the whole call waits for a person (audio lost): its fails are held


# --- calibration: people's verdicts beside the machine's ----------------------------------------


@dataclass(frozen=True)
class Label:
    """A person's verdict on one rubric item of one call (a labels file or the review desk)."""

    call_id: str
    item_id: str
    result: str  # pass | fail | na
    inspector: str | None = None  # who judged; None when the source does not say
    role: str | None = None  # inspector | supervisor (review desk)
    decided_at: str | None = None  # ISO 8601 (review desk)
    judged: str | None = None  # the machine verdict the person saw, when the source knows it
    stale: bool = False  # the machine has said otherwise since the person decided
    where: str = ""  # where the label came from, for messages: "labels.csv:12", "review.db"


@dataclass(frozen=True)
class Agreement:
    """How two raters agree over n pairs of verdicts. `confusion[i][j]`: the first rater said
    VERDICTS[i] (pass, fail, na), the second VERDICTS[j]; against the machine the person is first."""

    n: int
    agree: int
    confusion: tuple[tuple[int, ...], ...]
    kappa: float | None  # Cohen's κ; None when undefined
    fail_precision: float | None  # of the second rater's fails, the share the first also called fail
    fail_recall: float | None  # of the first rater's fails, the share the second also called fail

    @property
    def rate(self) -> float | None:
        return self.agree / self.n if self.n else None


@dataclass(frozen=True)
class Judged:
    """A label beside the machine's verdict on the same call and item."""

    label: Label
    item_name: str
    machine: str  # pass | fail | na
    needs_review: bool
    call_date: date
    started_at: str | None
    reason: str  # the machine's reason
    evidence_text: str | None = None
    evidence_start: float | None = None

    @property
    def agrees(self) -> bool:
        return self.label.result == self.machine


@dataclass(frozen=True)
class Unmatched:
    """A label that could not be compared, and why: unknown_call (not in OUT), call_failed (no
    verdicts), unknown_item (the call has no verdict on that item)."""

    label: Label
    why: str


@dataclass(frozen=True)
class ItemCalibration:
    """Machine vs people on one rubric item (or, item_id "*", on every item together)."""

    item_id: str
    item_name: str
    stats: Agreement
    n_review: int  # of the labelled verdicts, how many the machine flagged needs_review

    @property
    def review_share(self) -> float | None:
        return self.n_review / self.stats.n if self.stats.n else None


@dataclass(frozen=True)
class RaterAgreement:
    """Two raters over the (call, item)s both judged: two inspectors, or an inspector and the machine."""

    first: str
    second: str
    stats: Agreement


@dataclass(frozen=True)
class Calibration:
    """`qa calibrate`: every label matched to the machine's verdicts in an output folder."""

    source: str  # where the labels came from
    items: tuple[ItemCalibration, ...]  # in rubric order
    overall: ItemCalibration
    judged: tuple[Judged, ...]
    unmatched: tuple[Unmatched, ...]
    inspectors: tuple[RaterAgreement, ...]  # each pair of inspectors who judged the same (call, item)s
    versus_machine: tuple[RaterAgreement, ...]  # each inspector against the machine
    since: date | None = None
    left_out: int = 0  # labels of calls before `since`


@dataclass(frozen=True)
class VerdictChange:
    """One item of a labelled call whose verdict a candidate rubric changes."""

    call_id: str
    item_id: str
    item_name: str
    before: str | None  # None: the item is new in the candidate
    after: str | None  # None: the candidate dropped the item
    human: tuple[str, ...]  # the labels on this (call, item), if any
    reason: str  # the candidate's reason
    evidence_text: str | None = None
    evidence_start: float | None = None


@dataclass(frozen=True)
class CandidateComparison:
    """`qa calibrate --rubric`: the labelled calls scored again with a candidate rubric."""

    rubric_path: str
    rubric_id: str
    rubric_version: str
    before: Calibration
    after: Calibration
    changes: tuple[VerdictChange, ...]
    no_transcript: tuple[str, ...]  # labelled calls in OUT without a transcript to re-score
    n_calls: int  # calls re-scored
    seconds: float  # reading transcripts and scoring


@dataclass(frozen=True)
class CalibrationRun:
    """What `qa calibrate` did: the comparison, the candidate's if any, and where they were written."""

    calibration: Calibration
    candidate: CandidateComparison | None
    tables: Path  # OUT/calibration
    page: Path  # OUT/reports/calibration.html
    seconds: float


@dataclass(frozen=True)
class ItemFloor:
    """One item of `qa rubric test`: its agreement against its floor."""

    item: ItemCalibration
    floor: float | None  # None: no floor for this item

    @property
    def below(self) -> bool:
        rate = self.item.stats.rate
        return self.floor is not None and rate is not None and rate < self.floor


@dataclass(frozen=True)
class RubricTest:
    """`qa rubric test`: a rubric run over labelled transcripts, each item against its floor."""

    rubric_id: str
    rubric_version: str
    calibration: Calibration
    items: tuple[ItemFloor, ...]
    no_transcript: tuple[str, ...]  # labelled calls without a transcript in the folder

    @property
    def passed(self) -> bool:
        return not any(i.below for i in self.items)


@dataclass(frozen=True)
class ItemTrust:
    """Whether an item's automatic verdict can count at once: its agreement with people over all
    labels and over the labels of its last `last_n` labelled calls, against `floor`."""

    item_id: str
    n: int
    rate: float | None
    recent_n: int
    recent_rate: float | None
    last_n: int
    floor: float

    @property
    def trusted(self) -> bool:
        return self.recent_rate is None or self.recent_rate >= self.floor


# --- the batch ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Todo:
    """A call the batch must process (batch.plan): what is known of it before any work."""

    meta: CallMeta
    digest: str | None  # None: the file could not be read when the run started
    fingerprint: str  # of everything its result depends on ("" when unreadable)
    hash_s: float  # seconds spent hashing its audio
    cached: bool  # its transcript is in the cache: quick
    inputs: dict[str, str] = field(default_factory=dict)
    redo: str | None = None  # why an earlier run's part was not reused, e.g. "rubric changed"
    first_processed_at: str | None = None  # when an earlier run into this OUT first processed the call


@dataclass(frozen=True)
class StageResult:
    """One call through decode → transcribe → speakers (batch.stages.TranscribeStage.run)."""

    transcript: CallTranscript
    from_cache: bool  # the transcript cache had it (not filled by this run's own prefill)
    stages: Mapping[str, float]  # seconds per stage: decode, transcribe, tones, levels, diarize, speakers


@dataclass(frozen=True)
class CallPart:
    """One call's finished result, as the batch stores it between runs (OUT/parts/<call>.json)."""

    call_id: str
    fingerprint: str  # "" when the audio could not be read: such a part never matches
    score: CallScore
    transcript: CallTranscript | None  # None for a failed call
    retry: bool = False  # failed for a reason that may pass: process it again on the next run
    error_kind: str | None = None  # the exception class of a failure, e.g. DecodeError, NoSpeech
    inputs: dict[str, str] = field(default_factory=dict)  # plan.call_inputs(): says what changed when a part is redone


@dataclass(frozen=True)
class CallOutcome:
    """What an engine reports for each call it processed (batch.engine.Engine.process)."""

    call_id: str
    part: CallPart
    from_cache: bool
    stages: Mapping[str, float]  # seconds per stage, hashing excluded
    seconds: float | None  # the call's share of the engine's time; None: no work was done (its worker was lost)


@dataclass(frozen=True)
class Progress:
    """Reported after each call: enough for a progress bar with an ETA in calls and audio hours."""

    done: int
    total: int
    call_id: str
    status: str
    audio_s: float  # this call's audio
    from_cache: bool  # its transcript came from the transcript cache
    reused: bool = False  # its whole result came from an earlier run (OUT/parts)
    audio_done_s: float = 0.0  # audio of every call done so far, reused ones included
    eta_s: float | None = None  # seconds left; None while unknown


@dataclass(frozen=True)
class BatchSummary:
    out: Path
    total: int
    ok: int
    failed: int
    audio_s: float
    wall_s: float
    failures: tuple[tuple[str, str], ...]  # (call_id, error)
    report_index: Path
    reused: int = 0  # calls taken from an earlier run's parts
    failed_list: Path | None = None  # OUT/failed.csv
    run_log: Path | None = None  # OUT/logs/run-*.jsonl
