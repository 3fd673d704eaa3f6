"""The batch: discover → decode → transcribe → speakers → score → write, one call at a time."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from qa_pipeline.cache import CachedAudio, TranscriptCache, cache_key, file_digest
from qa_pipeline.decode import DEFAULT_MAX_DURATION_S, decode
from qa_pipeline.discover import discover
from qa_pipeline.errors import CallFailed, InputError, ModelError
from qa_pipeline.models import cache_root
from qa_pipeline.records import CallMeta, CallScore, CallTranscript
from qa_pipeline.rubric import Rubric, load_rubric
from qa_pipeline.score import score_call
from qa_pipeline.speakers import build_transcript
from qa_pipeline.tones import find_busy_tones
from qa_pipeline.transcribe import TranscribeOptions, Transcriber

logger = logging.getLogger("qa_pipeline")

RUN_FILE = "run.json"


@dataclass(frozen=True)
class RunConfig:
    audio_dir: Path
    out: Path
    rubric: Path
    manifest: Path | None = None
    name_pattern: str | None = None
    model: str = "base"
    device: str = "auto"
    compute_type: str | None = None
    cache_dir: Path | None = None  # transcript cache; default: <cache root>/transcripts
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    transcribe: TranscribeOptions = field(default_factory=TranscribeOptions)


@dataclass(frozen=True)
class Progress:
    """Reported after each call: enough for a progress bar with an ETA in calls and audio hours."""

    done: int
    total: int
    call_id: str
    status: str
    audio_s: float
    from_cache: bool


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


def run_batch(config: RunConfig, on_progress: Callable[[Progress], None] | None = None) -> BatchSummary:
    """Process every call; a call that fails becomes a status=failed row and the batch goes on."""
    started = time.monotonic()
    rubric = load_rubric(config.rubric)  # a bad rubric is refused before any audio is touched
    calls = discover(config.audio_dir, manifest=config.manifest, name_pattern=config.name_pattern)
    config.out.mkdir(parents=True, exist_ok=True)
    cache = TranscriptCache(config.cache_dir or cache_root() / "transcripts")
    stage = TranscribeStage(config, cache)
    transcripts: dict[str, CallTranscript] = {}
    scores: list[CallScore] = []
    audio_s = 0.0
    for done, meta in enumerate(calls, start=1):
        processed_at = _now()
        from_cache = False
        try:
            transcript, from_cache = stage.run(meta)
            transcripts[meta.call_id] = transcript
            score = score_call(transcript, meta, rubric, processed_at=processed_at)
            audio_s += transcript.duration_s
        except CallFailed as e:
            logger.warning("%s: %s", meta.call_id, e)
            score = failed_score(meta, rubric, str(e), model=stage.model_label, processed_at=processed_at)
        except ModelError:
            raise  # the model itself is unusable: every call would fail the same way
        except Exception as e:  # a bug must cost one call, not the night's batch
            logger.exception("%s: unexpected error", meta.call_id)
            error = f"internal error ({type(e).__name__}: {e}); please report it"
            score = failed_score(meta, rubric, error, model=stage.model_label, processed_at=processed_at)
        scores.append(score)
        if on_progress:
            on_progress(Progress(done, len(calls), meta.call_id, score.status, score.duration_s or 0.0, from_cache))
    index = write_outputs(config.out, calls, transcripts, scores)
    _write_run_file(config, calls)
    failures = tuple((s.call_id, s.error or "") for s in scores if s.status != "ok")
    return BatchSummary(
        out=config.out,
        total=len(scores),
        ok=len(scores) - len(failures),
        failed=len(failures),
        audio_s=audio_s,
        wall_s=time.monotonic() - started,
        failures=failures,
        report_index=index,
    )


def rescore(out: Path, rubric_path: Path) -> BatchSummary:
    """Score the transcripts of an earlier run again with `rubric_path`, without any model."""
    from qa_pipeline.tables import read_scores, read_transcripts

    started = time.monotonic()
    rubric = load_rubric(rubric_path)
    calls = _read_run_file(out)
    transcripts = read_transcripts(out)
    earlier = {s.call_id: s for s in read_scores(out)}
    scores: list[CallScore] = []
    for meta in calls:
        if meta.call_id in transcripts:
            scores.append(score_call(transcripts[meta.call_id], meta, rubric, processed_at=_now()))
        else:
            error = earlier[meta.call_id].error if meta.call_id in earlier else "no transcript in the earlier run"
            scores.append(failed_score(meta, rubric, error or "failed in the earlier run", model=None, processed_at=_now()))
    index = write_outputs(out, calls, transcripts, scores)
    failures = tuple((s.call_id, s.error or "") for s in scores if s.status != "ok")
    return BatchSummary(out, len(scores), len(scores) - len(failures), len(failures),
                        sum(t.duration_s for t in transcripts.values()), time.monotonic() - started, failures, index)


class TranscribeStage:
    """decode → Whisper → tones, cached per (audio, model, options); loads the model only on a miss."""

    def __init__(self, config: RunConfig, cache: TranscriptCache) -> None:
        self.config = config
        self.cache = cache
        self._transcriber: Transcriber | None = None

    @property
    def model_label(self) -> str:
        return self._transcriber.describe() if self._transcriber else self.config.model

    def _model(self) -> Transcriber:
        if self._transcriber is None:
            self._transcriber = Transcriber(
                self.config.model, device=self.config.device,
                compute_type=self.config.compute_type, options=self.config.transcribe,
            )
        return self._transcriber

    def run(self, meta: CallMeta) -> tuple[CallTranscript, bool]:
        try:
            digest = file_digest(meta.path)
        except OSError as e:
            raise CallFailed(f"cannot read {meta.path}: {e.strerror or e}") from e
        key = cache_key(digest, self.config.model, {**self.config.transcribe.cache_key(),
                                                    "compute_type": self.config.compute_type})
        entry = self.cache.get(key)
        from_cache = entry is not None
        if entry is None:
            audio = decode(meta.path, max_duration_s=self.config.max_duration_s)
            segments = self._model().transcribe(audio.channels)
            events = [e for i, ch in enumerate(audio.channels) for e in find_busy_tones(ch, audio.sample_rate, channel=i)]
            entry = CachedAudio(audio.duration_s, audio.n_channels, tuple(segments), tuple(events))
            self.cache.put(key, entry)
        if not entry.segments:
            raise CallFailed("no speech found in the recording (silent or not speech)")
        transcript = build_transcript(
            meta, entry.segments, duration_s=entry.duration_s, n_channels=entry.n_channels,
            model=self.model_label, events=entry.events, split_gap_s=self.config.transcribe.split_gap_s,
        )
        if not transcript.utterances:
            raise CallFailed("no usable speech: every segment was rejected as a hallucination")
        return transcript, from_cache


def failed_score(meta: CallMeta, rubric: Rubric | None, error: str, *, model: str | None, processed_at: str) -> CallScore:
    return CallScore(
        call_id=meta.call_id, status="failed", agent_id=meta.agent_id, agent_name=meta.agent_name, team=meta.team,
        started_at=meta.started_at, rubric_id=rubric.id if rubric else None,
        rubric_version=str(rubric.version) if rubric else None, error=error, model=model, processed_at=processed_at,
    )


def write_outputs(out: Path, calls: list[CallMeta], transcripts: dict[str, CallTranscript], scores: list[CallScore]) -> Path:
    from qa_pipeline.report import render_reports
    from qa_pipeline.tables import write_scores, write_transcripts

    write_transcripts(out, [transcripts[c.call_id] for c in calls if c.call_id in transcripts])
    write_scores(out, scores)
    render_reports(out, scores, transcripts, {c.call_id: c for c in calls})
    return out / "reports" / "index.html"


def _write_run_file(config: RunConfig, calls: list[CallMeta]) -> None:
    payload = {
        "audio_dir": str(config.audio_dir),
        "model": config.model,
        "calls": [{**asdict(c), "path": str(c.path)} for c in calls],
    }
    target = config.out / RUN_FILE
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(target)


def _read_run_file(out: Path) -> list[CallMeta]:
    path = Path(out) / RUN_FILE
    if not path.is_file():
        raise InputError(f"{out} holds no earlier run ({RUN_FILE} missing); run `qa run` first")
    data = json.loads(path.read_text(encoding="utf-8"))
    return [CallMeta(**{**c, "path": Path(c["path"])}) for c in data["calls"]]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
