"""Decode any audio file PyAV reads into 16 kHz float32, one array per channel."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa_pipeline.errors import AudioMissing, DecodeError
from qa_pipeline.files import file_digest

logger = logging.getLogger("qa_pipeline")

SAMPLE_RATE = 16000
DEFAULT_MAX_DURATION_S = 4 * 3600.0
SILENCE_PEAK = 1e-3  # about -60 dBFS: below this everywhere, a recording holds nothing to hear


@dataclass(frozen=True)
class DecodedAudio:
    # one float32 channel per source channel, all the same length: an array in memory, or a
    # stream.FileChannel on disk (decode_to_files); both are read by slices and len()
    channels: tuple
    sample_rate: int
    source_rate: int
    source_codec: str

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def duration_s(self) -> float:
        return len(self.channels[0]) / self.sample_rate if self.channels else 0.0


def decode(path: Path, *, max_duration_s: float = DEFAULT_MAX_DURATION_S) -> DecodedAudio:
    """Read `path` and return its channels at 16 kHz; raise DecodeError for anything unusable.

    The channel count is read from the container: faster-whisper's decode_audio(split_stereo=True)
    would return two identical halves for a mono file.
    """
    chunks: list[np.ndarray] = []
    info = _decode(path, max_duration_s, chunks.append)
    samples = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    return DecodedAudio(
        channels=tuple(np.ascontiguousarray(samples[c]) for c in range(samples.shape[0])),
        sample_rate=SAMPLE_RATE,
        source_rate=info.source_rate,
        source_codec=info.codec,
    )


def decode_to_files(path: Path, folder: Path, *, max_duration_s: float = DEFAULT_MAX_DURATION_S) -> DecodedAudio:
    """:func:`decode`, but each channel goes to a raw float32 file in ``folder`` as it is decoded
    and comes back as a :class:`~qa_pipeline.audio.stream.FileChannel`: a 4-hour call never lies in
    memory (it would take 1.8 GB at 16 kHz). The caller removes ``folder``'s files."""
    from qa_pipeline.audio.stream import FileChannel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files: list = []
    counts: list[int] = []

    def write(chunk: np.ndarray) -> None:
        if not files:
            files.extend(open(folder / f"channel-{c}.f32", "wb") for c in range(chunk.shape[0]))
            counts.extend(0 for _ in range(chunk.shape[0]))
        for c, f in enumerate(files):
            np.ascontiguousarray(chunk[c], dtype=np.float32).tofile(f)
            counts[c] += chunk.shape[1]

    try:
        info = _decode(path, max_duration_s, write)
    finally:
        for f in files:
            f.close()
    return DecodedAudio(
        channels=tuple(FileChannel(folder / f"channel-{c}.f32", n) for c, n in enumerate(counts)),
        sample_rate=SAMPLE_RATE,
        source_rate=info.source_rate,
        source_codec=info.codec,
    )


@dataclass(frozen=True)
class _SourceInfo:
    source_rate: int
    codec: str


def _decode(path: Path, max_duration_s: float, emit) -> _SourceInfo:
    """Decode ``path`` to 16 kHz, handing ``emit`` one (channels, samples) float32 array after
    another; DecodeError (or AudioMissing) for anything unusable."""
    import av  # heavy: keep `qa --help` fast

    path = Path(path)
    size = check_readable(path)
    if size == 0:
        raise DecodeError(f"audio file is empty (0 bytes): {path.name}")
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except FileNotFoundError as e:
        raise AudioMissing(f"audio file not found: {path}") from e
    except PermissionError as e:
        raise AudioMissing(f"cannot read {path}: permission denied") from e
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise DecodeError(f"not a readable audio file: {path.name} ({_short(e)})") from e
    with container:
        if not container.streams.audio:
            raise DecodeError(f"no audio stream in {path.name}")
        stream = container.streams.audio[0]
        if stream.codec_context is None:  # a codec this FFmpeg build does not know
            tag = getattr(stream, "codec_tag", None) or "unknown"
            raise DecodeError(f"cannot decode {path.name}: unsupported audio codec ({tag})")
        n_channels = stream.codec_context.channels
        if n_channels not in (1, 2):
            raise DecodeError(f"{path.name} has {n_channels} channels; only mono and stereo calls are supported")
        if container.duration is not None and container.duration / 1e6 > max_duration_s:
            raise DecodeError(
                f"{path.name} is {container.duration / 1e6 / 3600:.1f} h long, over the limit of "
                f"{max_duration_s / 3600:.1f} h (--max-duration)"
            )
        layout = "mono" if n_channels == 1 else "stereo"
        resampler = av.audio.resampler.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
        n_samples = 0
        try:
            for frame in container.decode(stream):
                frame.pts = None
                for out in resampler.resample(frame):
                    emit(out.to_ndarray())
                    n_samples += out.samples
                if n_samples > max_duration_s * SAMPLE_RATE:
                    raise DecodeError(f"{path.name} decodes to more than {max_duration_s / 3600:.1f} h (--max-duration)")
            for out in resampler.resample(None):
                emit(out.to_ndarray())
                n_samples += out.samples
        except av.FFmpegError as e:
            if not n_samples:
                raise DecodeError(f"cannot decode {path.name}: {_short(e)}") from e
            logger.warning("%s: decoding stopped early (%s); keeping %.1f s", path.name, _short(e), n_samples / SAMPLE_RATE)
        codec = stream.codec_context.name
        source_rate = stream.rate or SAMPLE_RATE
    if not n_samples:
        raise DecodeError(f"no audio samples in {path.name}")
    if n_samples < SAMPLE_RATE // 10:
        raise DecodeError(f"{path.name} holds less than 0.1 s of audio")
    return _SourceInfo(int(source_rate), codec)


def check_readable(path: Path) -> int:
    """The size of `path` if it is a regular file we may open; AudioMissing otherwise.

    A FIFO or device named like audio would block or never end, and a folder is not a call.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError as e:
        raise AudioMissing(f"audio file not found: {path}") from e
    except OSError as e:
        raise AudioMissing(f"cannot read {path}: {e.strerror or e}") from e
    if stat.S_ISDIR(info.st_mode):
        raise AudioMissing(f"cannot read {path}: it is a folder, not an audio file")
    if not stat.S_ISREG(info.st_mode):
        raise AudioMissing(f"cannot read {path}: not a regular file")
    return info.st_size


def audio_digest(path: Path) -> str:
    """The content hash of a call's audio; AudioMissing when it is gone or cannot be read."""
    check_readable(path)
    try:
        return file_digest(path)
    except FileNotFoundError as e:
        raise AudioMissing(f"audio file not found: {path}") from e
    except OSError as e:
        raise AudioMissing(f"cannot read {path}: {e.strerror or e}") from e


def is_silent(audio: DecodedAudio, peak_below: float = SILENCE_PEAK) -> bool:
    """True when no channel ever rises above `peak_below` (default about -60 dBFS)."""
    from qa_pipeline.audio.stream import peak

    return all(peak(ch) < peak_below for ch in audio.channels)


def _short(e: BaseException) -> str:
    return str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
