"""`qa transcribe`: every call into the transcript cache and OUT/transcripts, OUT/recordings; no scoring."""

from __future__ import annotations

import time
from typing import Callable

from qa_pipeline.audio.decode import audio_digest
from qa_pipeline.audio.discover import discover
from qa_pipeline.batch.config import RunConfig
from qa_pipeline.batch.plan import GROUP_SIZE
from qa_pipeline.batch.stages import TranscribeStage
from qa_pipeline.batch.store import TranscriptCache, make_output_folder, output_lock
from qa_pipeline.errors import AudioMissing, CallFailed
from qa_pipeline.models import cache_root
from qa_pipeline.output.tables import TRANSCRIPTS_FILE, write_transcripts
from qa_pipeline.records import BatchSummary, CallTranscript, Progress


def transcribe_batch(config: RunConfig, on_progress: Callable[[Progress], None] | None = None) -> BatchSummary:
    """Transcribe every call into the transcript cache and OUT/transcripts, OUT/recordings (the
    rubric, if any, is not used). A later `qa run` with the same model and options transcribes
    nothing again."""
    started = time.monotonic()
    inputs = config.inputs
    calls = discover(inputs.audio_dir, manifest=inputs.manifest, name_pattern=inputs.name_pattern)
    make_output_folder(config.out)
    tc = config.transcribe
    stage = TranscribeStage(tc, TranscriptCache(tc.cache_dir or cache_root() / "transcripts"))
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
            if (n - 1) % GROUP_SIZE == 0:
                stage.prefill([(m, digests[m.call_id]) for m in calls[n - 1:n - 1 + GROUP_SIZE]])
            try:
                result = stage.run(meta, digests[meta.call_id] or audio_digest(meta.path))
                transcripts[meta.call_id] = result.transcript
                audio_s += result.transcript.duration_s
                status, seconds, from_cache = "ok", result.transcript.duration_s, result.from_cache
            except CallFailed as e:
                failures.append((meta.call_id, str(e)))
                status, seconds, from_cache = "failed", 0.0, False
            if on_progress:
                on_progress(Progress(n, len(calls), meta.call_id, status, seconds, from_cache, audio_done_s=audio_s))
        write_transcripts(config.out, [transcripts[c.call_id] for c in calls if c.call_id in transcripts],
                          replaces=[c.call_id for c in calls])
    return BatchSummary(config.out, len(calls), len(transcripts), len(failures), audio_s, time.monotonic() - started,
                        tuple(failures), config.out / TRANSCRIPTS_FILE)
