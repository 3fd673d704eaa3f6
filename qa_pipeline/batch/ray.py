"""`qa run --engine ray`: the calls of a batch processed on a Ray cluster.

An engine written against batch.engine alone (plus the per-call work in batch.stages): run_batch
does on the driver (the machine running `qa run`) what it does for the local engine — rubric,
discovery, OUT/.lock, reuse of OUT/parts, the run log, storing each part, consolidation into the
same tables and reports — and this engine hands the calls that need work to the cluster:

- decode (and the silence check) of each group of calls runs as a CPU task;
- transcription runs in `TranscriberActor`s, one GPU each when the cluster has GPUs (else one CPU),
  each loading the model once; an actor also scores its calls (stages.process_call, as locally).

A call that fails on a worker is a failed row, exactly as locally. A worker that dies is restarted
and its group retried (Ray's max_restarts / max_task_retries); a group whose worker dies every time
becomes failed rows with retry=yes, and batch.crashes is told: the next run tries each of those
calls alone (a crash is counted only for a call that was alone), and a call that crashes a
worker twice on its own fails for good. OUT and the transcript cache must be on a path every node
sees at the same place (NFS and the like). Needs `pip install qa-pipeline[ray]`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from typing import Iterator, Sequence

import ray

from qa_pipeline.asr.transcribe import pick_device
from qa_pipeline.batch.config import RunConfig, TranscribeConfig
from qa_pipeline.batch.crashes import CrashBook
from qa_pipeline.batch.engine import Setup
from qa_pipeline.batch.plan import GROUP_SIZE
from qa_pipeline.batch.stages import Decoded, TranscribeStage, lost_call, process_call
from qa_pipeline.batch.store import TranscriptCache
from qa_pipeline.choices import Device
from qa_pipeline.errors import InputError, QaError
from qa_pipeline.models import cache_root
from qa_pipeline.records import CallMeta, CallOutcome, Todo
from qa_pipeline.scoring.rubric import Rubric

logger = logging.getLogger("qa_pipeline")

MAX_RESTARTS = 2  # a worker process that dies is started again this many times …
MAX_TASK_RETRIES = 2  # … and the group it held is sent to it again


def make_stage(config: TranscribeConfig) -> TranscribeStage:
    return TranscribeStage(config, TranscriptCache(config.cache_dir or cache_root() / "transcripts"))


@ray.remote(num_cpus=1, max_retries=MAX_TASK_RETRIES)
def decode_group(config: TranscribeConfig, work: list[tuple[CallMeta, str | None]]) -> list[Decoded]:
    """CPU task: (digest, audio, seconds) of each uncached, decodable, non-silent call of `work`."""
    return make_stage(config).decode_group(work)


@ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES, max_concurrency=2)
class TranscriberActor:
    """Loads the model once (on its first uncached call) and processes groups of calls.

    max_concurrency=2 only so that pid() answers while a group runs; the driver never sends an
    actor a second group before the first returns."""

    def __init__(self, config: TranscribeConfig, rubric: Rubric) -> None:
        self.stage = make_stage(config)
        self.rubric = rubric

    def process_group(self, items: list[Todo], decoded: list[Decoded]) -> list[CallOutcome]:
        """A CallOutcome per item, its seconds including its share of the group's packed transcription."""
        t0 = time.monotonic()
        self.stage.prefill([(t.meta, t.digest) for t in items if not t.cached], decoded)
        shared = (time.monotonic() - t0) / len(items)
        outcomes = [process_call(item, self.stage, self.rubric) for item in items]
        return [replace(o, seconds=o.seconds + shared) for o in outcomes]

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


def device_of_workers(config: TranscribeConfig, options: dict) -> TranscribeConfig:
    """--device auto means the workers' hardware, not the driver's: a CPU-only head node would
    otherwise label (and fingerprint) the GPU workers' transcripts as 'cpu, int8'."""
    if config.device != Device.auto:
        return config
    workers = Device.cuda if options.get("num_gpus") else Device.cpu
    return config if pick_device(Device.auto) == workers else replace(config, device=workers)


def n_actors(options: dict) -> int:
    resources = ray.cluster_resources()
    if options.get("num_gpus"):
        return max(1, int(resources.get("GPU", 1)))
    return max(1, int(resources.get("CPU", 2)) // 2)  # leave a CPU per actor for the decode tasks


def lost_outcomes(error: BaseException, items: Sequence[Todo], stage: TranscribeStage,
                  rubric: Rubric) -> list[CallOutcome]:
    """The calls of a group whose task failed on the cluster: failed, retried by the next run. A
    QaError raised in the worker (ModelError: every call would fail alike) stops the batch, as locally."""
    if isinstance(error, ray.exceptions.RayActorError):  # died more often than it may restart
        logger.warning("Ray worker died %d times; its calls fail and are retried next run: %s",
                       MAX_RESTARTS + 1, error)
        reason = f"Ray worker died: {type(error).__name__}"
    elif isinstance(error, ray.exceptions.RayTaskError):
        if isinstance(error.cause, QaError):
            raise error.cause from error
        # process_call turns every error of a call into a failed part: this is the cluster's
        # (a decode task that kept dying, an object lost with its node)
        reason = f"Ray task failed: {type(error.cause).__name__}"
    else:
        reason = f"Ray task failed: {type(error).__name__}"
    return [lost_call(item, stage, rubric, reason) for item in items]


class RayEngine:
    """batch.engine.Engine on a Ray cluster at `address` (None: a private local instance);
    `actors`: how many transcriber actors (default: one per GPU, else one per two CPUs)."""

    def __init__(self, address: str | None = None, *, group_size: int = GROUP_SIZE, actors: int | None = None) -> None:
        self.address = address
        self.group_size = group_size
        self.actors = actors
        self.config: TranscribeConfig | None = None
        self.rubric: Rubric | None = None
        self.stage: TranscribeStage | None = None
        self.options: dict = {}

    def start(self, config: RunConfig, rubric: Rubric) -> Setup:
        connect(self.address)
        self.options = actor_options()
        self.config = device_of_workers(config.transcribe, self.options)
        self.rubric = rubric
        self.stage = make_stage(self.config)  # settings and cache keys only: the driver never loads the model
        return Setup(self.stage, {"engine": "ray", "actor_resources": self.options})

    def process(self, groups: Sequence[Sequence[Todo]], crashes: CrashBook) -> Iterator[CallOutcome]:
        config, rubric, stage = self.config, self.rubric, self.stage
        if config is None or rubric is None or stage is None:
            raise RuntimeError("RayEngine.process() before start()")
        if not groups:
            return
        count = min(len(groups), self.actors or n_actors(self.options))
        config_ref = ray.put(config)
        # config and rubric by value, not by reference: a restarted actor needs them again
        # named in this driver's own namespace, so that two batches on one cluster do not meet
        # Ray starts its workers with OMP_NUM_THREADS=1; the model's threads are the run's, as locally
        threads = {name: str(config.cpu_threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        pool = [TranscriberActor.options(**self.options, name=f"qa-transcriber-{i}",
                                         runtime_env={"env_vars": threads}).remote(config, rubric)
                for i in range(count)]
        decoded: dict[int, object] = {}

        def decode_ahead(g: int) -> None:  # bounded: a group per actor decoded ahead of the actors
            for h in range(g, min(g + count + 1, len(groups))):
                if h not in decoded:
                    work = [(t.meta, t.digest) for t in groups[h] if not t.cached]
                    decoded[h] = decode_group.remote(config_ref, work) if work else []

        running: dict = {}  # object ref → (actor, group index)
        waiting = list(range(len(groups)))
        idle = list(pool)
        try:
            while waiting or running:
                while waiting and idle:
                    actor, g = idle.pop(0), waiting.pop(0)
                    decode_ahead(g)
                    running[actor.process_group.remote(list(groups[g]), decoded.pop(g))] = (actor, g)
                if not running:  # every actor is gone for good: what is left fails, to be retried next run
                    for g in waiting:
                        for item in groups[g]:
                            yield lost_call(item, stage, rubric, "no Ray worker left")
                    break
                ready, _ = ray.wait(list(running), num_returns=1)
                actor, g = running.pop(ready[0])
                try:
                    outcomes = ray.get(ready[0])
                except ray.exceptions.RayError as e:
                    if isinstance(e, ray.exceptions.RayActorError):
                        # the worker died with these calls every time it was sent them: the next
                        # run tries each alone, and fails one that crashes a worker twice alone
                        crashes.died_with([(t.meta.call_id, t.digest) for t in groups[g] if not t.cached])
                    else:
                        idle.append(actor)
                    yield from lost_outcomes(e, groups[g], stage, rubric)
                    continue
                idle.append(actor)
                yield from outcomes
        finally:
            for actor in pool:
                ray.kill(actor)
