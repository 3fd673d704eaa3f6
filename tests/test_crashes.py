"""A call that kills the process (issue 12: out of memory, a segfault) costs only itself: the calls
grouped with it are done alone by the next run and kept, and once it has crashed the process twice
on its own it is recorded as failed, so the next night does not die on it again. A death with
several calls in hand blames none of them (issue 21): killing a whole batch twice (an operator, a
reboot) fails no healthy call, and the resumed night is a clean one (issue 7's contract).

The process is really killed (SIGKILL, through the QA_FAULT_KILL=transcribe:CALL_ID hook, where an
out-of-memory kill would strike); Whisper is the fake of tests/factories.py, the rest is real."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audio_factory import encode, tone
from factories import snapshot
from qa_pipeline.batch.crashes import CRASHES_FILE, IN_FLIGHT_FILE, CrashBook

ROOT = Path(__file__).resolve().parent.parent
RUN = """
import sys
sys.path.insert(0, {tests!r})
from factories import FakeWhisper
from qa_pipeline.batch.config import Inputs, RunConfig, TranscribeConfig
from qa_pipeline.batch.engine import run_batch
from qa_pipeline.batch.local import LocalEngine
from qa_pipeline.scoring.rubric import rubric_path_default
config = RunConfig(Inputs({audio!r}), {out!r}, TranscribeConfig(cache_dir={cache!r}), rubric=rubric_path_default(),
                   retry_failed={retry_failed!r})
s = run_batch(config, LocalEngine(FakeWhisper()))
print(s.total, s.ok, s.failed, s.reused)
"""


@pytest.fixture
def audio(tmp_path) -> Path:
    folder = tmp_path / "audio"
    folder.mkdir()
    for n in range(3):
        encode(folder / f"call_{n}.wav", np.stack([tone(300 + 40 * n, 12, 8000, 0.05), tone(600, 12, 8000, 0.05)]),
               8000, codec="pcm_s16le")
    return folder


def night(audio: Path, out: Path, cache: Path, crash_on: str | None = None, *,
          retry_failed: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "QA_FAULT_KILL"}
    if crash_on:
        env["QA_FAULT_KILL"] = f"transcribe:{crash_on}"
    code = RUN.format(tests=str(ROOT / "tests"), audio=str(audio), out=str(out), cache=str(cache),
                      retry_failed=retry_failed)
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def crashes_of(out: Path) -> dict[str, int]:
    """Crashes counted per call, as OUT/parts/crashes.json holds them."""
    book = json.loads((out / "parts" / CRASHES_FILE).read_text())
    return {call_id: sum(per_digest.values()) for call_id, per_digest in book["crashes"].items()}


def test_a_call_that_kills_the_process_alone_twice_fails_and_the_night_goes_on(audio, tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    first = night(audio, out, cache, crash_on="call_1")  # the three calls are one group: all in hand
    assert first.returncode == -signal.SIGKILL, first.stderr
    in_hand = json.loads((out / "parts" / IN_FLIGHT_FILE).read_text())["calls"]
    assert sorted(call_id for call_id, _digest in in_hand) == ["call_0", "call_1", "call_2"]
    assert not list((out / "parts").glob("call_*.json"))  # none of them finished

    second = night(audio, out, cache, crash_on="call_1")  # each alone now: call_0 is done and kept
    assert second.returncode == -signal.SIGKILL
    assert (out / "parts" / "call_0.json").is_file() and not (out / "parts" / "call_1.json").exists()
    book = json.loads((out / "parts" / CRASHES_FILE).read_text())
    assert book["crashes"] == {} and sorted(book["alone"]) == ["call_0", "call_1", "call_2"]  # nobody blamed
    assert [c for c, _d in json.loads((out / "parts" / IN_FLIGHT_FILE).read_text())["calls"]] == ["call_1"]

    third = night(audio, out, cache, crash_on="call_1")  # call_1 died alone: its first crash; alone again
    assert third.returncode == -signal.SIGKILL
    fourth = night(audio, out, cache, crash_on="call_1")  # crashed twice on its own: failed, not tried
    assert fourth.returncode == 0, fourth.stderr
    assert fourth.stdout.split() == ["3", "2", "1", "1"]  # total ok failed reused (call_0)
    assert crashes_of(out) == {"call_1": 2}
    rows = {r["call_id"]: r for r in csv.DictReader((out / "failed.csv").open(encoding="utf-8"))}
    assert list(rows) == ["call_1"] and rows["call_1"]["retry"] == "no"
    assert rows["call_1"]["error"].startswith("crashed the worker twice while transcribing")
    assert not (out / "parts" / IN_FLIGHT_FILE).exists()

    fifth = night(audio, out, cache)  # the next night, nothing wrong: call_1 is not tried again
    assert fifth.stdout.split() == ["3", "2", "1", "3"]
    # and the two good calls are exactly what a clean night gives them
    clean = night(audio, tmp_path / "clean", tmp_path / "cache-clean")
    assert clean.stdout.split() == ["3", "3", "0", "0"]
    good = {"call_0", "call_2"}
    assert snapshot(out, only=good) == snapshot(tmp_path / "clean", only=good)

    # the model was fixed: --retry-failed tries the call that failed for good, without editing any file
    retried = night(audio, out, cache, retry_failed=True)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.split() == ["3", "3", "0", "2"]
    assert snapshot(out) == snapshot(tmp_path / "clean")


def test_killing_the_whole_batch_twice_fails_no_call_and_the_resumed_night_is_clean(audio, tmp_path):
    """Issue 7's contract: kill twice, resume = a clean run (an operator's kill -9, a reboot: here
    the hook kills the batch at two healthy calls, first in their group, then alone)."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert night(audio, out, cache, crash_on="call_1").returncode == -signal.SIGKILL  # three in hand: nobody's fault
    assert night(audio, out, cache, crash_on="call_2").returncode == -signal.SIGKILL  # call_2 alone: one crash
    resumed = night(audio, out, cache)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == ["3", "3", "0", "2"]  # call_0 and call_1 done by the second run
    assert crashes_of(out) == {"call_2": 1}  # under the two it takes to fail a call
    assert not (out / "failed.csv").read_text(encoding="utf-8").splitlines()[1:]
    clean = night(audio, tmp_path / "clean", tmp_path / "cache-clean")
    assert snapshot(out) == snapshot(tmp_path / "clean")


def test_a_run_that_stops_by_itself_counts_no_crash(tmp_path):
    book = CrashBook.open(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with book.in_flight([("a", "d1"), ("b", "d2")]):
            assert (tmp_path / IN_FLIGHT_FILE).is_file()
            raise KeyboardInterrupt
    assert not (tmp_path / IN_FLIGHT_FILE).exists()
    assert CrashBook.open(tmp_path).crashes("a", "d1") == 0


def test_crashes_are_counted_per_recording_and_only_when_alone(tmp_path):
    (tmp_path / IN_FLIGHT_FILE).write_text(json.dumps({"pid": 1, "calls": [["a", "d1"], ["b", "d2"]]}))
    book = CrashBook.open(tmp_path)  # died with two in hand: no crash, both to go alone
    assert (book.crashes("a", "d1"), book.crashes("b", "d2")) == (0, 0)
    assert (book.alone("a", "d1"), book.alone("b", "d2"), book.alone("a", "new recording")) == (True, True, False)
    assert not (tmp_path / IN_FLIGHT_FILE).exists()
    (tmp_path / IN_FLIGHT_FILE).write_text(json.dumps({"pid": 1, "calls": [["a", "d1"]]}))
    assert CrashBook.open(tmp_path).crashes("a", "d1") == 1  # died with it alone: its crash
    book = CrashBook.open(tmp_path)
    book.died_with([("a", "d1")])
    assert CrashBook.open(tmp_path).crashes("a", "d1") == 2
    assert CrashBook.open(tmp_path).crashes("a", "new recording") == 0


def test_a_crash_book_of_an_earlier_version_is_read(tmp_path):
    (tmp_path / CRASHES_FILE).write_text(json.dumps({"a": {"d1": 2}}))  # issue 12's layout
    book = CrashBook.open(tmp_path)
    assert book.crashes("a", "d1") == 2 and book.alone("a", "d1")
