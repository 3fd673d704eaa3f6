"""`qa run --engine ray`: the same batch as pipeline.run_batch, spread over a Ray cluster.

The driver (the machine running `qa run`) does what the local engine does before and after the
calls — rubric, discovery, OUT/.lock, reuse of OUT/parts by the same fingerprints, the run log,
consolidation into the same tables and reports — and hands the calls that need work to the cluster:

- decode (and the silence check) of each group of calls runs as a CPU task;
- transcription runs in `TranscriberActor`s, one GPU each when the cluster has GPUs (else one CPU),
  each loading the model once; an actor also scores its calls (pipeline._process, unchanged);
- each finished call is written as OUT/parts/<call>.json on the driver as its group returns.

A call that fails on a worker is a failed row, exactly as locally. A worker that dies is restarted
and its group retried (Ray's max_restarts / max_task_retries); a group whose worker dies every time
becomes failed rows with retry=yes, so the next run tries them again. OUT and the transcript cache
must be on a path every node sees at the same place (NFS and the like). Needs `pip install qa-pipeline[ray]`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import ray

from qa_pipeline import pipeline
from qa_pipeline.cache import TranscriptCache, file_digest
from qa_pipeline.discover import discover
from qa_pipeline.errors import InputError, OutputError, QaError
from qa_pipeline.lock import output_lock
from qa_pipeline.models import cache_root
from qa_pipeline.parts import PARTS_DIR, CallPart, write_part
from qa_pipeline.pipeline import BatchSummary, Progress, RunConfig, _Todo
from qa_pipeline.rubric import Rubric, load_rubric
from qa_pipeline.runlog import RunLog
from qa_pipeline.transcribe import pick_device

logger = logging.getLogger("qa_pipeline")

MAX_RESTARTS = 2  # a worker process that dies is started again this many times …
MAX_TASK_RETRIES = 2  # … and the group it held is sent to it again


def _stage(config: RunConfig) -> pipeline.TranscribeStage:
    return pipeline.TranscribeStage(config, TranscriptCache(config.cache_dir or cache_root() / "transcripts"))


@ray.remote(num_cpus=1, max_retries=MAX_TASK_RETRIES)
def _decode_group(config: RunConfig, work: list) -> list:
    """CPU task: (digest, audio, seconds) of each uncached, decodable, non-silent call of `work`."""
    return _stage(config).decode_group(work)


@ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES, max_concurrency=2)
class TranscriberActor:
    """Loads the model once (on its first uncached call) and processes groups of calls.

    max_concurrency=2 only so that pid() answers while a group runs; the driver never sends an
    actor a second group before the first returns."""

    def __init__(self, config: RunConfig, rubric: Rubric) -> None:
        self.stage = _stage(config)
        self.rubric = rubric

    def process_group(self, items: list[_Todo], decoded: list) -> list[tuple[CallPart, bool, dict[str, float], float]]:
        """(part, from_cache, stages, seconds) per item, as pipeline._run_locked makes them."""
        t0 = time.monotonic()
        self.stage.prefill([(t.meta, t.digest) for t in items if not t.cached], decoded)
        shared = (time.monotonic() - t0) / len(items)  # the group's packed transcription, for the ETA
        results = []
        for item in items:
            t0 = time.monotonic()
            part, from_cache, stages = pipeline._process(item, self.stage, self.rubric)
            results.append((part, from_cache, stages, shared + time.monotonic() - t0))
        return results

    def pid(self) -> int:
        return os.getpid()


def connect(address: str | None = None) -> None:
    """Join the cluster at `address` ('auto': the one this node belongs to), or start a local one."""
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, include_dashboard=False, ignore_reinit_error=True,
                 logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise InputError(f"cannot reach the Ray cluster at {address or 'a new local instance'}: {e}") from e


def actor_options() -> dict:
    """One GPU per actor when the cluster has GPUs, else one CPU."""
    return {"num_gpus": 1, "num_cpus": 1} if ray.cluster_resources().get("GPU", 0) >= 1 else {"num_cpus": 1}


def _device_of_workers(config: RunConfig, options: dict) -> RunConfig:
    """--device auto means the workers' hardware, not the driver's: a CPU-only head node would
    otherwise label (and fingerprint) the GPU workers' transcripts as 'cpu, int8'."""
    if config.device != "auto":
        return config
    workers = "cuda" if options.get("num_gpus") else "cpu"
    return config if pick_device("auto") == workers else replace(config, device=workers)


def n_actors(options: dict) -> int:
    resources = ray.cluster_resources()
    if options.get("num_gpus"):
        return max(1, int(resources.get("GPU", 1)))
    return max(1, int(resources.get("CPU", 2)) // 2)  # leave a CPU per actor for the decode tasks


def run_batch_ray(config: RunConfig, on_progress: Callable[[Progress], None] | None = None, *,
                  address: str | None = None, group_size: int = pipeline.PREFILL_GROUP,
                  actors: int | None = None) -> BatchSummary:
    """pipeline.run_batch on a Ray cluster: same checks, outputs, resume and failure rules."""
    started = time.monotonic()
    rubric = load_rubric(config.rubric)
    calls = discover(config.audio_dir, manifest=config.manifest, name_pattern=config.name_pattern)
    pipeline.make_output_folder(config.out)
    connect(address)
    with output_lock(config.out, "qa run"), RunLog(config.out) as log:
        try:
            pipeline._remove_temp_files(config.out)
            return _run_locked(config, rubric, calls, on_progress, log, started, group_size, actors)
        except OSError as e:
            pipeline._log_abort(log, e)
            raise OutputError(f"cannot write {e.filename or config.out}: {e.strerror or e}; "
                              "fix that and run the same command again to finish") from e
        except BaseException as e:
            pipeline._log_abort(log, e)
            raise


def _run_locked(config: RunConfig, rubric: Rubric, calls, on_progress, log: RunLog, started: float,
                group_size: int, n: int | None) -> BatchSummary:
    options = actor_options()
    config = _device_of_workers(config, options)
    stage = _stage(config)  # settings and cache keys only: the driver never loads the model
    settings = stage.settings()
    rubric_digest = file_digest(config.rubric)
    parts_dir = config.out / PARTS_DIR
    log.write("start", audio_dir=str(config.audio_dir), manifest=str(config.manifest) if config.manifest else None,
              rubric=str(config.rubric), rubric_id=rubric.id, rubric_version=str(rubric.version),
              settings=settings, calls=len(calls), pid=os.getpid(), engine="ray", actor_resources=options)

    results: dict[str, CallPart] = {}
    audio_done = 0.0

    def finished(meta, part: CallPart, *, reused: bool, from_cache: bool, stages: dict, seconds: float,
                 redo: str | None, eta: float | None) -> None:
        nonlocal audio_done
        results[meta.call_id] = part
        audio_s = part.transcript.duration_s if part.transcript else 0.0
        audio_done += audio_s
        log.write("call", **pipeline._call_record(meta, part, reused=reused, from_cache=from_cache, audio_s=audio_s,
                                                  stages=stages, seconds=seconds), redo=redo)
        if on_progress:
            on_progress(Progress(len(results), len(calls), meta.call_id, part.score.status, audio_s, from_cache,
                                 reused=reused, audio_done_s=audio_done, eta_s=eta))

    # 1. what an earlier run of the same command finished (the same test as the local engine)
    done_before, todo = pipeline._plan(calls, stage, settings, rubric_digest, parts_dir)
    for meta, part, hash_s in done_before:
        finished(meta, part, reused=True, from_cache=True, stages={"hash": hash_s}, seconds=hash_s, redo=None, eta=None)

    # 2. the rest, a group at a time per actor; decode runs as CPU tasks ahead of the actors
    todo.sort(key=lambda t: not t.cached)
    groups = [todo[i:i + group_size] for i in range(0, len(todo), group_size)]
    if groups:
        _run_groups(config, rubric, groups, options, n, finished, pipeline._Eta(todo))

    # 3. consolidate exactly as the local engine does
    return pipeline._consolidate(config, calls, results, reused=len(calls) - len(todo), log=log, started=started)


def _run_groups(config: RunConfig, rubric: Rubric, groups: list[list[_Todo]], options: dict, n: int | None,
                finished, eta: pipeline._Eta) -> None:
    parts_dir = config.out / PARTS_DIR
    count = min(len(groups), n or n_actors(options))
    config_ref = ray.put(config)
    # config and rubric by value, not by reference: a restarted actor needs them again
    # named in this driver's own namespace, so that two batches on one cluster do not meet
    pool = [TranscriberActor.options(**options, name=f"qa-transcriber-{i}").remote(config, rubric)
            for i in range(count)]
    decoded: dict[int, object] = {}

    def decode_ahead(g: int) -> None:  # bounded: a group per actor decoded ahead of the actors
        for h in range(g, min(g + count + 1, len(groups))):
            if h not in decoded:
                work = [(t.meta, t.digest) for t in groups[h] if not t.cached]
                decoded[h] = _decode_group.remote(config_ref, work) if work else []

    running: dict = {}  # object ref → (actor, group index)
    waiting = list(range(len(groups)))
    idle = list(pool)
    try:
        while waiting or running:
            while waiting and idle:
                actor, g = idle.pop(0), waiting.pop(0)
                decode_ahead(g)
                running[actor.process_group.remote(groups[g], decoded.pop(g))] = (actor, g)
            if not running:  # every actor is gone for good: what is left fails, to be retried next run
                for g in waiting:
                    for item in groups[g]:
                        _lost(item, rubric, config, finished, parts_dir, "no Ray worker left")
                break
            ready, _ = ray.wait(list(running), num_returns=1)
            actor, g = running.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except ray.exceptions.RayActorError as e:  # died more often than it may restart
                logger.warning("Ray worker died %d times; its calls fail and are retried next run: %s",
                               MAX_RESTARTS + 1, e)
                for item in groups[g]:
                    _lost(item, rubric, config, finished, parts_dir, f"Ray worker died: {type(e).__name__}")
                continue
            except ray.exceptions.RayTaskError as e:
                if isinstance(e.cause, QaError):
                    raise e.cause from e  # ModelError: every call would fail alike, as locally
                # _process turns every error of a call into a failed part: this is the cluster's
                # (a decode task that kept dying, an object lost with its node)
                idle.append(actor)
                for item in groups[g]:
                    _lost(item, rubric, config, finished, parts_dir, f"Ray task failed: {type(e.cause).__name__}")
                continue
            except ray.exceptions.RayError as e:
                idle.append(actor)
                for item in groups[g]:
                    _lost(item, rubric, config, finished, parts_dir, f"Ray task failed: {type(e).__name__}")
                continue
            idle.append(actor)
            for item, (part, from_cache, stages, seconds) in zip(groups[g], outcome):
                write_part(parts_dir, part)
                eta.finished(item.cached, seconds + item.hash_s)
                finished(item.meta, part, reused=False, from_cache=from_cache, stages={"hash": item.hash_s, **stages},
                         seconds=seconds + item.hash_s, redo=item.redo, eta=eta.seconds_left())
    finally:
        for actor in pool:
            ray.kill(actor)


def _lost(item: _Todo, rubric: Rubric, config: RunConfig, finished, parts_dir: Path, error: str) -> None:
    score = pipeline.failed_score(item.meta, rubric, error, model=_stage(config).model_label,
                                  processed_at=pipeline._now())
    part = CallPart(item.meta.call_id, item.fingerprint, score, None, retry=True, error_kind="WorkerDied",
                    inputs=item.inputs)
    write_part(parts_dir, part)
    finished(item.meta, part, reused=False, from_cache=False, stages={"hash": item.hash_s}, seconds=item.hash_s,
             redo=item.redo, eta=None)
