"""What decoding hears of damaged and odd recordings (issues 21 and 26): damaged MP3 / AAC frames,
a file cut short, two equal stereo channels, two audio streams, AMR with DTX. Real dev calls in,
encoded and damaged here; no model."""

from __future__ import annotations

import random
from pathlib import Path

import av
import numpy as np
import pytest

from audio_factory import encode
from qa_pipeline.audio import decode as decoding
from qa_pipeline.audio.channels import likeness
from qa_pipeline.audio.decode import decode, decode_to_files
from qa_pipeline.errors import DecodeError
from qa_pipeline.files import file_digest

AMR = Path(__file__).resolve().parent / "data" / "amr"


@pytest.fixture(scope="module")
def dev_07(calls_dir):
    """dev_07 (stereo, 60.8 s) as decoded from its WAV: the reference for every copy."""
    return decode(calls_dir / "dev_07.wav")


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, dev_07) -> dict[str, Path]:
    """dev_07 as a stereo MP3 and a stereo M4A (AAC), 16 kHz."""
    folder = tmp_path_factory.mktemp("encoded")
    samples = np.stack(dev_07.channels)
    return {
        "mp3": encode(folder / "dev_07.mp3", samples, 16000, codec="libmp3lame"),
        "m4a": encode(folder / "dev_07.m4a", samples, 16000, codec="aac", container="mp4"),
    }


def damaged(source: Path, target: Path, n_bytes: int, at: float, seed: int = 1) -> Path:
    """A copy of `source` with `n_bytes` random bytes written at fraction `at` of the file."""
    data = bytearray(source.read_bytes())
    offset = int(len(data) * at)
    rng = random.Random(seed)
    data[offset : offset + n_bytes] = bytes(rng.randrange(256) for _ in range(n_bytes))
    target.write_bytes(bytes(data))
    return target


def aligned(a, b, start_s: float, seconds: float = 10.0, within_s: float = 0.15) -> tuple[float, float]:
    """(correlation, lag in seconds) of `a`'s stretch from `start_s` with `b` where they match best,
    `b` shifted by up to `within_s` either way (cross-correlation by FFT)."""
    start, n, reach = int(start_s * 16000), int(seconds * 16000), int(within_s * 16000)
    x = np.asarray(a[start : start + n], np.float64)
    y = np.asarray(b[start - reach : start + n + reach], np.float64)
    size = 1 << (len(y) + n).bit_length()
    products = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)[: 2 * reach + 1]
    energy = np.concatenate([[0.0], np.cumsum(y * y)])
    windows = energy[n : n + 2 * reach + 1] - energy[: 2 * reach + 1]
    correlation = products / np.sqrt(np.dot(x, x) * np.maximum(windows, 1e-12))
    best = int(np.argmax(correlation))
    return float(correlation[best]), (best - reach) / 16000


@pytest.mark.parametrize("fmt", ["mp3", "m4a"])
def test_a_few_damaged_bytes_cost_a_frame_not_the_rest_of_the_call(encoded, fmt, tmp_path):
    clean = decode(encoded[fmt])
    copy = decode(damaged(encoded[fmt], tmp_path / f"bad.{fmt}", 200, at=0.33))
    # before: decoding stopped at the first bad frame and kept about a third of the call, silently
    assert copy.decoded_s >= clean.decoded_s - 0.2
    assert copy.duration_s == pytest.approx(clean.duration_s, abs=0.08)  # silence where the frame was
    assert copy.decode_errors >= 1 and 0 < copy.lost_s < 0.25
    assert "could not be decoded" in copy.note
    # after the damage every word keeps its time in the file (to within the frame's length)
    for a, b in zip(copy.channels, clean.channels):
        correlation, lag = aligned(a, b, start_s=40.0)
        assert correlation > 0.99 and abs(lag) <= 0.04


@pytest.mark.parametrize("fmt", ["mp3", "m4a"])
def test_a_damaged_stretch_longer_than_a_syllable_is_counted_as_lost(encoded, fmt, tmp_path):
    clean = decode(encoded[fmt])
    copy = decode(damaged(encoded[fmt], tmp_path / f"bad.{fmt}", 3000, at=0.5))
    assert copy.lost_s >= 0.25  # what scoring holds for review (see test_held_for_review)
    assert copy.decoded_s == pytest.approx(clean.decoded_s - copy.lost_s, abs=0.15)
    assert copy.duration_s == pytest.approx(clean.duration_s, abs=0.15)


def test_a_file_cut_short_says_how_much_is_missing(calls_dir, tmp_path):
    whole = (calls_dir / "dev_07.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])
    audio = decode(cut)
    assert audio.container_s == pytest.approx(60.806, abs=0.01)  # the header's length
    assert audio.decoded_s == pytest.approx(30.4, abs=0.1)
    assert audio.lost_s == pytest.approx(30.4, abs=0.1)
    assert "ends 30.4 s before the 60.8 s the container states" in audio.note


def test_a_clean_file_loses_nothing(calls_dir, encoded):
    for path in (calls_dir / "dev_07.wav", calls_dir / "dev_11.wav", *encoded.values()):
        audio = decode(path)
        assert (audio.lost_s, audio.decode_errors, audio.note) == (0.0, 0, None), path.name


def test_nothing_decodable_is_a_decode_error_not_silence(encoded, tmp_path):
    data = bytearray(encoded["m4a"].read_bytes())
    mdat, moov = data.index(b"mdat") + 4, data.index(b"moov") - 4
    assert moov > mdat
    data[mdat:moov] = bytes(moov - mdat)  # every AAC frame zeroed, the index kept
    (tmp_path / "zeros.m4a").write_bytes(bytes(data))
    with pytest.raises(DecodeError, match="cannot decode zeros.m4a"):
        decode(tmp_path / "zeros.m4a")


# --- two equal channels ------------------------------------------------------------------------


def test_a_mono_call_saved_as_two_equal_channels_is_heard_as_that_mono_call(calls_dir, tmp_path):
    mono = decode(calls_dir / "dev_11.wav")
    stereo = encode(tmp_path / "dup.wav", np.stack([mono.channels[0]] * 2), 16000, codec="pcm_s16le")
    audio = decode(stereo)
    reference = decode(encode(tmp_path / "mono.wav", mono.channels[0][None, :], 16000, codec="pcm_s16le"))
    assert (audio.n_channels, audio.source_channels) == (1, 2)
    assert np.array_equal(audio.channels[0], reference.channels[0])  # the same samples: the same transcript
    assert "two channels are the same recording" in audio.note
    on_disk = decode_to_files(stereo, tmp_path / "files")
    assert on_disk.n_channels == 1 and np.array_equal(on_disk.channels[0][:], reference.channels[0])
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == ["mono.f32"]


def test_nearly_equal_channels_too_but_not_the_two_sides_of_a_call(calls_dir, tmp_path):
    mono = decode(calls_dir / "dev_11.wav").channels[0]
    noise = np.random.default_rng(0).normal(0, 0.002, len(mono)).astype(np.float32)
    nearly = encode(tmp_path / "nearly.wav", np.stack([mono, 0.8 * mono + noise]), 16000, codec="pcm_s16le")
    assert decode(nearly).n_channels == 1
    # one side carrying the other only as a faint echo is still two sides
    echo = encode(tmp_path / "echo.wav", np.stack([mono, 0.1 * mono + noise]), 16000, codec="pcm_s16le")
    assert decode(echo).n_channels == 2
    assert decode(calls_dir / "dev_07.wav").n_channels == 2


# --- several audio streams ---------------------------------------------------------------------


def two_streams(path: Path, sides: list[np.ndarray], layout: str = "mono") -> Path:
    """An M4A with one AAC stream per side."""
    with av.open(str(path), mode="w", format="mp4") as out:
        streams = [out.add_stream("aac", rate=16000, layout=layout) for _ in sides]
        for stream, side in zip(streams, sides):
            frame = av.AudioFrame.from_ndarray(np.atleast_2d(side).astype(np.float32).copy(), format="fltp",
                                               layout=layout)
            frame.sample_rate = 16000
            for packet in stream.encode(frame) + stream.encode(None):
                out.mux(packet)
    return path


def test_two_mono_streams_are_the_two_sides_of_a_stereo_call(dev_07, tmp_path):
    path = two_streams(tmp_path / "two.m4a", list(dev_07.channels))
    audio = decode(path)
    assert audio.n_channels == 2  # before: the first stream only, one side of the call
    assert "2 mono audio streams" in audio.note
    for c in range(2):  # each stream is its own side, in order (AAC's priming shifts both alike)
        assert aligned(audio.channels[c], dev_07.channels[c], start_s=20.0)[0] > 0.99
        assert aligned(audio.channels[c], dev_07.channels[1 - c], start_s=20.0)[0] < 0.1


def test_streams_with_more_than_two_channels_in_all_are_refused(dev_07, tmp_path):
    stereo = np.stack(dev_07.channels)[:, : 16000 * 3]
    path = two_streams(tmp_path / "four.m4a", [stereo, stereo], layout="stereo")
    with pytest.raises(DecodeError, match="four.m4a has 2 audio streams with 4 channels; only mono and stereo"):
        decode(path)


# --- AMR (issue 26) ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dev_11.dtx.amr", "dev_11.amr", "dev_11.awb"])
def test_amr_decodes_to_the_source_duration_without_errors(calls_dir, name):
    source = decode(calls_dir / "dev_11.wav").duration_s
    audio = decode(AMR / name)
    assert audio.duration_s == pytest.approx(source, abs=0.1)
    assert (audio.decode_errors, audio.lost_s) == (0, 0.0)
    assert audio.source_codec == ("libopencore_amrwb" if name.endswith(".awb") else "libopencore_amrnb")
    assert audio.container_s is None  # raw AMR states only a bit-rate estimate, wrong with DTX


def remux(source: Path, target: Path) -> Path:
    """`source`'s packets as they are in another container (AMR in 3GP, as phone recorders write it)."""
    with av.open(str(source)) as inp, av.open(str(target), mode="w") as out:
        stream = out.add_stream_from_template(inp.streams.audio[0])
        for packet in inp.demux(inp.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return target


def test_amr_with_dtx_inside_3gp_decodes_whole(calls_dir, tmp_path):
    audio = decode(remux(AMR / "dev_11.dtx.amr", tmp_path / "call.3gp"))
    assert audio.source_codec == "libopencore_amrnb"
    assert audio.duration_s == pytest.approx(decode(calls_dir / "dev_11.wav").duration_s, abs=0.1)
    assert audio.decode_errors == 0


def test_without_opencore_dtx_frames_are_lost_audio_not_silence(monkeypatch):
    monkeypatch.setattr(decoding, "PREFERRED_DECODERS", {})  # a PyAV build without OpenCORE
    audio = decode(AMR / "dev_11.dtx.amr")
    assert audio.source_codec == "amrnb"
    assert audio.decode_errors > 100 and audio.lost_s > 3.0  # FFmpeg's decoder cannot read DTX frames
    assert audio.duration_s == pytest.approx(46.2, abs=0.1)  # the timeline is kept, the loss said


# --- what was decoded ----------------------------------------------------------------------------


def test_the_digest_is_of_the_bytes_decoded(calls_dir):
    assert decode(calls_dir / "dev_11.wav").digest == file_digest(calls_dir / "dev_11.wav")
