"""Silero on split telephone channels: no reference turn may vanish, even around digital silence."""

import json
from dataclasses import asdict

import numpy as np
import pytest
from faster_whisper.vad import VadOptions, get_speech_timestamps

from qa_pipeline.audio.decode import decode
from qa_pipeline.asr.transcribe import TranscribeOptions
from qa_pipeline.asr.vad import with_noise_floor


def digital_silence_between_turns(samples: np.ndarray) -> np.ndarray:
    """Zero every 20 ms frame quieter than -40 dBFS, as a PBX that gates its channels does."""
    out = samples.copy()
    frame = 320
    for i in range(0, len(out), frame):
        if np.sqrt(np.mean(out[i:i + frame] ** 2)) < 0.01:
            out[i:i + frame] = 0.0
    return out


def coverage_of_turns(samples: np.ndarray, turns: list[dict], options: TranscribeOptions) -> list[float]:
    audio = with_noise_floor(samples, options.noise_floor)
    speech = get_speech_timestamps(audio, VadOptions(**asdict(options.vad)), sampling_rate=16000)
    mask = np.zeros(len(audio) // 160 + 1, bool)
    for region in speech:
        mask[region["start"] // 160:region["end"] // 160] = True
    return [float(mask[int(t["start"] * 100):int(t["end"] * 100)].mean()) for t in turns]


@pytest.mark.parametrize("gated", [False, True], ids=["as-recorded", "digital-silence"])
def test_every_turn_of_each_channel_survives_vad(data_dir, calls_dir, gated):
    labels = json.loads((data_dir / "dev_labels.json").read_text(encoding="utf-8"))["dev_07"]
    agent_channel = labels["format"]["agent_channel"]
    audio = decode(calls_dir / "dev_07.wav")
    for channel, samples in enumerate(audio.channels):
        if gated:
            samples = digital_silence_between_turns(samples)
        role = "agent" if channel == agent_channel else "customer"
        turns = [t for t in labels["turns"] if t["speaker"] == role]
        covered = coverage_of_turns(samples, turns, TranscribeOptions())
        lost = [(t["start"], t["text"]) for t, c in zip(turns, covered) if c < 0.5]
        assert not lost, f"channel {channel} ({role}) lost {lost}"


def test_the_fixture_is_hard_enough_to_catch_untuned_vad(data_dir, calls_dir):
    """faster-whisper's default VAD settings, with no noise floor, lose turns on this audio."""
    from qa_pipeline.asr.vad import VadSettings

    untuned = TranscribeOptions(vad=VadSettings(threshold=0.5, min_speech_duration_ms=250,
                                                min_silence_duration_ms=2000, speech_pad_ms=400), noise_floor=0.0)
    labels = json.loads((data_dir / "dev_labels.json").read_text(encoding="utf-8"))["dev_07"]
    audio = decode(calls_dir / "dev_07.wav")
    customer_turns = [t for t in labels["turns"] if t["speaker"] == "customer"]
    covered = coverage_of_turns(digital_silence_between_turns(audio.channels[0]), customer_turns, untuned)
    assert min(covered) < 0.5
