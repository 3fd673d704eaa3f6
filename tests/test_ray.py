"""`qa run --engine ray` on a local two-CPU Ray cluster: the same outputs as the local engine, and a
batch whose worker is killed mid-batch still ends with every call accounted for."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli import app
from factories import snapshot
from qa_pipeline.batch.config import Inputs, RunConfig, TranscribeConfig
from qa_pipeline.batch.crashes import CrashBook
from qa_pipeline.batch.engine import run_batch
from qa_pipeline.batch.local import LocalEngine
from qa_pipeline.batch.store import read_log
from qa_pipeline.scoring.rubric import rubric_path_default

ROOT = Path(__file__).resolve().parent.parent
CALLS = ["dev_07", "dev_11", "dev_12"]


@pytest.fixture(scope="module")
def ray_cluster():
    import ray  # the `test` extra installs it: these tests run on CI
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def audio(tmp_path_factory, calls_dir) -> Path:
    """dev_07 (stereo), dev_11 (mono) and dev_12 (mp3, mono): three short real calls."""
    folder = tmp_path_factory.mktemp("ray-audio")
    for name in ("dev_07.wav", "dev_11.wav"):
        (folder / name).write_bytes((calls_dir / name).read_bytes())
    (folder / "dev_12.mp3").write_bytes((ROOT / "qa_pipeline" / "demo_calls" / "dev_12.mp3").read_bytes())
    return folder


@pytest.fixture(scope="module")
def local_out(tmp_path_factory, audio, transcript_cache) -> Path:
    out = tmp_path_factory.mktemp("local-out")
    config = RunConfig(Inputs(audio), out, TranscribeConfig(cache_dir=transcript_cache), rubric=rubric_path_default())
    summary = run_batch(config, LocalEngine())
    assert (summary.total, summary.ok) == (3, 3)
    return out


def tables(out: Path) -> dict[str, list[dict]]:
    """The Parquet tables row by row, sorted, processed_at left out (it is the time of each run)."""
    result = {}
    for name in ("scores/calls", "scores/items", "transcripts"):
        rows = [{k: v for k, v in r.items() if k != "processed_at"} for r in pq.read_table(out / name).to_pylist()]
        result[name] = sorted(rows, key=repr)
    return result


def folders(table: Path) -> list[str]:
    return sorted(str(p.relative_to(table)) for p in table.rglob("*") if p.is_dir())


@pytest.mark.slow
def test_ray_engine_gives_the_local_engines_outputs(ray_cluster, audio, local_out, transcript_cache, tmp_path):
    out = tmp_path / "ray-out"
    args = ["run", str(audio), "--out", str(out), "--cache-dir", str(transcript_cache), "--engine", "ray"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 calls: 3 scored, 0 failed" in result.output
    assert snapshot(out) == snapshot(local_out)
    assert tables(out) == tables(local_out)
    for name in ("scores/calls", "scores/items", "transcripts"):  # same schemas and the same partition folders
        assert pq.read_table(out / name).schema == pq.read_table(local_out / name).schema
        assert folders(out / name) == folders(local_out / name)
    assert sorted(p.name for p in (out / "parts").iterdir()) == [f"{c}.json" for c in CALLS]
    # resumable the same way: a second run reuses every part
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "3 done by an earlier run" in again.output
    assert snapshot(out) == snapshot(local_out)


@pytest.mark.slow
def test_a_worker_killed_mid_batch_is_restarted_and_every_call_is_accounted_for(ray_cluster, audio, local_out,
                                                                               tmp_path):
    """A fresh transcript cache, one actor and one call per task, so the model is busy for seconds
    on each call; after the first call finishes, the actor's process is SIGKILLed while it works on
    the next. Ray restarts it and sends the call again; the batch ends with all three calls."""
    from qa_pipeline.batch.ray import RayEngine

    out = tmp_path / "out"
    config = RunConfig(Inputs(audio), out, TranscribeConfig(cache_dir=tmp_path / "cache"), rubric=rubric_path_default())
    killed: list[int] = []
    pids: list[int] = []

    def actor_pid() -> int:
        actor = ray_cluster.get_actor("qa-transcriber-0")
        return ray_cluster.get(actor.pid.remote(), timeout=60)  # answers while the actor works (max_concurrency=2)

    def kill_soon() -> None:
        pid = actor_pid()
        time.sleep(1.0)  # into the next call's transcription
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    def on_progress(p) -> None:
        if p.done == 1:
            threading.Thread(target=kill_soon, daemon=True).start()
        if p.done == p.total:
            pids.append(actor_pid())

    summary = run_batch(config, RayEngine(group_size=1, actors=1), on_progress=on_progress)
    assert killed and pids and pids[0] != killed[0]  # it died and a new process finished the batch
    assert (summary.total, summary.ok, summary.failed) == (3, 3, 0)
    assert snapshot(out) == snapshot(local_out)
    log = read_log(summary.run_log)
    assert sorted(r["call_id"] for r in log if r["event"] == "call") == CALLS
    assert log[-1]["event"] == "end" and log[-1]["total"] == 3


@pytest.mark.slow
def test_the_thread_count_of_the_environment_changes_no_transcript_or_verdict(audio, local_out, tmp_path):
    """Ray starts its workers with OMP_NUM_THREADS=1, a shell may set anything: each model replica
    runs on the run's own --cpu-threads (default 2, part of the cache key), so a call gets the same
    transcript and verdicts in a process told 1 thread or 2 as in this one, each from a fresh cache."""
    import subprocess
    import sys

    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        out = tmp_path / f"omp-{threads}"
        command = [sys.executable, str(ROOT / "cli.py"), "run", str(audio), "--out", str(out),
                   "--cache-dir", str(tmp_path / f"cache-{threads}")]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        assert tables(out) == tables(local_out), threads
        assert snapshot(out) == snapshot(local_out), threads


def test_ray_address_needs_the_ray_engine(tmp_path, calls_dir):
    result = CliRunner().invoke(app, ["run", str(calls_dir), "--out", str(tmp_path / "out"), "--ray-address", "auto"])
    assert result.exit_code == 2
    assert "error: --ray-address needs --engine ray" in result.output


def test_the_local_engine_does_not_import_ray(tmp_path):
    import subprocess
    import sys

    code = ("import sys, cli; from qa_pipeline.batch import engine, local, rescore, transcribe_only; "
            "print('ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_calls_of_a_worker_that_is_gone_for_good_fail_and_the_next_run_does_them(ray_cluster, audio, local_out,
                                                                                 transcript_cache, tmp_path):
    from qa_pipeline.batch.ray import RayEngine

    out = tmp_path / "out"
    config = RunConfig(Inputs(audio), out, TranscribeConfig(cache_dir=transcript_cache), rubric=rubric_path_default())

    def on_progress(p) -> None:
        if p.done == 1:  # no restart: the other two calls have no worker left
            ray_cluster.kill(ray_cluster.get_actor("qa-transcriber-0"), no_restart=True)

    summary = run_batch(config, RayEngine(group_size=1, actors=1), on_progress=on_progress)
    assert (summary.total, summary.ok, summary.failed) == (3, 1, 2)
    assert all(error.startswith(("Ray worker died", "no Ray worker left")) for _c, error in summary.failures)
    # the calls were cached (no decoding, no Whisper): a worker dying with one in hand is not its crash
    assert CrashBook.open(out / "parts").counts == {}
    failed_csv = (out / "failed.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(failed_csv) == 2 and all(line.endswith(",yes") for line in failed_csv)
    again = run_batch(config, RayEngine())
    assert (again.total, again.ok, again.reused) == (3, 3, 1)
    assert snapshot(out) == snapshot(local_out)
