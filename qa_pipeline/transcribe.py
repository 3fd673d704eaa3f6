"""Speech to text with faster-whisper: one model loaded once, called per channel."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from qa_pipeline.decode import SAMPLE_RATE
from qa_pipeline.errors import CallFailed, ModelError
from qa_pipeline.models import resolve_model

logger = logging.getLogger("qa_pipeline")

DEFAULT_PROMPT = "以下是普通话客服电话录音的简体中文转写。"


@dataclass(frozen=True)
class VadSettings:
    """Silero VAD settings, tuned for telephone channels where one side is mostly silent."""

    threshold: float = 0.35
    min_speech_duration_ms: int = 200
    min_silence_duration_ms: int = 500
    speech_pad_ms: int = 300


@dataclass(frozen=True)
class TranscribeOptions:
    language: str = "zh"
    beam_size: int = 5
    initial_prompt: str | None = None  # a prompt made Whisper skip 20 s of speech on dev_03; OpenCC simplifies instead
    condition_on_previous_text: bool = False  # stops a misheard phrase from looping through a hold
    vad: VadSettings = field(default_factory=VadSettings)
    noise_floor: float = 3e-4  # about -70 dBFS; pure digital silence makes Silero drop speech
    split_gap_s: float = 1.0  # a pause this long between words starts a new utterance

    def cache_key(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RawWord:
    text: str
    start: float
    end: float
    prob: float


@dataclass(frozen=True)
class RawSegment:
    """One stretch of one channel's speech as Whisper wrote it (traditional characters and all)."""

    channel: int
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: tuple[RawWord, ...]


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except (ImportError, RuntimeError):
        return "cpu"


def pick_compute_type(device: str, compute_type: str | None) -> str:
    if compute_type:
        return compute_type
    return "float16" if device == "cuda" else "int8"


class Transcriber:
    """Owns one WhisperModel; `transcribe(channels)` returns the raw segments of every channel."""

    def __init__(
        self,
        model: str = "base",
        *,
        device: str = "auto",
        compute_type: str | None = None,
        options: TranscribeOptions | None = None,
        cpu_threads: int = 0,
    ) -> None:
        from faster_whisper import WhisperModel

        self.model_name = model
        self.device = pick_device(device)
        self.compute_type = pick_compute_type(self.device, compute_type)
        self.options = options or TranscribeOptions()
        location = resolve_model(model)
        try:
            self._model = WhisperModel(
                location,
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=cpu_threads or (os.cpu_count() or 1),
                local_files_only=bool(os.environ.get("HF_HUB_OFFLINE")),
            )
        except Exception as e:  # faster-whisper raises many kinds (hub, ctranslate2, OS)
            raise ModelError(f"cannot load model {model!r} on {self.device}/{self.compute_type}: {e}") from e

    def describe(self) -> str:
        return f"{self.model_name} ({self.device}, {self.compute_type})"

    def transcribe(self, channels: Sequence[np.ndarray]) -> list[RawSegment]:
        segments: list[RawSegment] = []
        for index, samples in enumerate(channels):
            segments.extend(self._transcribe_channel(index, samples))
        return sorted(segments, key=lambda s: (s.start, s.channel))

    def _transcribe_channel(self, channel: int, samples: np.ndarray) -> list[RawSegment]:
        opts = self.options
        audio = with_noise_floor(samples, opts.noise_floor)
        try:
            result, _info = self._model.transcribe(
                audio,
                language=opts.language,
                beam_size=opts.beam_size,
                initial_prompt=opts.initial_prompt,
                condition_on_previous_text=opts.condition_on_previous_text,
                vad_filter=True,
                vad_parameters=asdict(opts.vad),
                word_timestamps=True,
            )
            raw = list(result)  # transcribe() is lazy: the work happens here
        except RuntimeError as e:
            raise CallFailed(f"speech model failed on channel {channel}: {e}") from e
        return [
            RawSegment(
                channel=channel,
                start=float(s.start),
                end=float(s.end),
                text=s.text.strip(),
                avg_logprob=float(s.avg_logprob),
                no_speech_prob=float(s.no_speech_prob),
                compression_ratio=float(s.compression_ratio),
                words=tuple(RawWord(w.word, float(w.start), float(w.end), float(w.probability)) for w in (s.words or ())),
            )
            for s in raw
        ]


def with_noise_floor(samples: np.ndarray, level: float) -> np.ndarray:
    """Add a faint deterministic noise floor so that digital silence does not confuse the VAD."""
    if level <= 0:
        return samples
    rng = np.random.default_rng(len(samples))
    return (samples + rng.normal(0.0, level, size=samples.shape)).astype(np.float32)


def split_on_pauses(segment: RawSegment, gap_s: float) -> list[RawSegment]:
    """Cut a segment where its words pause for `gap_s` or more: Whisper often runs several
    turns of one channel (or a hold) into one segment, and the timeline needs them apart."""
    words = segment.words
    if len(words) < 2:
        return [segment]
    pieces: list[list[RawWord]] = [[words[0]]]
    for prev, word in zip(words, words[1:]):
        if word.start - prev.end >= gap_s:
            pieces.append([])
        pieces[-1].append(word)
    if len(pieces) == 1:
        return [segment]
    return [
        RawSegment(
            channel=segment.channel,
            start=piece[0].start,
            end=piece[-1].end,
            text="".join(w.text for w in piece).strip(),
            avg_logprob=segment.avg_logprob,
            no_speech_prob=segment.no_speech_prob,
            compression_ratio=segment.compression_ratio,
            words=tuple(piece),
        )
        for piece in pieces
    ]


def join_pieces(first: RawSegment, second: RawSegment) -> RawSegment:
    """One segment made of two consecutive pieces of the same channel."""
    return RawSegment(
        channel=first.channel,
        start=first.start,
        end=second.end,
        text=(first.text + second.text).strip(),
        avg_logprob=min(first.avg_logprob, second.avg_logprob),
        no_speech_prob=max(first.no_speech_prob, second.no_speech_prob),
        compression_ratio=max(first.compression_ratio, second.compression_ratio),
        words=first.words + second.words,
    )
