"""A call read a chunk at a time gives exactly what the whole call in memory gives: decode to disk,
the noise floor, Silero VAD, the busy-tone search and the level profiles (issue 12: a 4-hour call
must not need its whole audio in memory)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from qa_pipeline.asr import vad
from qa_pipeline.asr.transcribe import TranscribeOptions
from qa_pipeline.asr.vad import with_noise_floor
from qa_pipeline.audio.decode import decode, decode_to_files
from qa_pipeline.audio.stream import NOISE_STEP, FileChannel, NoisyChannel, chunks_of, frame_blocks, peak
from qa_pipeline.audio.tones import FRAME_S, HOP_S, BusyToneSpec, busy_tones, find_busy_tones, tone_flags
from qa_pipeline.speakers.diarize import DIARIZE_VAD
from qa_pipeline.speakers.roles import channel_levels, level_profile


def odd_chunks(samples, sizes=(7777, 123_457, 1)):
    start, k = 0, 0
    while start < len(samples):
        yield samples[start:start + sizes[k % len(sizes)]]
        start += sizes[k % len(sizes)]
        k += 1


@pytest.fixture(scope="module")
def stereo(calls_dir):
    return decode(calls_dir / "dev_07.wav")


def test_decode_to_files_gives_the_same_samples_read_by_slices(stereo, calls_dir, tmp_path):
    on_disk = decode_to_files(calls_dir / "dev_07.wav", tmp_path)
    assert on_disk.n_channels == 2 and on_disk.duration_s == stereo.duration_s
    for memory, disk in zip(stereo.channels, on_disk.channels):
        assert isinstance(disk, FileChannel)
        assert np.array_equal(disk[0:len(disk)], memory)
        assert np.array_equal(disk[12345:99999], memory[12345:99999])
        assert peak(disk) == float(np.max(np.abs(memory)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["channel-0.f32", "channel-1.f32"]


def test_the_noise_floor_read_by_slices_is_the_whole_channels(stereo):
    samples = stereo.channels[0]
    whole = with_noise_floor(samples, 1e-3)
    noisy = NoisyChannel(samples, 1e-3)
    for start, stop in ((0, 10), (NOISE_STEP - 1, NOISE_STEP + 1), (5, len(samples)), (len(samples) - 3, len(samples))):
        assert np.array_equal(noisy[start:stop], whole[start:stop])
    assert np.array_equal(np.concatenate(list(odd_chunks(noisy))), whole)


def test_frame_blocks_are_the_frames_of_the_whole_array():
    x = np.arange(10_001, dtype=np.float32)
    frames = np.concatenate(list(frame_blocks(odd_chunks(x, (333, 4000)), 800, 400, rows=3)))
    n = 1 + (len(x) - 800) // 400
    assert frames.shape == (n, 800)
    assert np.array_equal(frames, x[np.arange(800)[None, :] + 400 * np.arange(n)[:, None]])


def test_streamed_vad_probabilities_and_regions_are_faster_whispers(stereo):
    from faster_whisper.vad import VadOptions, get_speech_timestamps, get_vad_model

    # the call seven times over: longer than one batch of 10,000 windows, so the carried state counts
    audio = with_noise_floor(np.concatenate([stereo.channels[1]] * 7), 1e-3)
    assert len(audio) > vad.BLOCK
    probs, n = vad.speech_probabilities(odd_chunks(audio))
    assert n == len(audio)
    assert np.array_equal(probs, get_vad_model()(np.pad(audio, (0, vad.WINDOW - len(audio) % vad.WINDOW))).reshape(-1))
    for settings, longest in ((TranscribeOptions().vad, 28.0), (DIARIZE_VAD, float("inf"))):
        want = get_speech_timestamps(audio, VadOptions(**asdict(settings), max_speech_duration_s=longest))
        got = vad.speech_regions(probs, n, vad.VadRules(**asdict(settings), max_speech_duration_s=longest))
        assert got == want and len(got) > 10


@pytest.mark.parametrize("n", [100, vad.WINDOW * 3, vad.BLOCK])
def test_streamed_vad_at_the_edges(n):
    from faster_whisper.vad import get_vad_model

    x = with_noise_floor((0.2 * np.sin(np.arange(n) / 3)).astype(np.float32), 1e-3)
    probs, m = vad.speech_probabilities(chunks_of(x, 1000))
    assert m == n
    assert np.array_equal(probs, get_vad_model()(np.pad(x, (0, vad.WINDOW - n % vad.WINDOW))).reshape(-1))


def whole_array_tone_flags(samples, spec=BusyToneSpec(), rate=16000):
    """The busy-tone frame test as it was, on the whole channel at once (6.8 GB for 2 h)."""
    frame, hop = int(FRAME_S * rate), int(HOP_S * rate)
    idx = np.arange(frame)[None, :] + hop * np.arange(1 + (len(samples) - frame) // hop)[:, None]
    spectrum = np.abs(np.fft.rfft(samples[idx] * np.hanning(frame)[None, :], axis=1)) ** 2
    freqs = np.fft.rfftfreq(frame, 1.0 / rate)
    band = (freqs > spec.freq_hz - 40) & (freqs < spec.freq_hz + 40)
    purity = spectrum[:, band].sum(axis=1) / (spectrum.sum(axis=1) + 1e-12)
    return (purity >= spec.min_purity) & (np.sqrt((samples[idx] ** 2).mean(axis=1)) >= spec.min_level)


def whole_array_levels(samples, frame=800):
    x = np.asarray(samples, dtype=np.float64)
    n = -(-len(x) // frame)
    x = np.pad(x, (0, n * frame - len(x))).reshape(n, frame)
    db = np.clip(np.round(20 * np.log10(np.maximum(np.sqrt(np.mean(x * x, axis=1)), 1e-6))), -100, 0)
    return tuple(int(v) for v in db)


def test_busy_tones_and_levels_by_chunks_are_the_whole_calls(stereo):
    from audio_factory import busy_tone

    tone = np.concatenate([np.zeros(16000, np.float32), busy_tone(5.0, 16000).astype(np.float32)])
    for samples in (*stereo.channels, tone):
        assert np.array_equal(tone_flags(odd_chunks(samples), 16000), whole_array_tone_flags(samples))
        assert busy_tones(odd_chunks(samples), 16000, channel=1) == find_busy_tones(samples, 16000, channel=1)
        assert level_profile(odd_chunks(samples), 16000) == whole_array_levels(samples)
        assert channel_levels([samples], 16000)[0] == whole_array_levels(samples)
    assert busy_tones(odd_chunks(tone), 16000)  # the tone is there to be found
