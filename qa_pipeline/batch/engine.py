"""The batch, whatever runs it: discover → plan → (an engine processes the calls) → consolidate.

run_batch(config, engine) does everything around the calls exactly once, for every engine: it
refuses a bad rubric before any audio is touched, holds OUT/.lock, writes the run log, reuses the
parts of an earlier run of the same command (batch.plan), stores each call's part the moment the
engine reports it, and at the end writes every output from the parts, in discovery order, so that a
resumed run ends with the same tables as an uninterrupted one. Failed calls: see errors.CallFailed.

An engine only processes the calls that need work. Writing one takes this module's Engine protocol,
the records it passes (records.Todo in, records.CallOutcome out) and batch.stages, which does the
work of one call (TranscribeStage, process_call, lost_call): batch.local runs the calls in this
process, batch.ray on a Ray cluster.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import closing
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Protocol, Sequence

from qa_pipeline.audio.discover import discover
from qa_pipeline.batch.config import RunConfig
from qa_pipeline.batch.plan import Eta, groups, make_plan
from qa_pipeline.batch.crashes import MAX_CRASHES, CrashBook
from qa_pipeline.batch.stages import TranscribeStage, crashed_call, lost_call
from qa_pipeline.batch.store import (PARTS_DIR, RunLog, earlier_paths, fault, make_output_folder, output_lock,
                                     remove_temp_files, write_failed_list, write_outputs, write_part, write_run_file)
from qa_pipeline.errors import InputError, OutputError, Stopped
from qa_pipeline.files import readable
from qa_pipeline.records import BatchSummary, CallMeta, CallOutcome, CallPart, Progress, Todo
from qa_pipeline.scoring.rubric import Rubric, load_rubric

logger = logging.getLogger("qa_pipeline")


@dataclass(frozen=True)
class Setup:
    """What an engine tells run_batch when it starts."""

    stage: TranscribeStage  # its settings, cache keys and model label describe this run's results
    log: dict[str, Any] = field(default_factory=dict)  # extra fields for the run log's start record


class Engine(Protocol):
    """Processes the calls that need work; run_batch does everything else."""

    group_size: int  # calls handed over together (the packed decoder transcribes a group at once)

    def start(self, config: RunConfig, rubric: Rubric) -> Setup:
        """Called once, before OUT is locked: get ready (connect, pick the hardware). InputError
        when that is impossible."""
        ...

    def process(self, groups: Sequence[Sequence[Todo]], crashes: CrashBook) -> Iterator[CallOutcome]:
        """One CallOutcome per call of `groups`, each as soon as it is done, in any order. A call's
        own failure is a failed part (stages.process_call), a lost worker's a lost_call; raise only
        what stops the whole batch (ModelError). Closing the iterator early must release everything.
        `crashes`: mark the calls a process is working on (CrashBook.in_flight) when that process
        is this one, or tell it (CrashBook.died_with) the calls of a worker that died."""
        ...


def run_batch(config: RunConfig, engine: Engine, *, on_progress: Callable[[Progress], None] | None = None) -> BatchSummary:
    """Process every call; a call that fails becomes a status=failed row and the batch goes on.

    Resumable: each finished call is stored as a part in OUT/parts; running the same command again
    reuses every part whose inputs are unchanged (and which did not fail for a passing reason),
    processes the rest, then writes all outputs from the parts.
    """
    started = time.monotonic()
    if config.rubric is None:
        raise InputError("a batch that scores needs a rubric")
    rubric = load_rubric(config.rubric)  # a bad rubric is refused before any audio is touched
    calls = discover(config.inputs.audio_dir, manifest=config.inputs.manifest, name_pattern=config.inputs.name_pattern)
    make_output_folder(config.out)
    setup = engine.start(config, rubric)
    with output_lock(config.out, "qa run"), RunLog(config.out) as log:
        try:
            remove_temp_files(config.out)  # left by a killed run; nobody else writes OUT while we hold the lock
            return _run_locked(config, rubric, calls, engine, setup, on_progress, log, started)
        except OSError as e:  # disk full, folder made read-only …: nothing more can be kept
            _log_abort(log, e)
            raise OutputError(f"cannot write {e.filename or config.out}: {e.strerror or e}; "
                              "fix that and run the same command again to finish") from e
        except BaseException as e:
            _log_abort(log, e)
            raise


def _log_abort(log: RunLog, e: BaseException) -> None:
    fields = {"error": f"{type(e).__name__}: {e}"}
    if isinstance(e, KeyboardInterrupt):  # stopped by a signal: which one
        fields["signal"] = e.signal_name if isinstance(e, Stopped) else "SIGINT"
    try:
        log.write("abort", **fields)
    except OSError:
        pass  # the log is on the same full disk


def _run_locked(config: RunConfig, rubric: Rubric, calls: list[CallMeta], engine: Engine, setup: Setup,
                on_progress: Callable[[Progress], None] | None, log: RunLog, started: float) -> BatchSummary:
    stage = setup.stage
    settings = stage.settings()
    parts_dir = config.out / PARTS_DIR
    log.write("start", audio_dir=str(config.inputs.audio_dir),
              manifest=str(config.inputs.manifest) if config.inputs.manifest else None,
              rubric=str(config.rubric), rubric_id=rubric.id, rubric_version=str(rubric.version),
              settings=settings, calls=len(calls), pid=os.getpid(), **setup.log)

    results: dict[str, CallPart] = {}
    audio_done = 0.0

    def finished(meta: CallMeta, part: CallPart, *, reused: bool, from_cache: bool, stages: dict[str, float],
                 seconds: float, redo: str | None, eta: float | None) -> None:
        nonlocal audio_done
        results[meta.call_id] = part
        audio_s = part.transcript.duration_s if part.transcript else 0.0
        audio_done += audio_s
        log.write("call", **_call_record(meta, part, reused=reused, from_cache=from_cache, audio_s=audio_s,
                                         stages=stages, seconds=seconds), redo=redo)
        if on_progress:
            on_progress(Progress(len(results), len(calls), meta.call_id, part.score.status, audio_s, from_cache,
                                 reused=reused, audio_done_s=audio_done, eta_s=eta))

    # 1. what an earlier run of the same command finished
    plan = make_plan(calls, stage, settings, rubric.digest,  # the rubric file and every file it extends
                     parts_dir, retry_failed=config.retry_failed, earlier_paths=earlier_paths(config.out))
    for meta, part, hash_s in plan.done:
        finished(meta, part, reused=True, from_cache=True, stages={"hash": hash_s}, seconds=hash_s, redo=None, eta=None)

    # 2. the rest, by the engine; each part is stored the moment its call is reported. A call that
    # crashed the process twice (alone) is not tried again, unless --retry-failed; one that was in
    # hand when a process died goes alone.
    crashes = CrashBook.open(parts_dir)
    todo = {t.meta.call_id: t for t in plan.todo}
    crashed = [t for t in plan.todo
               if crashes.crashes(t.meta.call_id, t.digest) >= MAX_CRASHES and not config.retry_failed]
    work = [t for t in plan.todo if t not in crashed]
    alone = frozenset(t.meta.call_id for t in work if crashes.alone(t.meta.call_id, t.digest))
    eta = Eta(work)
    written = 0
    for item in crashed:
        part = as_stored(crashed_call(item, stage, rubric).part, item)
        write_part(parts_dir, part)
        finished(item.meta, part, reused=False, from_cache=False, stages={"hash": item.hash_s},
                 seconds=item.hash_s, redo=item.redo, eta=None)
    with closing(engine.process(groups(work, engine.group_size, alone), crashes)) as outcomes:
        for outcome in outcomes:
            item = todo[outcome.call_id]
            part = as_stored(outcome.part, item)
            written += 1
            write_part(parts_dir, part, before_rename=lambda: fault("part-tmp", written))
            fault("part", written)
            seconds, left = item.hash_s, None
            if outcome.seconds is not None:
                seconds += outcome.seconds
                eta.finished(item.cached, seconds)
                left = eta.seconds_left()
            finished(item.meta, part, reused=False, from_cache=outcome.from_cache,
                     stages={"hash": item.hash_s, **outcome.stages}, seconds=seconds, redo=item.redo, eta=left)
    for call_id, item in todo.items():
        if call_id not in results:  # an engine that stopped short: the next run does the call
            lost = as_stored(lost_call(item, stage, rubric, "the engine did not report this call").part, item)
            write_part(parts_dir, lost)
            finished(item.meta, lost, reused=False, from_cache=False, stages={"hash": item.hash_s},
                     seconds=item.hash_s, redo=item.redo, eta=None)

    # 3. consolidate: every output is written again from the parts, in discovery order
    return _consolidate(config, calls, results, reused=len(plan.done), log=log, started=started)


def as_stored(part: CallPart, item: Todo) -> CallPart:
    """A call's new part as it is kept: ``processed_at`` stays the time an earlier run first
    processed the call (so a call without started_at keeps its day, whenever it is redone), and a
    reason quoting a file name that is not UTF-8 shows U+FFFD where the name cannot be read."""
    score = part.score
    if item.first_processed_at:
        score = replace(score, processed_at=item.first_processed_at)
    if score.error and readable(score.error) != score.error:
        score = replace(score, error=readable(score.error))
    return part if score is part.score else replace(part, score=score)


def _consolidate(config: RunConfig, calls: list[CallMeta], results: dict[str, CallPart], *, reused: int,
                 log: RunLog, started: float) -> BatchSummary:
    ordered = [results[c.call_id] for c in calls]
    scores = [p.score for p in ordered]
    transcripts = {p.call_id: p.transcript for p in ordered if p.transcript is not None}
    index = write_outputs(config.out, calls, transcripts, scores)
    write_run_file(config.out, config.inputs.audio_dir, config.transcribe.model, calls)
    failed_list = write_failed_list(config.out, calls, results)
    fault("end")
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


def _call_record(meta: CallMeta, part: CallPart, *, reused: bool, from_cache: bool, audio_s: float,
                 stages: dict[str, float], seconds: float) -> dict:
    return {
        "call_id": meta.call_id, "path": str(meta.path), "status": part.score.status, "error": part.score.error,
        "error_kind": part.error_kind, "retry": part.retry, "reused": reused, "from_cache": from_cache,
        "audio_s": round(audio_s, 3), "stages": {k: round(v, 4) for k, v in stages.items()},
        "seconds": round(seconds, 4), "processed_at": part.score.processed_at,
    }
