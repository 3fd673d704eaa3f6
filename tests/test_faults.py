"""Fault injection: a night's batch killed at any moment, bad files of every kind, bad manifests, two
runs on one folder. The morning must find every call scored or failed with a reason, and running
the same command again must finish the rest without redoing or duplicating anything.

"Identical outputs" here means: `read_scores` gives the same CallScores (every column and every item
row) except `processed_at`, `read_transcripts` the same CallTranscripts, the same report files and
the same failed.csv, as a clean run into another folder. `processed_at` is the time a call was first
processed, so it differs between two runs; within one folder it must survive a kill unchanged.

SIGKILL points come from the pipeline's QA_FAULT_KILL hook (see batch.store.fault); one test kills the
process from outside while it transcribes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from audio_factory import encode, tone
from cli import app
from factories import snapshot
from qa_pipeline.batch.store import PARTS_DIR, read_log, read_part
from qa_pipeline.files import TEMP_PREFIX
from qa_pipeline.output.tables import read_scores

ROOT = Path(__file__).resolve().parent.parent
HEADER = "call_id,path,agent_id,agent_name,team,started_at,direction,hangup_by,agent_channel\n"
ROWS = {
    "dev_07": "dev_07,dev_07.wav,A1003,陈浩,电商服务组,2025-03-05T10:33:26+08:00,inbound,customer,1\n",
    "dev_11": "dev_11,dev_11.wav,A1001,王晓雨,宽带服务组,2025-03-07T10:41:55+08:00,outbound,agent,\n",
    "empty": "empty,empty.wav,A1001,王晓雨,宽带服务组,2025-03-07T11:00:00+08:00,inbound,,\n",
    "notes": "notes,notes.mp3,A1002,李婷,宽带服务组,2025-03-07T12:00:00+08:00,inbound,,\n",
    "silent": "silent,silent.wav,A1002,李婷,宽带服务组,2025-03-07T13:00:00+08:00,inbound,,0\n",
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, calls_dir) -> Path:
    """Two real calls, an empty file, a text file named .mp3 and 10 s of stereo digital silence."""
    audio = tmp_path_factory.mktemp("batch")
    for name in ("dev_07.wav", "dev_11.wav"):
        (audio / name).write_bytes((calls_dir / name).read_bytes())
    (audio / "empty.wav").write_bytes(b"")
    (audio / "notes.mp3").write_text("this is not audio\n" * 100)
    encode(audio / "silent.wav", np.zeros((2, 8000 * 10), np.float32), 8000, codec="pcm_mulaw")
    (audio / "manifest.csv").write_text(HEADER + "".join(ROWS.values()), encoding="utf-8")
    return audio


def qa_run(batch: Path, out: Path, cache: Path, *, fault: str | None = None, manifest: str = "manifest.csv",
           wait: bool = True):
    env = {k: v for k, v in os.environ.items() if k != "QA_FAULT_KILL"}
    if fault:
        env["QA_FAULT_KILL"] = fault
    command = [sys.executable, str(ROOT / "cli.py"), "run", str(batch), "--out", str(out),
               "--manifest", str(batch / manifest), "--cache-dir", str(cache)]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob(".*") if p.name.startswith(TEMP_PREFIX) or p.name.endswith(".tmp")
            or p.name.startswith(".tmp-")]


def parts_times(out: Path) -> dict[str, str]:
    """processed_at of each call that has a part, as stored."""
    found = {}
    for path in (out / PARTS_DIR).glob("*.json"):
        part = read_part(out / PARTS_DIR, path.stem)
        if part is not None:
            found[part.call_id] = part.score.processed_at
    return found


@pytest.fixture(scope="module")
def clean(batch, tmp_path_factory, transcript_cache) -> Path:
    out = tmp_path_factory.mktemp("clean")
    result = qa_run(batch, out, transcript_cache)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "5 calls: 2 scored, 3 failed" in result.stdout
    return out


@pytest.mark.slow
def test_clean_run_scores_good_calls_and_lists_failures(clean):
    scores = {s.call_id: s for s in read_scores(clean)}
    assert {k: s.status for k, s in scores.items()} == {
        "dev_07": "ok", "dev_11": "ok", "empty": "failed", "notes": "failed", "silent": "failed"}
    assert "empty (0 bytes)" in scores["empty"].error
    assert "not a readable audio file" in scores["notes"].error
    assert "silent recording" in scores["silent"].error
    failed = (clean / "failed.csv").read_text(encoding="utf-8")
    assert failed.splitlines()[0] == "call_id,path,error,retry" and failed.count("\n") == 4
    log = read_log(next((clean / "logs").glob("run-*.jsonl")))
    assert [r["event"] for r in log] == ["start", "call", "call", "call", "call", "call", "end"]
    ok = [r for r in log if r["event"] == "call" and r["status"] == "ok"]
    assert all({"hash", "speakers", "score"} <= set(r["stages"]) and r["audio_s"] > 40 for r in ok)
    assert log[-1]["failed"] == 3 and log[-1]["failed_list"].endswith("failed.csv")


@pytest.mark.slow
def test_running_again_changes_nothing(clean, batch, transcript_cache):
    before = snapshot(clean, keep_time=True)
    result = qa_run(batch, clean, transcript_cache)
    assert result.returncode == 1, result.stdout
    assert "5 done by an earlier run" in result.stdout
    assert snapshot(clean, keep_time=True) == before
    log = read_log(sorted((clean / "logs").glob("run-*.jsonl"))[-1])
    assert all(r["reused"] for r in log if r["event"] == "call")


KILLS = {
    # name: the QA_FAULT_KILL points of successive runs, each SIGKILLed there; then one more run
    "writing-first-part": ["part-tmp:1"],
    "after-2-parts": ["part:2"],
    "after-4-parts": ["part:4"],
    "mid-outputs": ["outputs"],
    "outputs-written": ["end"],
    "killed-twice": ["part:1", "part:2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("faults", KILLS.values(), ids=KILLS.keys())
def test_sigkill_then_resume_gives_the_clean_outputs(faults, clean, batch, transcript_cache, tmp_path):
    out = tmp_path / "out"
    first_times: dict[str, str] = {}
    for fault in faults:
        killed = qa_run(batch, out, transcript_cache, fault=fault)
        assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
        for call_id, when in parts_times(out).items():
            first_times.setdefault(call_id, when)
    if faults == ["part-tmp:1"]:
        assert not parts_times(out) and temp_files(out / PARTS_DIR)  # killed inside the atomic write
    elif faults == ["part:2"]:
        assert len(parts_times(out)) == 2
    resumed = qa_run(batch, out, transcript_cache)
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert "5 calls: 2 scored, 3 failed" in resumed.stdout
    assert snapshot(out) == snapshot(clean)
    assert not temp_files(out)
    times = {s.call_id: s.processed_at for s in read_scores(out)}
    assert all(times[call_id] == when for call_id, when in first_times.items())  # not redone
    log = read_log(sorted((out / "logs").glob("run-*.jsonl"))[-1])
    reused = {r["call_id"] for r in log if r["event"] == "call" and r["reused"]}
    # calls with a part are reused, except failures worth another try (none in this batch)
    assert reused == set(first_times)
    assert log[-1]["event"] == "end" and log[-1]["reused"] == len(reused)


@pytest.mark.slow
def test_sigkill_from_outside_while_transcribing(clean, batch, tmp_path):
    """A real kill -9 in the middle of Whisper, with an empty transcript cache."""
    (batch / "manifest-2.csv").write_text(HEADER + ROWS["empty"] + ROWS["dev_11"], encoding="utf-8")
    out, cache = tmp_path / "out", tmp_path / "cache"
    process = qa_run(batch, out, cache, manifest="manifest-2.csv", wait=False)
    deadline = time.monotonic() + 120
    while not (out / PARTS_DIR / "empty.json").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
        time.sleep(0.05)
    time.sleep(2.0)  # dev_11: model loading or transcribing
    assert process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / PARTS_DIR / "dev_11.json").exists()
    resumed = qa_run(batch, out, cache, manifest="manifest-2.csv")
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert "2 calls: 1 scored, 1 failed" in resumed.stdout and "1 done by an earlier run" in resumed.stdout
    assert snapshot(out) == snapshot(clean, only={"empty", "dev_11"})


@pytest.mark.slow
def test_sigterm_and_sighup_stop_the_batch_as_ctrl_c_does(clean, batch, tmp_path):
    """A scheduler's stop (SIGTERM) and a closed terminal (SIGHUP) in the middle of Whisper, twice:
    a message, exit 128 + the signal, an abort record, nothing left in flight and no crash counted,
    so the next run finishes the night as if nothing had happened."""
    (batch / "manifest-2.csv").write_text(HEADER + ROWS["empty"] + ROWS["dev_11"], encoding="utf-8")
    out, cache = tmp_path / "out", tmp_path / "cache"
    for n, sig in enumerate((signal.SIGTERM, signal.SIGHUP), start=1):
        process = qa_run(batch, out, cache, manifest="manifest-2.csv", wait=False)
        deadline = time.monotonic() + 120
        while len(list((out / "logs").glob("run-*.jsonl"))) < n or not (out / PARTS_DIR / "empty.json").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
            time.sleep(0.05)  # this run's log is open and empty.json done: the batch is under way
        time.sleep(2.0)  # dev_11: model loading or transcribing
        assert process.poll() is None
        process.send_signal(sig)
        output = process.communicate(timeout=120)[0]
        name = signal.Signals(sig).name
        assert process.returncode == 128 + sig, output
        assert f"error: stopped by {name}; run the same command again to finish" in output
        assert "Traceback" not in output
        log = read_log(sorted((out / "logs").glob("run-*.jsonl"))[-1])
        assert log[-1]["event"] == "abort" and log[-1]["signal"] == name
        assert not (out / PARTS_DIR / "in-flight.json").exists()
        assert not (out / PARTS_DIR / "dev_11.json").exists()
    assert not (out / PARTS_DIR / "crashes.json").exists()  # a stop is nobody's crash
    resumed = qa_run(batch, out, cache, manifest="manifest-2.csv")
    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert "2 calls: 1 scored, 1 failed" in resumed.stdout and "1 done by an earlier run" in resumed.stdout
    assert snapshot(out) == snapshot(clean, only={"empty", "dev_11"})


def write_wav_silence(path: Path, seconds: int, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        minute = bytes(rate * 2 * 60)
        for _ in range(seconds // 60):
            w.writeframes(minute)
    return path


@pytest.mark.slow
def test_bad_files_fail_alone_with_readable_reasons(tmp_path, calls_dir, transcript_cache):
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "good.wav").write_bytes((calls_dir / "dev_11.wav").read_bytes())
    corrupt = bytearray((calls_dir / "dev_07.wav").read_bytes())
    at = corrupt.find(b"fmt ") + 8
    corrupt[at:at + 2] = b"\x99\x99"  # a WAV format tag no decoder knows
    (audio / "corrupt.wav").write_bytes(bytes(corrupt))
    (audio / "garbage.flac").write_bytes(b"fLaC" + np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes())
    (audio / "empty.wav").write_bytes(b"")
    (audio / "notes.mp3").write_text("call_id,path\nnot audio\n" * 50)
    encode(audio / "three.wav", np.stack([tone(440, 2, 8000)] * 3), 8000, codec="pcm_s16le")
    encode(audio / "silent.wav", np.zeros((2, 8000 * 10), np.float32), 8000, codec="pcm_mulaw")
    write_wav_silence(audio / "hour.wav", 3600)
    encode(audio / "tone.wav", tone(1000, 4, 8000)[None, :], 8000, codec="pcm_s16le")  # not speech
    (audio / "folder.wav").mkdir()
    os.mkfifo(audio / "pipe.wav")  # opening it would block forever
    names = ["good", "corrupt", "garbage", "empty", "notes", "three", "silent", "hour", "tone", "folder", "pipe",
             "missing"]
    paths = {"garbage": "garbage.flac", "notes": "notes.mp3"}
    (audio / "manifest.csv").write_text(
        "call_id,path\n" + "".join(f"{n},{paths.get(n, n + '.wav')}\n" for n in names), encoding="utf-8")
    out = tmp_path / "out"
    started = time.monotonic()
    result = CliRunner().invoke(app, ["run", str(audio), "--out", str(out), "--manifest", str(audio / "manifest.csv"),
                                      "--cache-dir", str(transcript_cache)])
    assert time.monotonic() - started < 60
    assert result.exit_code == 1, result.output
    assert "12 calls: 1 scored, 11 failed" in result.output
    assert f"failed calls: {(out / 'failed.csv').resolve()}" in result.output
    errors = {s.call_id: s.error for s in read_scores(out) if s.status == "failed"}
    expected = {
        "corrupt": "cannot decode corrupt.wav: unsupported audio codec",
        "garbage": "not a readable audio file: garbage.flac",
        "empty": "audio file is empty (0 bytes)",
        "notes": "not a readable audio file: notes.mp3",
        "three": "three.wav has 3 channels; only mono and stereo calls are supported",
        "silent": "silent recording: nothing louder than -60 dBFS in 10 s",
        "hour": "silent recording: nothing louder than -60 dBFS in 3600 s",
        "tone": "no speech found in the recording",
        "folder": "it is a folder, not an audio file",
        "pipe": "not a regular file",
        "missing": "audio file not found",
    }
    assert set(errors) == set(expected)
    for call_id, message in expected.items():
        assert message in errors[call_id], (call_id, errors[call_id])
        assert f"failed {call_id}: " in result.output
    # deterministic failures are kept; a missing or unreadable file is tried again next time
    retry = {line.split(",")[0]: line.rsplit(",", 1)[1] for line in (out / "failed.csv").read_text().splitlines()[1:]}
    assert {k for k, v in retry.items() if v == "yes"} == {"folder", "pipe", "missing"}
    (audio / "missing.wav").write_bytes((calls_dir / "dev_11.wav").read_bytes())  # it turns up
    again = CliRunner().invoke(app, ["run", str(audio), "--out", str(out), "--manifest", str(audio / "manifest.csv"),
                                     "--cache-dir", str(transcript_cache)])
    assert "12 calls: 2 scored, 10 failed" in again.output and "9 done by an earlier run" in again.output


@pytest.mark.slow
def test_file_vanishing_mid_run_and_model_error_cost_one_call(clean, tmp_path, calls_dir, transcript_cache):
    from qa_pipeline.batch.config import Inputs, RunConfig, TranscribeConfig
    from qa_pipeline.batch.engine import run_batch
    from qa_pipeline.batch.local import LocalEngine
    from qa_pipeline.scoring.rubric import rubric_path_default

    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "a_good.wav").write_bytes((calls_dir / "dev_11.wav").read_bytes())  # cached by `clean`: goes first
    encode(audio / "b_beep.wav", tone(700, 3, 8000)[None, :], 8000, codec="pcm_s16le")
    encode(audio / "c_gone.wav", tone(900, 3, 8000)[None, :], 8000, codec="pcm_s16le")

    class BrokenModel:  # a Transcriber whose ctranslate2 fails, as when the GPU runs out of memory
        def describe(self) -> str:
            return "base (cpu, int8)"

        def transcribe(self, channels):
            raise RuntimeError("CUDA failed with error out of memory")

        def transcribe_many(self, calls):
            raise RuntimeError("CUDA failed with error out of memory")

    def progress(p) -> None:
        if p.call_id == "a_good":
            (audio / "c_gone.wav").unlink()  # vanishes after discovery, before its turn

    config = RunConfig(Inputs(audio), tmp_path / "out", TranscribeConfig(cache_dir=transcript_cache),
                       rubric=rubric_path_default())
    summary = run_batch(config, LocalEngine(transcriber=BrokenModel()), on_progress=progress)
    assert (summary.total, summary.ok, summary.failed) == (3, 1, 2)
    errors = dict(summary.failures)
    assert errors["b_beep"].startswith("speech model failed") and errors["b_beep"].endswith("CUDA failed with error out of memory")
    assert errors["c_gone"] == f"audio file not found: {audio / 'c_gone.wav'}"
    calls = [r for r in read_log(summary.run_log) if r["event"] == "call"]
    assert {r["call_id"]: r["retry"] for r in calls} == {"a_good": False, "b_beep": True, "c_gone": True}


def test_an_unexpected_error_on_a_decoded_group_costs_only_its_calls(tmp_path, transcript_cache):
    """A bug in the model on a group (not a RuntimeError) must not end the night: each call is tried
    alone and fails with its reason, and the run ends with every call accounted for."""
    from qa_pipeline.batch.config import Inputs, RunConfig, TranscribeConfig
    from qa_pipeline.batch.engine import run_batch
    from qa_pipeline.batch.local import LocalEngine
    from qa_pipeline.scoring.rubric import rubric_path_default

    audio = tmp_path / "audio"
    audio.mkdir()
    for name, hz in (("a", 700), ("b", 900)):
        encode(audio / f"{name}.wav", tone(hz, 3, 8000)[None, :], 8000, codec="pcm_s16le")

    class BuggyModel:
        def describe(self) -> str:
            return "base (cpu, int8)"

        def transcribe(self, channels):
            raise ValueError("shapes (3,) and (4,) not aligned")

        def transcribe_many(self, calls):
            raise IndexError("list index out of range")

    config = RunConfig(Inputs(audio), tmp_path / "out", TranscribeConfig(cache_dir=transcript_cache),
                       rubric=rubric_path_default())
    summary = run_batch(config, LocalEngine(transcriber=BuggyModel()))
    assert (summary.total, summary.ok, summary.failed) == (2, 0, 2)
    for error in dict(summary.failures).values():
        assert error == "internal error (ValueError: shapes (3,) and (4,) not aligned); please report it"


MANIFEST_ERRORS = {
    "missing-column": ("call_id,agent_id\nc1,A1\n", "manifest.csv:1: missing column(s) path"),
    "duplicate": (HEADER + "c1,a.wav,,,,,,,\nc2,a.wav,,,,,,,\nc1,a.wav,,,,,,,\n",
                  "manifest.csv:4: duplicate call_id 'c1' (first on line 2)"),
    "outside": (HEADER + "c1,a.wav,,,,,,,\nc2,../../etc/passwd,,,,,,,\n",
                "manifest.csv:3: path '../../etc/passwd' points outside"),
    "hangup_by": (HEADER + "c1,a.wav,,,,,,hung,\n", "manifest.csv:2: hangup_by 'hung' (allowed: agent, customer"),
    "agent_channel": (HEADER + "c1,a.wav,,,,,,,left\n", "manifest.csv:2: agent_channel 'left' (allowed: 0, 1 or blank)"),
    "short-row": (HEADER + "c1,a.wav\n", "manifest.csv:2: 2 fields, the header has 9"),
}


@pytest.mark.parametrize("body,message", MANIFEST_ERRORS.values(), ids=MANIFEST_ERRORS.keys())
def test_bad_manifest_refused_with_its_line(tmp_path, body, message):
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "a.wav").write_bytes(b"x")
    (audio / "manifest.csv").write_text(body, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(audio), "--out", str(tmp_path / "out"),
                                      "--manifest", str(audio / "manifest.csv")])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {audio}/{message}"), result.output
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_bad_rubric_refused_before_any_audio(tmp_path):
    rubric = tmp_path / "r.yaml"
    rubric.write_text("id: r\nname: r\nversion: 1\nlanguage: zh\npass_score: 80\nitems:\n  - id: x\n    name: x\n"
                      "    weight: ten\n    check: {type: phrase, any: [您好]}\n")
    result = CliRunner().invoke(app, ["run", str(tmp_path), "--out", str(tmp_path / "out"), "--rubric", str(rubric)])
    assert result.exit_code == 2 and f"error: {rubric}:" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_second_run_on_the_same_out_is_refused(tmp_path, calls_dir):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from qa_pipeline.batch.store import output_lock\n"
         "with output_lock(Path(sys.argv[1]), 'qa run'):\n    print('held', flush=True); time.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = CliRunner().invoke(app, ["run", str(calls_dir), "--out", str(out)])
        assert result.exit_code == 2
        line = result.output.strip()
        assert line.startswith(f"error: {out} is being written by `qa run` (pid {holder.pid} on "), line
        assert line.endswith("wait for it to finish or choose another --out") and "\n" not in line
        assert CliRunner().invoke(app, ["score", str(out)]).exit_code == 2
        (out / "run.json").write_text(json.dumps({"calls": []}))
        assert "is being written by" in CliRunner().invoke(app, ["score", str(out)]).output
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel dropped the dead holder's lock: nothing stale to clean up by hand
    from qa_pipeline.batch.store import output_lock

    with output_lock(out, "test"):
        pass
