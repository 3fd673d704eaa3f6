"""The local engine: the calls one after another in this process, with the next group's audio
decoded in a worker thread while the model works on the current one."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Iterator, Sequence

from qa_pipeline.asr.transcribe import Transcriber
from qa_pipeline.batch.config import RunConfig
from qa_pipeline.batch.engine import Setup
from qa_pipeline.batch.plan import GROUP_SIZE
from qa_pipeline.batch.stages import TranscribeStage, process_call
from qa_pipeline.batch.store import TranscriptCache
from qa_pipeline.models import cache_root
from qa_pipeline.records import CallOutcome, Todo
from qa_pipeline.scoring.rubric import Rubric


class LocalEngine:
    """batch.engine.Engine on this machine. `transcriber` replaces the model the config names
    (tests inject faults through it)."""

    group_size = GROUP_SIZE

    def __init__(self, transcriber: Transcriber | None = None) -> None:
        self.transcriber = transcriber
        self.stage: TranscribeStage | None = None
        self.rubric: Rubric | None = None

    def start(self, config: RunConfig, rubric: Rubric) -> Setup:
        cache = TranscriptCache(config.transcribe.cache_dir or cache_root() / "transcripts")
        self.stage = TranscribeStage(config.transcribe, cache, self.transcriber)
        self.rubric = rubric
        return Setup(self.stage)

    def process(self, groups: Sequence[Sequence[Todo]]) -> Iterator[CallOutcome]:
        stage, rubric = self.stage, self.rubric
        if stage is None or rubric is None:
            raise RuntimeError("LocalEngine.process() before start()")
        work = [[(t.meta, t.digest) for t in group if not t.cached] for group in groups]
        prefetch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-decode")
        try:
            ahead: Future | None = prefetch.submit(stage.decode_group, work[0]) if work else None
            for g, group in enumerate(groups):
                t0 = time.monotonic()
                decoded = ahead.result()
                # decode the next group in a worker while the model works on this one (bounded: one ahead)
                ahead = prefetch.submit(stage.decode_group, work[g + 1]) if g + 1 < len(work) else None
                stage.prefill(work[g], decoded)  # the packed decoder transcribes the group together
                shared = time.monotonic() - t0  # counted to the group's first call, as it waited for it
                for item in group:
                    outcome = process_call(item, stage, rubric)
                    yield replace(outcome, seconds=outcome.seconds + shared)
                    shared = 0.0
        finally:
            prefetch.shutdown(wait=True)
