"""Audio as a stream of chunks: what lets a stage hold a few seconds of a call, not all of it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

CHUNK = 16000 * 60  # samples a stage takes at a time: a minute at 16 kHz, 3.8 MB of float32


def chunks_of(samples, size: int = CHUNK) -> Iterator[np.ndarray]:
    """A channel (an array, or anything read by slices, such as a FileChannel) as a stream."""
    for start in range(0, len(samples), size):
        yield samples[start : start + size]


def blocks(chunks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The stream re-cut into blocks of exactly ``size`` samples (the last one shorter)."""
    pending: list[np.ndarray] = []
    held = 0
    for chunk in chunks:
        pending.append(np.asarray(chunk, dtype=np.float32))
        held += len(chunk)
        while held >= size:
            joined = np.concatenate(pending)
            yield joined[:size]
            rest = joined[size:]
            pending, held = ([rest] if len(rest) else []), len(rest)
    if held:
        yield np.concatenate(pending)


def frame_blocks(chunks: Iterable[np.ndarray], frame: int, hop: int, *, rows: int = 4096) -> Iterator[np.ndarray]:
    """Frames of ``frame`` samples, ``hop`` apart, from the stream's start: the rows of
    ``samples[k * hop : k * hop + frame]`` for every k that fits, at most ``rows`` at a time."""
    held = np.zeros(0, np.float32)
    for chunk in chunks:
        held = np.concatenate([held, np.asarray(chunk, dtype=np.float32)])
        n = 0 if len(held) < frame else 1 + (len(held) - frame) // hop
        for first in range(0, n, rows):
            k = np.arange(first, min(n, first + rows))
            yield held[np.arange(frame)[None, :] + hop * k[:, None]]
        held = held[n * hop :]


class FileChannel:
    """One channel of a decoded call kept on disk as raw float32: slicing reads just that stretch
    (``np.fromfile`` at an offset, no memory map that would keep the pages in the process)."""

    def __init__(self, path: Path, n_samples: int) -> None:
        self.path = Path(path)
        self.n_samples = n_samples

    def __len__(self) -> int:
        return self.n_samples

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("a FileChannel is read by contiguous slices")
        start, stop, _step = index.indices(self.n_samples)
        if stop <= start:
            return np.zeros(0, np.float32)
        with open(self.path, "rb") as f:
            f.seek(start * 4)
            return np.fromfile(f, dtype=np.float32, count=stop - start)


NOISE_STEP = 16000 * 5  # samples between two saved states of a noise generator


class NoisyChannel:
    """``samples`` plus a faint Gaussian noise floor, read by slices without ever holding the
    whole channel: any slice equals the same slice of
    ``(samples + default_rng(len(samples)).normal(0, level, len(samples))).astype(float32)``.

    The generator's state is saved every NOISE_STEP samples, so a slice only replays the noise
    from the last saved state before it."""

    def __init__(self, samples, level: float) -> None:
        self.samples = samples
        self.level = level
        self.n_samples = len(samples)
        self._states: list[dict] = []
        rng = np.random.default_rng(self.n_samples)
        for start in range(0, self.n_samples, NOISE_STEP):
            self._states.append(rng.bit_generator.state)
            rng.normal(0.0, level, size=min(NOISE_STEP, self.n_samples - start))

    def __len__(self) -> int:
        return self.n_samples

    def noise(self, start: int, stop: int) -> np.ndarray:
        if stop <= start:
            return np.zeros(0, np.float64)
        k = start // NOISE_STEP
        rng = np.random.default_rng(0)
        rng.bit_generator.state = self._states[k]
        skip = start - k * NOISE_STEP
        if skip:
            rng.normal(0.0, self.level, size=skip)
        return rng.normal(0.0, self.level, size=stop - start)

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("a NoisyChannel is read by contiguous slices")
        start, stop, _step = index.indices(self.n_samples)
        stop = max(start, stop)
        return (np.asarray(self.samples[start:stop]) + self.noise(start, stop)).astype(np.float32)


def peak(samples) -> float:
    """The largest absolute sample of a channel (array, FileChannel …), a chunk at a time."""
    return max((float(np.max(np.abs(c), initial=0.0)) for c in chunks_of(samples)), default=0.0)
