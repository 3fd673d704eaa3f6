"""The same call recorded oddly gets the same verdicts (issues 21 and 26), through the real pipeline
(Whisper base, speakers, rubric): dev_11 as mono WAV, as a stereo WAV of two equal channels, as
AMR-NB with and without DTX and as AMR-WB; dev_07 as WAV, as MP3, as an MP3 with 200 damaged bytes
and as an M4A with each side in a stream of its own."""

from __future__ import annotations

import csv
import random
import shutil
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from audio_factory import encode
from qa_pipeline.audio.decode import decode
from qa_pipeline.batch.config import Inputs, RunConfig, TranscribeConfig
from qa_pipeline.batch.engine import run_batch
from qa_pipeline.batch.local import LocalEngine
from qa_pipeline.output.tables import read_scores, read_transcripts
from qa_pipeline.scoring.rubric import rubric_path_default

AMR = Path(__file__).resolve().parent / "data" / "amr"
VARIANTS = {  # call_id → the call it is a copy of
    "dev_11": "dev_11", "dev_11_two_equal": "dev_11", "dev_11_amr_nb": "dev_11", "dev_11_amr_dtx": "dev_11",
    "dev_11_amr_wb": "dev_11",
    "dev_07": "dev_07", "dev_07_mp3": "dev_07", "dev_07_mp3_damaged": "dev_07", "dev_07_two_streams": "dev_07",
}


def two_equal_channels(source: Path, target: Path) -> Path:
    """The mono WAV's very samples in both channels of a stereo WAV."""
    with wave.open(str(source)) as w:
        rate, width, frames = w.getframerate(), w.getsampwidth(), w.readframes(w.getnframes())
    samples = np.frombuffer(frames, np.int16)
    with wave.open(str(target), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(np.repeat(samples, 2).tobytes())
    return target


def two_streams(source: Path, target: Path) -> Path:
    audio = decode(source)
    with av.open(str(target), mode="w", format="mp4") as out:
        streams = [out.add_stream("aac", rate=16000, layout="mono") for _ in audio.channels]
        for stream, side in zip(streams, audio.channels):
            frame = av.AudioFrame.from_ndarray(np.asarray(side, np.float32)[None, :].copy(), format="fltp",
                                               layout="mono")
            frame.sample_rate = 16000
            for packet in stream.encode(frame) + stream.encode(None):
                out.mux(packet)
    return target


@pytest.fixture(scope="module")
def night(tmp_path_factory, calls_dir, transcript_cache) -> Path:
    audio = tmp_path_factory.mktemp("odd")
    files = {
        "dev_11": Path(shutil.copyfile(calls_dir / "dev_11.wav", audio / "dev_11.wav")),
        "dev_11_two_equal": two_equal_channels(calls_dir / "dev_11.wav", audio / "dev_11_two_equal.wav"),
        "dev_07": Path(shutil.copyfile(calls_dir / "dev_07.wav", audio / "dev_07.wav")),
        "dev_07_two_streams": two_streams(calls_dir / "dev_07.wav", audio / "dev_07_two_streams.m4a"),
    }
    for name, fixture in (("amr_nb", "dev_11.amr"), ("amr_dtx", "dev_11.dtx.amr"), ("amr_wb", "dev_11.awb")):
        files[f"dev_11_{name}"] = Path(shutil.copyfile(AMR / fixture, audio / f"dev_11_{name}{Path(fixture).suffix}"))
    mp3 = encode(audio / "dev_07_mp3.mp3", np.stack(decode(calls_dir / "dev_07.wav").channels), 16000,
                 codec="libmp3lame")
    files["dev_07_mp3"] = mp3
    data = bytearray(mp3.read_bytes())
    at, rng = len(data) // 3, random.Random(1)
    data[at : at + 200] = bytes(rng.randrange(256) for _ in range(200))
    files["dev_07_mp3_damaged"] = audio / "dev_07_mp3_damaged.mp3"
    files["dev_07_mp3_damaged"].write_bytes(bytes(data))

    with open(calls_dir / "manifest.csv", encoding="utf-8") as f:
        rows = {r["call_id"]: r for r in csv.DictReader(f)}
    with open(audio / "manifest.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows["dev_07"]))
        writer.writeheader()
        for call_id, path in files.items():
            writer.writerow({**rows[VARIANTS[call_id]], "call_id": call_id, "path": path.name})
    out = audio / "out"
    config = RunConfig(Inputs(audio, manifest=audio / "manifest.csv"), out,
                       TranscribeConfig(cache_dir=transcript_cache), rubric=rubric_path_default())
    summary = run_batch(config, LocalEngine())
    assert (summary.total, summary.ok) == (len(files), len(files)), summary.failures
    return out


def verdicts(score) -> dict[str, str]:
    return {i.item_id: i.result for i in score.items}


@pytest.mark.slow
@pytest.mark.parametrize("call_id", [c for c in VARIANTS if c != VARIANTS[c]])
def test_the_same_call_recorded_otherwise_gets_the_same_verdicts(night, call_id):
    scores = {s.call_id: s for s in read_scores(night)}
    original = scores[VARIANTS[call_id]]
    assert verdicts(scores[call_id]) == verdicts(original)
    assert scores[call_id].held_reason is None  # nothing lost that a person must hear


@pytest.mark.slow
def test_the_recordings_table_says_how_each_was_heard(night):
    recordings = read_transcripts(night)
    assert recordings["dev_11_two_equal"].n_channels == 1
    assert "two channels are the same recording" in recordings["dev_11_two_equal"].audio_note
    assert recordings["dev_07_two_streams"].n_channels == 2
    assert "2 mono audio streams" in recordings["dev_07_two_streams"].audio_note
    damaged = recordings["dev_07_mp3_damaged"]
    assert damaged.decode_errors >= 1 and 0 < damaged.lost_s < 0.25
    assert damaged.decoded_s == pytest.approx(60.8, abs=0.1)  # before: 20.2 s kept, scored as a whole call
    for call_id in ("dev_11_amr_nb", "dev_11_amr_dtx", "dev_11_amr_wb"):
        amr = recordings[call_id]
        assert amr.decoded_s == pytest.approx(recordings["dev_11"].duration_s, abs=0.1)
        assert (amr.decode_errors, amr.lost_s, amr.container_s) == (0, 0.0, None)
