"""Several nights into one OUT (issue 21): a call_id a later night reuses for another recording, a
run started from another folder, a call without started_at scored again after midnight. Real decode,
speakers, scoring and writers; Whisper is the fake of tests/factories.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from audio_factory import encode, tone
from factories import FakeWhisper
from qa_pipeline.batch import stages
from qa_pipeline.batch.config import Inputs, RunConfig, TranscribeConfig
from qa_pipeline.batch.engine import run_batch
from qa_pipeline.batch.local import LocalEngine
from qa_pipeline.batch.rescore import rescore
from qa_pipeline.batch.store import read_run_file
from qa_pipeline.errors import InputError
from qa_pipeline.output.tables import read_scores
from qa_pipeline.scoring.rubric import rubric_path_default

ROOT = Path(__file__).resolve().parent.parent


def stereo_call(path: Path, pitch: int, codec: str = "pcm_s16le") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    encode(path, np.stack([tone(pitch, 8, 8000, 0.05), tone(600, 8, 8000, 0.05)]), 8000, codec=codec)
    return path


def night(audio: Path, out: Path, cache: Path, rubric: Path | None = None):
    config = RunConfig(Inputs(audio), out, TranscribeConfig(cache_dir=cache), rubric=rubric or rubric_path_default())
    return run_batch(config, LocalEngine(FakeWhisper()))


def test_a_call_id_reused_by_a_later_night_is_refused_with_both_paths(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    first = stereo_call(tmp_path / "n1" / "0001.flac", 300, codec="flac")
    stereo_call(tmp_path / "n1" / "0002.flac", 340, codec="flac")
    assert night(tmp_path / "n1", out, cache).ok == 2
    second = stereo_call(tmp_path / "n2" / "0001.wav", 380)  # another call, the same id
    with pytest.raises(InputError) as refused:
        night(tmp_path / "n2", out, cache)
    message = str(refused.value)
    assert f"call_id '0001' is already in {out} for another recording: {first}" in message
    assert f"this run gives it {second}" in message
    assert sorted(s.call_id for s in read_scores(out)) == ["0001", "0002"]  # night 1 untouched
    assert read_run_file(out)[0].path == first

    # the same recordings moved to another folder are the same calls: accepted, nothing lost
    shutil.move(tmp_path / "n1", tmp_path / "archive")
    again = night(tmp_path / "archive", out, cache)
    assert (again.total, again.ok) == (2, 2)
    assert {m.call_id: m.path for m in read_run_file(out)}["0001"] == tmp_path / "archive" / "0001.flac"


def test_run_json_holds_absolute_paths_and_a_run_from_another_folder_redoes_nothing(tmp_path, monkeypatch):
    for n in range(2):
        stereo_call(tmp_path / "audio" / f"call_{n}.wav", 300 + 40 * n)
    out, cache = tmp_path / "out", tmp_path / "cache"
    monkeypatch.chdir(tmp_path)
    assert night(Path("audio"), Path("out"), cache).ok == 2
    saved = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert saved["audio_dir"] == str(tmp_path / "audio")
    assert [c["path"] for c in saved["calls"]] == [str(tmp_path / "audio" / f"call_{n}.wav") for n in range(2)]
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # where `qa review` or tomorrow's cron job starts
    assert all(m.path.is_file() for m in read_run_file(Path("../out")))
    again = night(Path("../audio"), Path("../out"), cache)
    assert (again.total, again.reused) == (2, 2)


def test_a_call_without_started_at_keeps_its_day_when_scored_again_after_midnight(tmp_path, monkeypatch):
    stereo_call(tmp_path / "audio" / "late.wav", 300)
    out, cache = tmp_path / "out", tmp_path / "cache"
    with monkeypatch.context() as clock:  # the night's run, one minute before midnight (UTC, as stored)
        clock.setattr(stages, "now", lambda: "2025-03-06T23:59:00+00:00")
        assert night(tmp_path / "audio", out, cache).ok == 1
    days = lambda: sorted(p.name for p in (out / "scores" / "calls").iterdir())  # noqa: E731
    assert days() == ["call_date=2025-03-06"]
    rescore(out, rubric_path_default())  # the next morning (the real clock)
    assert days() == ["call_date=2025-03-06"]
    assert [s.processed_at for s in read_scores(out)] == ["2025-03-06T23:59:00+00:00"]
    # a qa run that redoes the call (another rubric) keeps it there too
    centre = ROOT / "bench" / "centres" / "dev-calls.yaml"
    assert night(tmp_path / "audio", out, cache, rubric=centre).reused == 0
    assert days() == ["call_date=2025-03-06"]


def test_scoring_again_leaves_the_transcript_tables_as_the_night_wrote_them(tmp_path):
    stereo_call(tmp_path / "audio" / "a.wav", 300)
    out = tmp_path / "out"
    assert night(tmp_path / "audio", out, tmp_path / "cache").ok == 1
    tables = [out / "transcripts" / "transcripts.parquet", out / "recordings" / "recordings.parquet"]
    before = [(p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in tables]
    summary = rescore(out, rubric_path_default())
    assert (summary.total, summary.ok) == (1, 1)
    assert [(p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in tables] == before
    assert [s.status for s in read_scores(out)] == ["ok"]
