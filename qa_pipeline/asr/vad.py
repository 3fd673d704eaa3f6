"""Silero voice-activity detection (faster-whisper's), shared by transcription and diarization."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from qa_pipeline.audio.decode import SAMPLE_RATE


@dataclass(frozen=True)
class VadSettings:
    """Silero VAD settings, tuned for telephone channels where one side is mostly silent."""

    # Chosen on the stereo dev calls, as recorded and with the gaps between turns zeroed to
    # digital silence: 0.25 / 100 ms / a -60 dBFS floor keeps every reference turn of every
    # channel in both; 0.35 / 200 ms (or faster-whisper's defaults) lose short turns such as 对.
    threshold: float = 0.25
    min_speech_duration_ms: int = 100
    min_silence_duration_ms: int = 500
    speech_pad_ms: int = 300


def vad_regions(audio: np.ndarray, vad: VadSettings, *, max_speech_s: float = float("inf")) -> list[tuple[float, float]]:
    """Silero's speech regions (seconds) in 16 kHz audio."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(**asdict(vad), max_speech_duration_s=max_speech_s)
    return [(r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE) for r in get_speech_timestamps(audio, options, sampling_rate=SAMPLE_RATE)]


def with_noise_floor(samples: np.ndarray, level: float) -> np.ndarray:
    """Add a faint deterministic noise floor so that digital silence does not confuse the VAD."""
    if level <= 0:
        return samples
    rng = np.random.default_rng(len(samples))
    return (samples + rng.normal(0.0, level, size=samples.shape)).astype(np.float32)
