"""Silero voice-activity detection (faster-whisper's), shared by transcription and diarization.

Run over a stream of audio, a minute at a time: faster-whisper's ``get_speech_timestamps`` needs
the whole channel in memory (and two copies of it while it pads and frames it), 2 GB for a 4-hour
channel at 16 kHz. Here the same model is run over the same 512-sample windows, each with the same
64-sample context, in the same batches of 10,000 windows with the recurrent state carried from
batch to batch, so the speech probabilities are bit for bit faster-whisper's; those of a whole
call are small (one float per 32 ms). The regions are cut from them by faster-whisper's rules
(adapted from silero-vad, MIT licence, via faster-whisper's vad.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from qa_pipeline.audio.decode import SAMPLE_RATE
from qa_pipeline.audio.stream import blocks, chunks_of


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


def vad_regions(audio, vad: VadSettings, *, max_speech_s: float = float("inf")) -> list[tuple[float, float]]:
    """Silero's speech regions (seconds) in 16 kHz audio (an array, or a channel read by slices),
    a minute at a time: the same regions as faster-whisper's get_speech_timestamps."""
    probs, n_samples = speech_probabilities(chunks_of(audio))
    rules = VadRules(**asdict(vad), max_speech_duration_s=max_speech_s)
    return [(r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE) for r in speech_regions(probs, n_samples, rules)]


def with_noise_floor(samples: np.ndarray, level: float) -> np.ndarray:
    """Add a faint deterministic noise floor so that digital silence does not confuse the VAD."""
    if level <= 0:
        return samples
    rng = np.random.default_rng(len(samples))
    return (samples + rng.normal(0.0, level, size=samples.shape)).astype(np.float32)


WINDOW = 512  # samples per Silero window at 16 kHz
CONTEXT = 64  # samples of the previous window given with each window
BATCH_WINDOWS = 10_000  # windows per model call, as faster-whisper: part of what the state sees
BLOCK = WINDOW * BATCH_WINDOWS  # samples per model call


@dataclass(frozen=True)
class VadRules:
    """How regions are cut from speech probabilities (faster-whisper's VadOptions)."""

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech_duration_ms: int = 0
    max_speech_duration_s: float = float("inf")
    min_silence_duration_ms: int = 2000
    speech_pad_ms: int = 400


def speech_probabilities(chunks: Iterable[np.ndarray]) -> tuple[np.ndarray, int]:
    """Silero's speech probability of every 512-sample window of the stream, and its length in
    samples; the stream is padded as faster-whisper pads a whole channel."""
    from faster_whisper.vad import get_vad_model

    session = get_vad_model().session
    h = np.zeros((1, 1, 128), dtype="float32")
    c = np.zeros((1, 1, 128), dtype="float32")
    context = np.zeros(CONTEXT, dtype=np.float32)
    outputs: list[np.ndarray] = []
    total = 0
    last: np.ndarray | None = None

    def run(block: np.ndarray) -> None:
        nonlocal h, c, context
        windows = block.reshape(-1, WINDOW)
        contexts = np.concatenate([context[None, :], windows[:-1, -CONTEXT:]], axis=0)
        batch = np.concatenate([contexts, windows], axis=1)
        out, h, c = session.run(None, {"input": batch, "h": h, "c": c})
        outputs.append(np.asarray(out).reshape(-1))
        context = windows[-1, -CONTEXT:].copy()

    for block in blocks(chunks, BLOCK):
        if last is not None:
            run(last)
        last = block
        total += len(block)
    if last is None:
        last = np.zeros(0, np.float32)
    # faster-whisper pads the channel with (512 - n % 512) zeros: a whole window when n % 512 == 0
    padded = np.pad(last, (0, WINDOW - total % WINDOW))
    for start in range(0, len(padded), BLOCK):
        run(padded[start : start + BLOCK])
    return np.concatenate(outputs) if outputs else np.zeros(0, np.float32), total


def speech_regions(probs: np.ndarray, n_samples: int, rules: VadRules, sampling_rate: int = 16000) -> list[dict]:
    """Speech regions ``{"start", "end"}`` in samples, by faster-whisper's rules."""
    threshold = rules.threshold
    neg_threshold = rules.neg_threshold
    window_size_samples = WINDOW
    min_speech_samples = sampling_rate * rules.min_speech_duration_ms / 1000
    speech_pad_samples = sampling_rate * rules.speech_pad_ms / 1000
    max_speech_samples = sampling_rate * rules.max_speech_duration_s - window_size_samples - 2 * speech_pad_samples
    min_silence_samples = sampling_rate * rules.min_silence_duration_ms / 1000
    min_silence_samples_at_max_speech = sampling_rate * 98 / 1000
    audio_length_samples = n_samples

    triggered = False
    speeches: list[dict] = []
    current_speech: dict = {}
    if neg_threshold is None:
        neg_threshold = max(threshold - 0.15, 0.01)
    temp_end = 0  # a possible end of the region (some silence is tolerated)
    prev_end = next_start = 0  # where to cut when the region grows too long

    for i, speech_prob in enumerate(probs):
        if (speech_prob >= threshold) and temp_end:
            temp_end = 0
            if next_start < prev_end:
                next_start = window_size_samples * i

        if (speech_prob >= threshold) and not triggered:
            triggered = True
            current_speech["start"] = window_size_samples * i
            continue

        if triggered and (window_size_samples * i) - current_speech["start"] > max_speech_samples:
            if prev_end:
                current_speech["end"] = prev_end
                speeches.append(current_speech)
                current_speech = {}
                if next_start < prev_end:  # silence reached before, and still no speech
                    triggered = False
                else:
                    current_speech["start"] = next_start
                prev_end = next_start = temp_end = 0
            else:
                current_speech["end"] = window_size_samples * i
                speeches.append(current_speech)
                current_speech = {}
                prev_end = next_start = temp_end = 0
                triggered = False
                continue

        if (speech_prob < neg_threshold) and triggered:
            if not temp_end:
                temp_end = window_size_samples * i
            if (window_size_samples * i) - temp_end > min_silence_samples_at_max_speech:
                prev_end = temp_end
            if (window_size_samples * i) - temp_end < min_silence_samples:
                continue
            current_speech["end"] = temp_end
            if (current_speech["end"] - current_speech["start"]) > min_speech_samples:
                speeches.append(current_speech)
            current_speech = {}
            prev_end = next_start = temp_end = 0
            triggered = False
            continue

    if current_speech and (audio_length_samples - current_speech["start"]) > min_speech_samples:
        current_speech["end"] = audio_length_samples
        speeches.append(current_speech)

    for i, speech in enumerate(speeches):
        if i == 0:
            speech["start"] = int(max(0, speech["start"] - speech_pad_samples))
        if i != len(speeches) - 1:
            silence_duration = speeches[i + 1]["start"] - speech["end"]
            if silence_duration < 2 * speech_pad_samples:
                speech["end"] += int(silence_duration // 2)
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - silence_duration // 2))
            else:
                speech["end"] = int(min(audio_length_samples, speech["end"] + speech_pad_samples))
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - speech_pad_samples))
        else:
            speech["end"] = int(min(audio_length_samples, speech["end"] + speech_pad_samples))
    return speeches
