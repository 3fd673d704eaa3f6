from pathlib import Path

import numpy as np
import pytest

from audio_factory import encode, tone
from qa_pipeline.audio.decode import SAMPLE_RATE, decode
from qa_pipeline.errors import DecodeError

FORMATS = [
    ("pcm_s16le", "wav", None, 8000),
    ("pcm_s16le", "wav", None, 44100),
    ("pcm_mulaw", "wav", None, 8000),
    ("pcm_alaw", "wav", None, 8000),
    ("flac", "flac", None, 16000),
    ("libmp3lame", "mp3", None, 16000),
    ("aac", "m4a", "mp4", 16000),
    ("libopus", "ogg", "ogg", 48000),
]


@pytest.mark.parametrize("codec,ext,container,rate", FORMATS)
@pytest.mark.parametrize("n_channels", [1, 2])
def test_every_format_decodes_to_16k_with_its_channels(tmp_path, codec, ext, container, rate, n_channels):
    signal = np.stack([tone(440 * (c + 1), 1.5, rate) for c in range(n_channels)])
    path = encode(tmp_path / f"x.{ext}", signal, rate, codec=codec, container=container)
    audio = decode(path)
    assert audio.n_channels == n_channels
    assert audio.sample_rate == SAMPLE_RATE
    assert 1.45 <= audio.duration_s <= 1.6
    assert all(ch.dtype == np.float32 and len(ch) == len(audio.channels[0]) for ch in audio.channels)
    # the channels stay apart: each one's dominant frequency is its own tone
    for c, samples in enumerate(audio.channels):
        spectrum = np.abs(np.fft.rfft(samples[2000:18000]))
        peak = np.fft.rfftfreq(16000, 1 / SAMPLE_RATE)[spectrum.argmax()]
        assert abs(peak - 440 * (c + 1)) < 15


def test_amr_narrowband_decodes(tmp_path):
    path = encode(tmp_path / "x.amr", tone(440, 1.5, 8000)[None, :], 8000, codec="amr_nb", container="amr")
    audio = decode(path)
    assert (audio.n_channels, audio.source_codec) == (1, "libopencore_amrnb")
    assert 1.45 <= audio.duration_s <= 1.6


def test_real_stereo_mulaw_call(calls_dir):
    audio = decode(calls_dir / "dev_07.wav")
    assert (audio.n_channels, audio.source_rate, audio.source_codec) == (2, 8000, "pcm_mulaw")
    assert audio.duration_s == pytest.approx(60.806, abs=0.01)


def test_mono_file_stays_mono(calls_dir):
    assert decode(calls_dir / "dev_11.wav").n_channels == 1


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: p.write_bytes(b""), r"empty \(0 bytes\)"),
        (lambda p: p.write_text("call_id,path\nnot audio at all\n" * 50), "not a readable audio file"),
        (lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "), "not a readable audio file"),
    ],
    ids=["zero-bytes", "text", "truncated-header"],
)
def test_bad_files_raise_one_readable_error(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(DecodeError, match=message):
        decode(path)


def test_missing_file(tmp_path):
    with pytest.raises(DecodeError, match="not found"):
        decode(tmp_path / "gone.wav")


def test_three_channels_refused(tmp_path):
    path = encode(tmp_path / "three.wav", np.stack([tone(440, 1, 8000)] * 3), 8000, codec="pcm_s16le")
    with pytest.raises(DecodeError, match="3 channels; only mono and stereo"):
        decode(path)


def test_too_long_refused_before_decoding(tmp_path):
    path = encode(tmp_path / "long.wav", tone(440, 3, 8000)[None, :], 8000, codec="pcm_s16le")
    with pytest.raises(DecodeError, match="over the limit"):
        decode(path, max_duration_s=2.0)
