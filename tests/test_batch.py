"""The batch layer without the speech model: the config's checks, an engine written against
batch/engine.py alone, the internal-error branch of a call, the forked worker pool, Ray's error
branches. The real decode, tones, speakers, scoring and writers run; only Whisper is replaced by a
fake that says fixed words, so these run in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from audio_factory import encode, tone
from factories import FakeWhisper, snapshot
from qa_pipeline.batch.config import Inputs, RunConfig, TranscribeConfig
from qa_pipeline.batch.engine import Setup, run_batch
from qa_pipeline.batch.local import LocalEngine
from qa_pipeline.batch.stages import TranscribeStage, process_call
from qa_pipeline.batch.store import TranscriptCache, read_log
from qa_pipeline.choices import Decoder, Device
from qa_pipeline.asr.transcribe import TranscribeOptions
from qa_pipeline.errors import InputError
from qa_pipeline.parallel import map_chunks
from qa_pipeline.scoring.rubric import rubric_path_default

class BrokenWhisper(FakeWhisper):
    def transcribe(self, channels):
        raise ValueError("boom")


@pytest.fixture
def audio(tmp_path) -> Path:
    """Five stereo 8 kHz calls of 12 s (a quiet tone on each side, a different pitch per call)."""
    folder = tmp_path / "audio"
    folder.mkdir()
    for n in range(5):
        samples = np.stack([tone(300 + 40 * n, 12, 8000, 0.05), tone(500 + 40 * n, 12, 8000, 0.05)])
        encode(folder / f"call_{n}.wav", samples, 8000, codec="pcm_s16le")
    return folder


def config(audio: Path, out: Path, cache: Path, **options) -> RunConfig:
    return RunConfig(Inputs(audio), out, TranscribeConfig(cache_dir=cache, options=TranscribeOptions(**options)),
                     rubric=rubric_path_default())


class LastFirstEngine:
    """An engine written against batch.engine and batch.stages alone: the groups, last first."""

    group_size = 2

    def __init__(self, transcriber, *, stop_after: int | None = None) -> None:
        self.transcriber = transcriber
        self.stop_after = stop_after

    def start(self, config: RunConfig, rubric) -> Setup:
        self.stage = TranscribeStage(config.transcribe, TranscriptCache(config.transcribe.cache_dir), self.transcriber)
        self.rubric = rubric
        return Setup(self.stage, {"engine": "last-first"})

    def process(self, groups, crashes):
        done = 0
        for group in reversed(groups):
            for item in group:
                if self.stop_after is not None and done == self.stop_after:
                    return
                done += 1
                yield process_call(item, self.stage, self.rubric)


def test_an_engine_written_against_the_protocol_gives_the_local_engines_outputs(audio, tmp_path):
    local = run_batch(config(audio, tmp_path / "local", tmp_path / "cache-a"), LocalEngine(FakeWhisper()))
    assert (local.total, local.ok) == (5, 5)
    custom = run_batch(config(audio, tmp_path / "custom", tmp_path / "cache-b"), LastFirstEngine(FakeWhisper()))
    assert (custom.total, custom.ok) == (5, 5)
    assert snapshot(tmp_path / "custom") == snapshot(tmp_path / "local")
    log = read_log(custom.run_log)
    assert log[0]["engine"] == "last-first"
    assert [r["call_id"] for r in log if r["event"] == "call"] == ["call_4", "call_2", "call_3", "call_0", "call_1"]


def test_calls_an_engine_never_reports_fail_and_the_next_run_does_them(audio, tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    short = run_batch(config(audio, out, cache), LastFirstEngine(FakeWhisper(), stop_after=2))
    assert (short.total, short.ok, short.failed) == (5, 2, 3)
    assert {error for _c, error in short.failures} == {"the engine did not report this call"}
    retry = [line.rsplit(",", 1)[1] for line in (out / "failed.csv").read_text().splitlines()[1:]]
    assert retry == ["yes"] * 3
    again = run_batch(config(audio, out, cache), LocalEngine(FakeWhisper()))
    assert (again.ok, again.reused) == (5, 2)
    run_batch(config(audio, tmp_path / "clean", tmp_path / "cache-2"), LocalEngine(FakeWhisper()))
    assert snapshot(out) == snapshot(tmp_path / "clean")


def test_an_unexpected_error_costs_one_call_and_is_retried(audio, tmp_path):
    for path in sorted(audio.iterdir())[1:]:
        path.unlink()
    out = tmp_path / "out"
    summary = run_batch(config(audio, out, tmp_path / "cache", decoder=Decoder.sequential), LocalEngine(BrokenWhisper()))
    assert (summary.total, summary.failed) == (1, 1)
    assert summary.failures == (("call_0", "internal error (ValueError: boom); please report it"),)
    [call] = [r for r in read_log(summary.run_log) if r["event"] == "call"]
    assert (call["error_kind"], call["retry"], call["status"]) == ("internal", True, "failed")
    assert (out / "failed.csv").read_text().splitlines()[1].endswith(",yes")


def test_the_config_is_validated_once_with_readable_errors(tmp_path):
    built = TranscribeConfig(device="cuda", options=TranscribeOptions(decoder="sequential"))
    assert built.device is Device.cuda and built.options.decoder is Decoder.sequential
    assert RunConfig(Inputs("a"), "o").out == Path("o") and RunConfig(Inputs("a"), "o").rubric is None
    with pytest.raises(InputError, match="device must be one of auto, cpu, cuda, not 'tpu'"):
        TranscribeConfig(device="tpu")
    with pytest.raises(InputError, match="decoder must be one of sequential, packed, not 'fast'"):
        TranscribeConfig(options=TranscribeOptions(decoder="fast"))
    with pytest.raises(InputError, match=r"beam size \(--beam-size\) must be 1 to 20, not 0"):
        TranscribeConfig(options=TranscribeOptions(beam_size=0))
    with pytest.raises(InputError, match=r"batch size \(--batch-size\) must be 0 \(automatic\) to 512, not -1"):
        TranscribeConfig(options=TranscribeOptions(batch_size=-1))
    with pytest.raises(InputError, match="must be a positive number of minutes"):
        TranscribeConfig(max_duration_s=0)


def _pids(chunk):
    return [(n * n, os.getpid()) for n in chunk]


def test_the_forked_pool_keeps_order_and_runs_in_other_processes():
    items = list(range(40))
    results = map_chunks(_pids, items, min_items=10, workers=2)
    assert [square for square, _pid in results] == [n * n for n in items]
    assert {pid for _s, pid in results} - {os.getpid()}  # forked workers did the work
    assert {pid for _s, pid in map_chunks(_pids, items[:5], min_items=10, workers=2)} == {os.getpid()}  # too few


def _fails_on_13(chunk):
    if 13 in chunk:
        raise ValueError("thirteen")
    return list(chunk)


def test_chunks_begun_in_the_background_come_back_in_order_beside_other_work():
    """start_chunks: the workers fork now and work while this process goes on, here running a
    map_chunks of its own (which sets the module's job meanwhile); a worker's error reaches result()."""
    from qa_pipeline.parallel import start_chunks

    items = list(range(40))
    with start_chunks(_pids, items, min_items=10, workers=2) as started:
        meanwhile = map_chunks(_pids, list(range(100, 140)), min_items=10, workers=2)
        results = started.result()
    assert [square for square, _pid in results] == [n * n for n in items]
    assert [square for square, _pid in meanwhile] == [n * n for n in range(100, 140)]
    assert {pid for _s, pid in results} - {os.getpid()}
    assert started.result() is results  # waited once
    with pytest.raises(ValueError, match="thirteen"):
        start_chunks(_fails_on_13, items, min_items=10, workers=2).result()
    with pytest.raises(RuntimeError, match="the block failed"):
        with start_chunks(_pids, items, min_items=10, workers=2):
            raise RuntimeError("the block failed")  # the workers are stopped, the error is the block's
    assert {pid for _s, pid in start_chunks(_pids, items[:5], min_items=10, workers=2).result()} == {os.getpid()}


def test_ray_errors_fail_the_group_or_stop_the_batch(tmp_path):
    ray = pytest.importorskip("ray")  # the `test` extra installs it
    from factories import make_meta
    from qa_pipeline.batch.ray import lost_outcomes
    from qa_pipeline.errors import ModelError
    from qa_pipeline.records import Todo
    from qa_pipeline.scoring.rubric import load_rubric

    stage = TranscribeStage(TranscribeConfig(cache_dir=tmp_path), TranscriptCache(tmp_path), FakeWhisper())
    rubric = load_rubric(rubric_path_default())
    items = [Todo(make_meta("a"), "d", "fa", 0.0, False), Todo(make_meta("b"), "d", "fb", 0.0, True)]

    def errors(e):
        outcomes = lost_outcomes(e, items, stage, rubric)
        assert [o.call_id for o in outcomes] == ["a", "b"]
        assert all(o.part.retry and o.part.error_kind == "WorkerDied" and o.seconds is None for o in outcomes)
        return {o.part.score.error for o in outcomes}

    assert errors(ray.exceptions.RayActorError()) == {"Ray worker died: RayActorError"}
    task_error = ray.exceptions.RayTaskError("process_group", "traceback", OSError("node lost"))
    assert errors(task_error) == {"Ray task failed: OSError"}
    assert errors(ray.exceptions.ObjectLostError("ref", "owner", "call site")) == {"Ray task failed: ObjectLostError"}
    with pytest.raises(ModelError, match="cannot load"):
        lost_outcomes(ray.exceptions.RayTaskError("process_group", "tb", ModelError("cannot load model 'x'")),
                      items, stage, rubric)
