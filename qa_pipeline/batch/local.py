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
from qa_pipeline.batch.crashes import CrashBook
from qa_pipeline.batch.stages import TranscribeStage, discard, process_call
from qa_pipeline.batch.store import TranscriptCache
from qa_pipeline.models import cache_root
from qa_pipeline.records import CallMeta, CallOutcome, Todo
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

    def process(self, groups: Sequence[Sequence[Todo]], crashes: CrashBook) -> Iterator[CallOutcome]:
        stage, rubric = self.stage, self.rubric
        if stage is None or rubric is None:
            raise RuntimeError("LocalEngine.process() before start()")
        work = [[(t.meta, t.digest) for t in group if not t.cached] for group in groups]
        prefetch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-decode")
        ahead: Future | None = None
        try:
            for g, group in enumerate(groups):
                # A group with a call that crashed a process before is worked on with nothing else
                # in hand (the next group is decoded only after it), so that a crash is its own.
                risky = any(crashes.alone(call_id, digest) for call_id, digest in _ids(work[g]))
                following = work[g + 1] if g + 1 < len(work) and not risky else []
                # in this process's hands: this group (transcribed) and the next (decoded meanwhile);
                # if the process dies now, the next run counts a crash for each of them
                with crashes.in_flight(_ids(work[g] + following)):
                    t0 = time.monotonic()
                    decoded = ahead.result() if ahead is not None else stage.decode_group(work[g])
                    # decode the next group in a worker while the model works on this one (bounded: one ahead)
                    ahead = prefetch.submit(stage.decode_group, following) if following else None
                    stage.prefill(work[g], decoded)  # the packed decoder transcribes the group together
                    shared = time.monotonic() - t0  # counted to the group's first call, as it waited for it
                    for item in group:
                        outcome = process_call(item, stage, rubric)
                        yield replace(outcome, seconds=outcome.seconds + shared)
                        shared = 0.0
        finally:
            prefetch.shutdown(wait=True)
            stage.release()
            for decoded in ([ahead.result()] if ahead is not None and ahead.done() and not ahead.exception() else []):
                for _digest, audio, _s in decoded:
                    discard(audio)


def _ids(work: Sequence[tuple[CallMeta, str | None]]) -> list[tuple[str, str | None]]:
    return [(meta.call_id, digest) for meta, digest in work]
