"""The batch: discover → decode → transcribe → speakers → score → write, one call at a time.

A batch survives being killed at any moment: it holds OUT/.lock while it writes, stores each
finished call as OUT/parts/<call>.json (atomic), reuses those parts when the same command runs
again, and writes every output from the parts at the end (each file atomically), so a resumed run
ends with the same tables as an uninterrupted one. Failed calls: see errors.CallFailed.retry.
OUT/logs/run-*.jsonl records each call's stages and timings; OUT/failed.csv lists the failures.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from qa_pipeline.cache import CachedAudio, TranscriptCache, cache_key, file_digest
from qa_pipeline.decode import DEFAULT_MAX_DURATION_S, check_readable, decode, is_silent
from qa_pipeline.discover import discover
from qa_pipeline.errors import AudioMissing, CallFailed, InputError, ModelError, NoSpeech, OutputError
from qa_pipeline.lock import output_lock
from qa_pipeline.models import cache_root
from qa_pipeline.parts import (PARTS_DIR, CallPart, call_inputs, changed_inputs, fingerprint, read_part, write_atomic,
                                write_part)
from qa_pipeline.records import CallMeta, CallScore, CallTranscript
from qa_pipeline.rubric import Rubric, load_rubric
from qa_pipeline.score import score_call
from qa_pipeline.diarize import SpeakerModelMissing, default_embedder, diarize, speaker_model_id
from qa_pipeline.diarize import speech_regions as diarize_regions
from qa_pipeline.speakers import build_transcript, channel_levels
from qa_pipeline.tones import find_busy_tones
from qa_pipeline.runlog import RunLog
from qa_pipeline.transcribe import TranscribeOptions, Transcriber, pick_compute_type, pick_device

logger = logging.getLogger("qa_pipeline")

RUN_FILE = "run.json"
FAILED_FILE = "failed.csv"


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


def run_batch(
    config: RunConfig,
    on_progress: Callable[[Progress], None] | None = None,
    *,
    transcriber: Transcriber | None = None,
) -> BatchSummary:
    """Process every call; a call that fails becomes a status=failed row and the batch goes on.

    Resumable: each finished call is stored as a part in OUT/parts; running the same command again
    reuses every part whose inputs are unchanged (and which did not fail for a passing reason),
    processes the rest, then writes all outputs from the parts. `transcriber` replaces the model
    the config names (tests inject faults through it).
    """
    started = time.monotonic()
    rubric = load_rubric(config.rubric)  # a bad rubric is refused before any audio is touched
    calls = discover(config.audio_dir, manifest=config.manifest, name_pattern=config.name_pattern)
    make_output_folder(config.out)
    with output_lock(config.out, "qa run"), RunLog(config.out) as log:
        try:
            _remove_temp_files(config.out)  # left by a killed run; nobody else writes OUT while we hold the lock
            return _run_locked(config, rubric, calls, on_progress, transcriber, log, started)
        except OSError as e:  # disk full, folder made read-only …: nothing more can be kept
            _log_abort(log, e)
            raise OutputError(f"cannot write {e.filename or config.out}: {e.strerror or e}; "
                              "fix that and run the same command again to finish") from e
        except BaseException as e:
            _log_abort(log, e)
            raise


def make_output_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the output folder {out}: {e.strerror or e}") from e


def _log_abort(log: RunLog, e: BaseException) -> None:
    try:
        log.write("abort", error=f"{type(e).__name__}: {e}")
    except OSError:
        pass  # the log is on the same full disk


@dataclass
class _Todo:
    meta: CallMeta
    digest: str | None  # None: the file could not be read when the run started
    fingerprint: str
    hash_s: float
    cached: bool  # its transcript is in the cache: quick
    inputs: dict[str, str] = field(default_factory=dict)
    redo: str | None = None  # why an earlier run's part was not reused, e.g. "rubric changed"


PREFILL_GROUP = 4  # calls transcribed together by the packed decoder: fuller batches, at most this many lost to a crash


def _plan(calls: list[CallMeta], stage: "TranscribeStage", settings: dict, rubric_digest: str,
          parts_dir: Path) -> tuple[list[tuple[CallMeta, CallPart, float]], list[_Todo]]:
    """Split the calls into those an earlier run of the same command finished (meta, part, seconds
    spent hashing) and those still to do; the same for every engine."""
    done_before: list[tuple[CallMeta, CallPart, float]] = []
    todo: list[_Todo] = []
    for meta in calls:
        t0 = time.monotonic()
        try:
            digest: str | None = audio_digest(meta.path)
        except AudioMissing:
            digest = None  # processing it says why, in the same words as a file that vanishes later
        hash_s = time.monotonic() - t0
        fp = fingerprint(digest, meta, settings, rubric_digest) if digest else ""
        inputs = call_inputs(digest, meta, settings, rubric_digest) if digest else {}
        part = read_part(parts_dir, meta.call_id) if digest else None
        if part is not None and part.fingerprint == fp and not part.retry:
            done_before.append((meta, part, hash_s))
        else:
            cached = digest is not None and stage.cache.contains(stage.cache_key(digest))
            redo = None
            if part is not None:
                redo = "failed last time" if part.fingerprint == fp else f"{', '.join(changed_inputs(part, inputs))} changed"
            todo.append(_Todo(meta, digest, fp, hash_s, cached, inputs, redo))
    return done_before, todo


def _run_locked(config: RunConfig, rubric: Rubric, calls: list[CallMeta], on_progress, transcriber,
                log: RunLog, started: float) -> BatchSummary:
    cache = TranscriptCache(config.cache_dir or cache_root() / "transcripts")
    stage = TranscribeStage(config, cache, transcriber)
    settings = stage.settings()
    rubric_digest = file_digest(config.rubric)
    parts_dir = config.out / PARTS_DIR
    log.write("start", audio_dir=str(config.audio_dir), manifest=str(config.manifest) if config.manifest else None,
              rubric=str(config.rubric), rubric_id=rubric.id, rubric_version=str(rubric.version),
              settings=settings, calls=len(calls), pid=os.getpid())

    results: dict[str, CallPart] = {}
    done = 0
    audio_done = 0.0
    # 1. what an earlier run of the same command finished
    done_before, todo = _plan(calls, stage, settings, rubric_digest, parts_dir)
    for meta, part, hash_s in done_before:
        results[meta.call_id] = part
        done += 1
        audio_s = part.transcript.duration_s if part.transcript else 0.0
        audio_done += audio_s
        log.write("call", **_call_record(meta, part, reused=True, from_cache=True, audio_s=audio_s,
                                         stages={"hash": hash_s}, seconds=hash_s), redo=None)
        if on_progress:
            on_progress(Progress(done, len(calls), meta.call_id, part.score.status, audio_s, True,
                                 reused=True, audio_done_s=audio_done, eta_s=None))

    # 2. the rest: cached transcripts first, so that the ETA soon measures only real transcription
    todo.sort(key=lambda t: not t.cached)
    eta = _Eta(todo)
    groups = [[(t.meta, t.digest) for t in todo[i:i + PREFILL_GROUP] if not t.cached]
              for i in range(0, len(todo), PREFILL_GROUP)]
    prefetch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-decode")
    ahead = prefetch.submit(stage.decode_group, groups[0]) if groups else None
    for n, item in enumerate(todo, start=1):
        t0 = time.monotonic()
        if (n - 1) % PREFILL_GROUP == 0:  # the packed decoder batches the next few calls together
            group = (n - 1) // PREFILL_GROUP
            decoded = ahead.result()
            # decode the next group in a worker while the model works on this one (bounded: one ahead)
            ahead = prefetch.submit(stage.decode_group, groups[group + 1]) if group + 1 < len(groups) else None
            stage.prefill(groups[group], decoded)
        part, from_cache, stages = _process(item, stage, rubric)
        write_part(parts_dir, part, before_rename=lambda: _fault("part-tmp", n))
        _fault("part", n)
        results[item.meta.call_id] = part
        seconds = time.monotonic() - t0 + item.hash_s
        eta.finished(item.cached, seconds)
        done += 1
        audio_s = part.transcript.duration_s if part.transcript else 0.0
        audio_done += audio_s
        log.write("call", **_call_record(item.meta, part, reused=False, from_cache=from_cache, audio_s=audio_s,
                                         stages={"hash": item.hash_s, **stages}, seconds=seconds), redo=item.redo)
        if on_progress:
            on_progress(Progress(done, len(calls), item.meta.call_id, part.score.status, audio_s, from_cache,
                                 reused=False, audio_done_s=audio_done, eta_s=eta.seconds_left()))

    prefetch.shutdown(wait=True)
    # 3. consolidate: every output is written again from the parts, in discovery order
    return _consolidate(config, calls, results, reused=len(calls) - len(todo), log=log, started=started)


def _consolidate(config: RunConfig, calls: list[CallMeta], results: dict[str, CallPart], *, reused: int,
                 log: RunLog, started: float) -> BatchSummary:
    """Write every output from the calls' parts, in discovery order; the same for every engine."""
    ordered = [results[c.call_id] for c in calls]
    scores = [p.score for p in ordered]
    transcripts = {p.call_id: p.transcript for p in ordered if p.transcript is not None}
    index = write_outputs(config.out, calls, transcripts, scores)
    _write_run_file(config, calls)
    failed_list = _write_failed_list(config.out, calls, results)
    _fault("end")
    failures = tuple((s.call_id, s.error or "") for s in scores if s.status != "ok")
    summary = BatchSummary(
        out=config.out,
        total=len(scores),
        ok=len(scores) - len(failures),
        failed=len(failures),
        audio_s=sum(t.duration_s for t in transcripts.values()),
        wall_s=time.monotonic() - started,
        failures=failures,
        report_index=index,
        reused=reused,
        failed_list=failed_list,
        run_log=log.path,
    )
    log.write("end", total=summary.total, ok=summary.ok, failed=summary.failed, reused=summary.reused,
              audio_s=round(summary.audio_s, 3), wall_s=round(summary.wall_s, 3), failed_list=str(failed_list))
    return summary


def _process(item: _Todo, stage: TranscribeStage, rubric: Rubric) -> tuple[CallPart, bool, dict[str, float]]:
    """One call, start to score; every failure but an unusable model becomes a failed part."""
    meta = item.meta
    processed_at = _now()
    stages: dict[str, float] = {}
    from_cache = False
    try:
        digest = item.digest or audio_digest(meta.path)
        transcript, from_cache = stage.run(meta, digest, stages)
        t0 = time.monotonic()
        score = score_call(transcript, meta, rubric, processed_at=processed_at)
        stages["score"] = time.monotonic() - t0
        return CallPart(meta.call_id, item.fingerprint, score, transcript, inputs=item.inputs), from_cache, stages
    except CallFailed as e:
        logger.warning("%s: %s", meta.call_id, e)
        error, kind, retry = str(e), type(e).__name__, e.retry
    except ModelError:
        raise  # the model itself is unusable: every call would fail the same way
    except Exception as e:  # a bug must cost one call, not the night's batch
        logger.exception("%s: unexpected error", meta.call_id)
        error, kind, retry = f"internal error ({type(e).__name__}: {e}); please report it", "internal", True
    score = failed_score(meta, rubric, error, model=stage.model_label, processed_at=processed_at)
    part = CallPart(meta.call_id, item.fingerprint, score, None, retry=retry, error_kind=kind, inputs=item.inputs)
    return part, from_cache, stages


def _call_record(meta: CallMeta, part: CallPart, *, reused: bool, from_cache: bool, audio_s: float,
                 stages: dict[str, float], seconds: float) -> dict:
    return {
        "call_id": meta.call_id, "path": str(meta.path), "status": part.score.status, "error": part.score.error,
        "error_kind": part.error_kind, "retry": part.retry, "reused": reused, "from_cache": from_cache,
        "audio_s": round(audio_s, 3), "stages": {k: round(v, 4) for k, v in stages.items()},
        "seconds": round(seconds, 4), "processed_at": part.score.processed_at,
    }


class _Eta:
    """Seconds left, measured on the calls that needed work of the same kind.

    Reused parts cost nothing and cached transcripts almost nothing; counting them with the calls
    Whisper must hear would make the estimate far too hopeful after a resume.
    """

    def __init__(self, todo: list[_Todo]) -> None:
        self.left = {True: sum(t.cached for t in todo), False: sum(not t.cached for t in todo)}
        self.spent = {True: 0.0, False: 0.0}
        self.count = {True: 0, False: 0}

    def finished(self, cached: bool, seconds: float) -> None:
        self.left[cached] -= 1
        self.spent[cached] += seconds
        self.count[cached] += 1

    def seconds_left(self) -> float | None:
        total = 0.0
        for kind in (True, False):
            if not self.left[kind]:
                continue
            if not self.count[kind]:
                if kind:
                    continue  # quick calls not yet measured: count them as nothing
                return None  # no call transcribed yet: unknown
            total += self.left[kind] * self.spent[kind] / self.count[kind]
        return total


def transcribe_batch(config: RunConfig, on_progress: Callable[[Progress], None] | None = None) -> BatchSummary:
    """Transcribe every call into the transcript cache and OUT/transcripts, OUT/recordings; no
    scoring. A later `qa run` with the same model and options transcribes nothing again."""
    from qa_pipeline.tables import write_transcripts

    started = time.monotonic()
    calls = discover(config.audio_dir, manifest=config.manifest, name_pattern=config.name_pattern)
    make_output_folder(config.out)
    stage = TranscribeStage(config, TranscriptCache(config.cache_dir or cache_root() / "transcripts"))
    transcripts: dict[str, CallTranscript] = {}
    failures: list[tuple[str, str]] = []
    audio_s = 0.0
    with output_lock(config.out, "qa transcribe"):
        digests: dict[str, str | None] = {}
        for meta in calls:
            try:
                digests[meta.call_id] = audio_digest(meta.path)
            except AudioMissing:
                digests[meta.call_id] = None
        for n, meta in enumerate(calls, start=1):
            if (n - 1) % PREFILL_GROUP == 0:
                stage.prefill([(m, digests[m.call_id]) for m in calls[n - 1:n - 1 + PREFILL_GROUP]])
            try:
                transcript, from_cache = stage.run(meta, digests[meta.call_id] or audio_digest(meta.path), {})
                transcripts[meta.call_id] = transcript
                audio_s += transcript.duration_s
                status, seconds = "ok", transcript.duration_s
            except CallFailed as e:
                failures.append((meta.call_id, str(e)))
                status, seconds, from_cache = "failed", 0.0, False
            if on_progress:
                on_progress(Progress(n, len(calls), meta.call_id, status, seconds, from_cache, audio_done_s=audio_s))
        write_transcripts(config.out, [transcripts[c.call_id] for c in calls if c.call_id in transcripts],
                          replaces=[c.call_id for c in calls])
    return BatchSummary(config.out, len(calls), len(transcripts), len(failures), audio_s, time.monotonic() - started,
                        tuple(failures), config.out / "transcripts" / "transcripts.parquet")


def rescore(out: Path, rubric_path: Path) -> BatchSummary:
    """Score the transcripts of an earlier run again with `rubric_path`, without any model."""
    from qa_pipeline.tables import read_scores, read_transcripts

    started = time.monotonic()
    rubric = load_rubric(rubric_path)
    calls = _read_run_file(out)
    with output_lock(Path(out), "qa score"):
        _remove_temp_files(Path(out))
        transcripts = read_transcripts(out)
        earlier = {s.call_id: s for s in read_scores(out)} if (Path(out) / "scores" / "calls").exists() else {}
        processed_at = _now()
        scored = score_many([(transcripts[m.call_id], m) for m in calls if m.call_id in transcripts], rubric, processed_at)
        scores: list[CallScore] = []
        for meta in calls:
            if meta.call_id in scored:
                scores.append(scored[meta.call_id])
            else:
                error = earlier[meta.call_id].error if meta.call_id in earlier else "no transcript in the earlier run"
                scores.append(failed_score(meta, rubric, error or "failed in the earlier run", model=None,
                                           processed_at=processed_at))
        index = write_outputs(out, calls, transcripts, scores)
    failures = tuple((s.call_id, s.error or "") for s in scores if s.status != "ok")
    return BatchSummary(out, len(scores), len(scores) - len(failures), len(failures),
                        sum(t.duration_s for t in transcripts.values()), time.monotonic() - started, failures, index)


def score_many(work: list[tuple[CallTranscript, CallMeta]], rubric: Rubric, processed_at: str) -> dict[str, CallScore]:
    """Score many calls, on every core when there are enough of them (scoring is pure)."""
    from functools import partial

    from qa_pipeline.parallel import map_chunks

    scores = map_chunks(partial(_score_chunk, rubric=rubric, processed_at=processed_at), work)
    return {score.call_id: score for score in scores}


def _score_chunk(work, *, rubric: Rubric, processed_at: str) -> list[CallScore]:
    return [score_call(t, meta, rubric, processed_at=processed_at) for t, meta in work]


class TranscribeStage:
    """decode → Whisper → tones, cached per (audio, model, options); loads the model only on a miss."""

    def __init__(self, config: RunConfig, cache: TranscriptCache, transcriber: Transcriber | None = None) -> None:
        self.config = config
        self.cache = cache
        self._transcriber = transcriber
        self._embedder = None  # SpeakerEmbedder, False when missing, None before the first mono call
        self._prefilled: dict[str, dict[str, float]] = {}  # cache key → stage seconds, from prefill()
        if transcriber is not None:
            self.model_label = transcriber.describe()
        else:  # the same label whether or not this run ends up loading the model
            device = pick_device(config.device)
            self.model_label = f"{config.model} ({device}, {pick_compute_type(device, config.compute_type)})"

    def settings(self) -> dict:
        """What a call's result depends on besides its audio, metadata and rubric."""
        return {"model": self.config.model, "model_label": self.model_label, "device": self.config.device,
                "compute_type": self.config.compute_type, "transcribe": self.config.transcribe.cache_key(),
                "diarizer": speaker_model_id(),
                "max_duration_s": self.config.max_duration_s}

    def cache_key(self, digest: str) -> str:
        return cache_key(digest, self.config.model, {**self.config.transcribe.cache_key(),
                                                     "compute_type": self.config.compute_type})

    def prefill(self, work: Sequence[tuple[CallMeta, str | None]], decoded=None) -> None:
        """Transcribe the uncached calls of `work` together and cache them: the packed decoder
        fills its batches from all of them. A call that cannot be decoded is left to run(), which
        meets the same error and reports it; so is the whole group when the model fails on it.
        `decoded`: what decode_group(work) returned, when a worker thread ran it ahead of time."""
        if self.config.transcribe.decoder != "packed":
            return
        pending = decoded if decoded is not None else self.decode_group(work)
        if len(pending) < 2:
            return
        t0 = time.monotonic()
        try:
            results = self._model().transcribe_many([audio.channels for _d, audio, _s in pending])
        except (CallFailed, RuntimeError):
            return  # run() tries each call alone, so that only a call the model fails on fails
        total_audio = sum(audio.duration_s for _d, audio, _s in pending) or 1.0
        transcribe_s = time.monotonic() - t0
        for (digest, audio, decode_s), segments in zip(pending, results):
            stages = {"decode": decode_s, "transcribe": transcribe_s * audio.duration_s / total_audio}
            entry = self._entry(audio, segments, stages)
            self.cache.put(self.cache_key(digest), entry)
            self._prefilled[self.cache_key(digest)] = stages

    def decode_group(self, work: Sequence[tuple[CallMeta, str | None]]) -> list:
        """(digest, audio, seconds) of each uncached, decodable, non-silent call of `work`; safe to
        run in a worker thread while the model works on the previous group."""
        if self.config.transcribe.decoder != "packed":
            return []
        pending = []
        for meta, digest in work:
            if digest is None or self.cache.contains(self.cache_key(digest)):
                continue
            t0 = time.monotonic()
            try:
                audio = decode(meta.path, max_duration_s=self.config.max_duration_s)
            except CallFailed:
                continue
            if not is_silent(audio):
                pending.append((digest, audio, time.monotonic() - t0))
        return pending

    def _entry(self, audio, segments, stages: dict[str, float]) -> CachedAudio:
        """What the cache keeps of a freshly transcribed call: segments, tones, speaker turns."""
        t0 = time.monotonic()
        events = [e for i, ch in enumerate(audio.channels) for e in find_busy_tones(ch, audio.sample_rate, channel=i)]
        stages["tones"] = time.monotonic() - t0
        entry = CachedAudio(audio.duration_s, audio.n_channels, tuple(segments), tuple(events))
        return self._diarized(self._levelled(entry, audio, stages), audio, stages)

    def _levelled(self, entry: CachedAudio, audio, stages: dict[str, float]) -> CachedAudio:
        """Stereo: each channel's loudness envelope, for telling channel bleed from speech."""
        if entry.n_channels != 2 or entry.levels is not None:
            return entry
        t0 = time.monotonic()
        levels = channel_levels(audio.channels, audio.sample_rate)
        stages["levels"] = time.monotonic() - t0
        return replace(entry, levels=levels)

    def _diarized(self, entry: CachedAudio, audio, stages: dict[str, float]) -> CachedAudio:
        if entry.n_channels != 1 or entry.speaker_turns is not None or not entry.segments or self.embedder() is None:
            return entry
        t0 = time.monotonic()
        turns = diarize(audio.channels[0], audio.sample_rate, diarize_regions(audio.channels[0]), embedder=self.embedder())
        stages["diarize"] = time.monotonic() - t0
        return replace(entry, speaker_turns=tuple((t.start, t.end, t.cluster) for t in turns))

    def embedder(self):
        """The speaker-embedding model for mono calls, or None when it is not installed (mono calls
        then keep one 'unknown' speaker; the warning says how to install it)."""
        if self._embedder is None:
            try:
                self._embedder = default_embedder()
            except SpeakerModelMissing as e:
                logger.warning("mono calls get no speaker labels: %s", e)
                self._embedder = False
        return self._embedder or None

    def _model(self) -> Transcriber:
        if self._transcriber is None:
            self._transcriber = Transcriber(
                self.config.model, device=self.config.device,
                compute_type=self.config.compute_type, options=self.config.transcribe,
            )
        return self._transcriber

    def run(self, meta: CallMeta, digest: str | None = None,
            stages: dict[str, float] | None = None) -> tuple[CallTranscript, bool]:
        """The call's transcript and whether it came from the cache; each stage's seconds go into `stages`."""
        stages = {} if stages is None else stages
        digest = digest or audio_digest(meta.path)
        key = self.cache_key(digest)
        entry = self.cache.get(key)
        from_cache = entry is not None and key not in self._prefilled
        stages.update(self._prefilled.pop(key, {}))
        audio = None
        if entry is None:
            t0 = time.monotonic()
            audio = decode(meta.path, max_duration_s=self.config.max_duration_s)
            stages["decode"] = time.monotonic() - t0
            if is_silent(audio):
                raise NoSpeech(f"silent recording: nothing louder than -60 dBFS in {audio.duration_s:.0f} s of audio")
            t0 = time.monotonic()
            model = self._model()  # ModelError here stops the batch: every call would fail alike
            try:
                segments = model.transcribe(audio.channels)
            except RuntimeError as e:  # ctranslate2 (out of memory, CUDA …) on this call: the batch goes on
                raise CallFailed(f"speech model failed: {e}") from e
            stages["transcribe"] = time.monotonic() - t0
            entry = self._entry(audio, segments, stages)
            self.cache.put(key, entry)
        if not entry.segments:
            raise NoSpeech("no speech found in the recording (silent or not speech)")
        if entry.n_channels == 1 and entry.speaker_turns is None and self.embedder() is not None:
            # cached before the speaker model was installed
            entry = self._diarized(entry, audio or decode(meta.path, max_duration_s=self.config.max_duration_s), stages)
            self.cache.put(key, entry)
        if entry.n_channels == 2 and entry.levels is None:  # cached before levels were kept
            entry = self._levelled(entry, audio or decode(meta.path, max_duration_s=self.config.max_duration_s), stages)
            self.cache.put(key, entry)
        del audio
        t0 = time.monotonic()
        transcript = build_transcript(
            meta, entry.segments, duration_s=entry.duration_s, n_channels=entry.n_channels,
            model=self.model_label, events=entry.events, split_gap_s=self.config.transcribe.split_gap_s,
            speaker_turns=entry.speaker_turns, levels=entry.levels,
        )
        stages["speakers"] = time.monotonic() - t0
        if not transcript.utterances:
            raise NoSpeech("no usable speech: every segment was rejected as a hallucination")
        return transcript, from_cache


def audio_digest(path: Path) -> str:
    """The content hash of a call's audio; AudioMissing when it is gone or cannot be read."""
    check_readable(path)
    try:
        return file_digest(path)
    except FileNotFoundError as e:
        raise AudioMissing(f"audio file not found: {path}") from e
    except OSError as e:
        raise AudioMissing(f"cannot read {path}: {e.strerror or e}") from e


def failed_score(meta: CallMeta, rubric: Rubric | None, error: str, *, model: str | None, processed_at: str) -> CallScore:
    return CallScore(
        call_id=meta.call_id, status="failed", agent_id=meta.agent_id, agent_name=meta.agent_name, team=meta.team,
        started_at=meta.started_at, rubric_id=rubric.id if rubric else None,
        rubric_version=str(rubric.version) if rubric else None, error=error, model=model, processed_at=processed_at,
    )


def write_outputs(out: Path, calls: list[CallMeta], transcripts: dict[str, CallTranscript], scores: list[CallScore]) -> Path:
    """Add this batch to OUT's tables (replacing earlier rows of the same calls) and render its
    call cards; the index and agent pages cover every night in OUT."""
    from qa_pipeline.report import render_reports
    from qa_pipeline.tables import read_scores, write_scores, write_transcripts

    write_transcripts(out, [transcripts[c.call_id] for c in calls if c.call_id in transcripts],
                      replaces=[c.call_id for c in calls])
    _fault("outputs")
    write_scores(out, scores)
    render_reports(out, scores, transcripts, {c.call_id: c for c in calls}, all_scores=read_scores(out))
    return out / "reports" / "index.html"


def _write_run_file(config: RunConfig, calls: list[CallMeta]) -> None:
    """OUT/run.json: every call ever run into OUT (the latest run's metadata wins), for `qa score`."""
    latest = {c.call_id for c in calls}
    earlier = _read_run_file(config.out) if (config.out / RUN_FILE).is_file() else []
    merged = [c for c in earlier if c.call_id not in latest] + list(calls)
    payload = {
        "audio_dir": str(config.audio_dir),
        "model": config.model,
        "calls": [{**asdict(c), "path": str(c.path)} for c in merged],
    }
    write_atomic(config.out / RUN_FILE, json.dumps(payload, ensure_ascii=False, indent=1))


def _write_failed_list(out: Path, calls: list[CallMeta], results: dict[str, CallPart]) -> Path:
    """OUT/failed.csv: call_id, path, error, retry (whether the next run tries it again); header only if none."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["call_id", "path", "error", "retry"])
    for meta in calls:
        part = results[meta.call_id]
        if part.score.status != "ok":
            writer.writerow([meta.call_id, str(meta.path), part.score.error or "", "yes" if part.retry else "no"])
    path = out / FAILED_FILE
    write_atomic(path, buffer.getvalue())
    return path


def _remove_temp_files(out: Path) -> None:
    """Delete the temp files of atomic writes that a killed run left (`.NAME.*.tmp`, `.tmp-*`)."""
    for folder, _dirs, files in os.walk(out):
        for name in files:
            if name.startswith(".") and (name.endswith(".tmp") or name.startswith(".tmp-")):
                Path(folder, name).unlink(missing_ok=True)


def _fault(point: str, count: int | None = None) -> None:
    """Fault injection for tests/test_faults.py: with QA_FAULT_KILL=POINT or POINT:N, the process
    SIGKILLs itself there. Points: `part-tmp:N` (N-th part of this run written, not yet renamed),
    `part:N` (N-th part stored), `outputs` (transcript tables written, scores and reports not),
    `end` (every output written, the run log's end record not)."""
    spec = os.environ.get("QA_FAULT_KILL")
    if spec and spec == (point if count is None else f"{point}:{count}"):
        os.kill(os.getpid(), signal.SIGKILL)


def _read_run_file(out: Path) -> list[CallMeta]:
    path = Path(out) / RUN_FILE
    if not path.is_file():
        raise InputError(f"{out} holds no earlier run ({RUN_FILE} missing); run `qa run` first")
    data = json.loads(path.read_text(encoding="utf-8"))
    return [CallMeta(**{**c, "path": Path(c["path"])}) for c in data["calls"]]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
