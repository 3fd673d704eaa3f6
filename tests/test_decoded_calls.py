"""What the batch does with what decoding found (issues 21 and 26): a call that lost audio is held
for review, never scored as a normal one; the transcript cache is keyed by the bytes decoded; a call
is decoded once. Real dev calls, real decode, tones, speakers, scoring, tables and queue; Whisper is
replaced by tests/factories.FakeWhisper (fixed words), so these run in seconds."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from audio_factory import encode
from cli import app
from factories import FakeWhisper
from qa_pipeline.asr.transcribe import TranscribeOptions
from qa_pipeline.audio import decode as decoding
from qa_pipeline.audio.decode import audio_digest, decode
from qa_pipeline.batch import stages
from qa_pipeline.batch.config import Inputs, RunConfig, TranscribeConfig
from qa_pipeline.batch.engine import run_batch
from qa_pipeline.batch.local import LocalEngine
from qa_pipeline.batch.stages import TranscribeStage
from qa_pipeline.batch.store import TranscriptCache
from qa_pipeline.errors import NoSpeech
from qa_pipeline.output.tables import read_score_tables, read_scores, read_transcripts
from qa_pipeline.records import FAIL, CallMeta
from qa_pipeline.final_verdicts import REVIEWED, Event, final_call, final_calls
from qa_pipeline.review.policy import Policy
from qa_pipeline.review.queue import AUDIO_LOST, build_queue
from qa_pipeline.scoring.rubric import rubric_path_default

AMR = Path(__file__).resolve().parent / "data" / "amr"


def config(audio: Path, out: Path, cache: Path) -> RunConfig:
    return RunConfig(Inputs(audio), out, TranscribeConfig(cache_dir=cache, options=TranscribeOptions()),
                     rubric=rubric_path_default())


class CountingWhisper(FakeWhisper):
    """FakeWhisper that counts the calls it hears."""

    def __init__(self) -> None:
        self.heard = 0

    def transcribe(self, channels):
        self.heard += 1
        return super().transcribe(channels)


@pytest.fixture(scope="module")
def mp3(tmp_path_factory, calls_dir) -> Path:
    """dev_07 (stereo, 60.8 s) as an MP3."""
    audio = decode(calls_dir / "dev_07.wav")
    return encode(tmp_path_factory.mktemp("mp3") / "dev_07.mp3", np.stack(audio.channels), 16000, codec="libmp3lame")


def damaged(source: Path, target: Path, n_bytes: int) -> Path:
    data = bytearray(source.read_bytes())
    at = len(data) // 2
    rng = random.Random(7)
    data[at : at + n_bytes] = bytes(rng.randrange(256) for _ in range(n_bytes))
    target.write_bytes(bytes(data))
    return target


# --- held for review ------------------------------------------------------------------------------


def test_a_call_that_lost_audio_is_held_for_review_with_the_reason(mp3, tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    shutil.copyfile(mp3, audio / "clean.mp3")
    damaged(mp3, audio / "lossy.mp3", 3000)
    out = tmp_path / "out"
    summary = run_batch(config(audio, out, tmp_path / "cache"), LocalEngine(FakeWhisper()))
    assert (summary.ok, summary.failed) == (2, 0)

    recordings = read_transcripts(out)
    lossy, clean = recordings["lossy"], recordings["clean"]
    assert (clean.lost_s, clean.decode_errors, clean.audio_note) == (0.0, 0, None)
    assert clean.decoded_s == pytest.approx(60.8, abs=0.05)
    assert lossy.lost_s >= 0.25 and lossy.decode_errors >= 1
    assert lossy.decoded_s == pytest.approx(lossy.duration_s - lossy.lost_s, abs=0.01)
    assert lossy.duration_s == pytest.approx(clean.duration_s, abs=0.1)  # the damaged stretch kept as silence
    assert "could not be decoded" in lossy.audio_note

    scores = {s.call_id: s for s in read_scores(out)}
    assert scores["clean"].held_reason is None
    assert scores["lossy"].held_reason.startswith("音频不完整：")
    assert f"{lossy.lost_s:.1f} 秒无法解码" in scores["lossy"].held_reason
    calls, items = read_score_tables(out)
    by_call = {r["call_id"]: r for r in calls.to_pylist()}
    fails = [r for r in items.to_pylist() if r["call_id"] == "lossy" and r["result"] == FAIL]
    assert fails, "the fake transcript fails some item"
    # the machine's fails wait for a person and do not count meanwhile: the final score is not the machine's
    assert all(r["held"] for r in items.to_pylist() if r["call_id"] == "lossy" and r["result"] == FAIL)
    assert not any(r["held"] for r in items.to_pylist() if r["call_id"] == "clean")
    assert by_call["lossy"]["final_score"] > by_call["lossy"]["score"]
    assert by_call["clean"]["final_score"] == by_call["clean"]["score"]
    # the call card says why
    card = (out / "reports" / "calls" / "lossy.html").read_text(encoding="utf-8")
    assert scores["lossy"].held_reason in card
    # and the review queue lists the call first
    queue = build_queue(final_calls(read_scores(out), ()), Policy())
    assert (queue[0].kind, queue[0].call_id) == (AUDIO_LOST, "lossy")
    assert [e.call_id for e in queue if e.kind == AUDIO_LOST] == ["lossy"]


def test_a_held_calls_fails_count_once_a_person_marks_it_reviewed(mp3, tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    damaged(mp3, audio / "lossy.mp3", 3000)
    run_batch(config(audio, tmp_path / "out", tmp_path / "cache"), LocalEngine(FakeWhisper()))
    [score] = read_scores(tmp_path / "out")
    held = final_call(score, ())
    assert any(i.held for i in held.items) and held.score != score.score
    reviewed = Event(1, "2025-03-05T10:00:00+08:00", "李娜", "inspector", REVIEWED, score.call_id, to_result="reviewed")
    after = final_call(score, [reviewed])
    assert not any(i.held for i in after.items) and after.score == score.score


def test_qa_score_keeps_the_hold_from_the_recordings_table(mp3, tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    damaged(mp3, audio / "lossy.mp3", 3000)
    out = tmp_path / "out"
    run_batch(config(audio, out, tmp_path / "cache"), LocalEngine(FakeWhisper()))
    result = CliRunner().invoke(app, ["score", str(out)])  # re-scored from the tables, no audio
    assert result.exit_code == 0, result.output
    [score] = read_scores(out)
    assert score.held_reason is not None
    assert read_transcripts(out)["lossy"].lost_s >= 0.25


# --- the transcript cache ------------------------------------------------------------------------


def test_a_file_replaced_after_the_run_hashed_it_is_cached_under_what_was_decoded(calls_dir, tmp_path):
    path = tmp_path / "call.wav"
    first = (calls_dir / "dev_07.wav").read_bytes()
    path.write_bytes(first)
    planned = audio_digest(path)  # the run hashes the file …
    other = decode(calls_dir / "dev_11.wav")  # … then it is replaced by another recording
    encode(path, np.stack([other.channels[0], other.channels[0] * 0.1]), 16000, codec="pcm_s16le")
    cache = TranscriptCache(tmp_path / "cache")
    stage = TranscribeStage(TranscribeConfig(cache_dir=cache.root), cache, FakeWhisper())
    entry, _ = stage.entry(CallMeta("call", path), planned)
    assert entry.duration_s == pytest.approx(46.2, abs=0.05)  # what was decoded: the new file
    assert cache.get(stage.cache_key(planned)) is None  # never under the first file's key
    assert cache.get(stage.cache_key(audio_digest(path))).duration_s == pytest.approx(46.2, abs=0.05)
    # the first recording back: its own transcript, not the other one's
    path.write_bytes(first)
    entry, from_cache = stage.entry(CallMeta("call", path), planned)
    assert (entry.duration_s, from_cache) == (pytest.approx(60.806, abs=0.01), False)


def test_a_file_replaced_before_a_group_is_decoded_is_cached_under_what_was_decoded(calls_dir, tmp_path):
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    paths[0].write_bytes((calls_dir / "dev_07.wav").read_bytes())
    encode(paths[1], np.stack(decode(calls_dir / "dev_07.wav").channels), 16000, codec="pcm_s16le")
    planned = [audio_digest(p) for p in paths]
    paths[0].write_bytes((calls_dir / "dev_11.wav").read_bytes())  # replaced after hashing
    cache = TranscriptCache(tmp_path / "cache")
    stage = TranscribeStage(TranscribeConfig(cache_dir=cache.root), cache, FakeWhisper())
    stage.prefill([(CallMeta(p.stem, p), d) for p, d in zip(paths, planned)])
    assert cache.get(stage.cache_key(audio_digest(paths[0]))).duration_s == pytest.approx(46.2, abs=0.05)
    assert cache.get(stage.cache_key(planned[1])).duration_s == pytest.approx(60.806, abs=0.01)
    entry, _ = stage.entry(CallMeta("a", paths[0]), planned[0])
    assert entry.duration_s == pytest.approx(46.2, abs=0.05)


def test_an_entry_cached_from_a_decode_that_stopped_early_is_transcribed_again(mp3, tmp_path):
    lossy = damaged(mp3, tmp_path / "lossy.mp3", 200)
    cache = TranscriptCache(tmp_path / "cache")
    whisper = CountingWhisper()
    stage = TranscribeStage(TranscribeConfig(cache_dir=cache.root), cache, whisper)
    key = stage.cache_key(audio_digest(lossy))
    entry, _ = stage.entry(CallMeta("lossy", lossy))
    # what an earlier version cached for this file: a decode that stopped at the damaged frame
    cache.put(key, replace(entry, duration_s=20.2, decoded_s=None, lost_s=0.0, decode_errors=0, audio_note=None))
    again, from_cache = stage.entry(CallMeta("lossy", lossy))
    assert (whisper.heard, from_cache) == (2, False)
    assert again.duration_s == pytest.approx(entry.duration_s) and again.decode_errors >= 1
    # an older entry that does match the decode only gains what decoding said, without Whisper
    cache.put(key, replace(entry, decoded_s=None, lost_s=0.0, decode_errors=0, audio_note=None))
    upgraded, from_cache = stage.entry(CallMeta("lossy", lossy))
    assert (whisper.heard, from_cache) == (2, True)
    assert upgraded == entry


# --- decoded once ----------------------------------------------------------------------------------


def test_a_lone_call_and_a_silent_call_are_decoded_once(calls_dir, tmp_path, monkeypatch):
    audio = tmp_path / "audio"
    audio.mkdir()
    shutil.copyfile(calls_dir / "dev_07.wav", audio / "dev_07.wav")
    encode(audio / "silent.wav", np.zeros((2, 8000 * 20), np.float32), 8000, codec="pcm_mulaw")
    decoded: list[str] = []
    written: list[int] = []
    real = stages.decode_to_files

    def counting(path, folder, **options):
        result = real(path, folder, **options)
        decoded.append(Path(path).name)
        written.append(sum(f.stat().st_size for f in Path(folder).iterdir()))
        return result

    monkeypatch.setattr(stages, "decode_to_files", counting)
    cache = tmp_path / "cache"
    summary = run_batch(config(audio, tmp_path / "out", cache), LocalEngine(FakeWhisper()))
    assert (summary.ok, summary.failed) == (1, 1)
    assert dict(summary.failures)["silent"].startswith("silent recording")
    # one group of two: the silent call is set aside, the other is alone: each decoded once (was twice)
    assert sorted(decoded) == ["dev_07.wav", "silent.wav"]
    raw = 4 * 16000 * (60.806 * 2 + 20 * 2)
    assert sum(written) == pytest.approx(raw, rel=0.01)
    assert not any((cache / stages.DECODED_DIR).iterdir())  # nothing left on disk


# --- a decoder's errors are never "no speech" (issue 26) -------------------------------------------


class DeafWhisper(FakeWhisper):
    """A Transcriber that hears nothing at all."""

    def transcribe(self, channels):
        return []


def test_a_decoder_that_loses_dtx_frames_holds_the_call_and_never_says_just_no_speech(tmp_path, monkeypatch):
    monkeypatch.setattr(decoding, "PREFERRED_DECODERS", {})  # a PyAV without OpenCORE: FFmpeg's amrnb
    audio = tmp_path / "audio"
    audio.mkdir()
    shutil.copyfile(AMR / "dev_11.dtx.amr", audio / "dtx.amr")
    run_batch(config(audio, tmp_path / "out", tmp_path / "cache"), LocalEngine(FakeWhisper()))
    [score] = read_scores(tmp_path / "out")
    recording = read_transcripts(tmp_path / "out")["dtx"]
    assert recording.decode_errors > 100 and recording.lost_s > 3.0
    assert score.status == "ok" and score.held_reason.startswith("音频不完整")

    cache = TranscriptCache(tmp_path / "cache-deaf")
    stage = TranscribeStage(TranscribeConfig(cache_dir=cache.root), cache, DeafWhisper())
    with pytest.raises(NoSpeech, match=r"no speech found .*; only 40\.7 s of 46\.2 s could be decoded"):
        stage.run(CallMeta("dtx", audio / "dtx.amr"))
