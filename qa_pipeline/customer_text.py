"""The customer's turns as the sentence encoder reads them: clauses, one canonical batch per call.

A turn is cut into clauses at punctuation and at the spaces Whisper writes for pauses; clauses of
MIN_CHARS+ characters are compared, in the matcher's normal form with 您 folded to 你 (Whisper writes
either). All clauses of a call's customer turns are one canonical batch of the embedding cache
(meaning.cache), so a call's vectors are a pure function of its own words, and the mood and the
reason stages read the same vectors. A turn with no clause that long is read whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa_pipeline.records import CUSTOMER, CallTranscript
from qa_pipeline.scoring.normalize import normalize_text

CLAUSE = re.compile(r"[^，。！？；、,.!?;：:…\s]+")
MIN_CHARS = 3


def meaning_text(text: str) -> str:
    return normalize_text(text).replace("您", "你")


def clauses(text: str) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(t for t in (meaning_text(c) for c in CLAUSE.findall(text)) if len(t) >= MIN_CHARS))
    if found:
        return found
    whole = meaning_text(text)
    return (whole,) if whole else ()


@dataclass(frozen=True)
class CustomerClauses:
    """Each customer turn's clauses and their vectors (rows of `vectors`, turn after turn)."""

    rows: tuple[int, ...]  # index of each customer turn in transcript.utterances
    spans: tuple[tuple[int, int], ...]  # each turn's rows in `vectors` (start, stop)
    vectors: np.ndarray

    def of_turn(self, k: int) -> np.ndarray:
        a, b = self.spans[k]
        return self.vectors[a:b]


def customer_clauses(transcript: CallTranscript, embeddings) -> CustomerClauses:
    """`embeddings`: an EmbeddingCache (or anything with `vectors(texts)` and `encoder.dim`)."""
    rows = tuple(k for k, u in enumerate(transcript.utterances) if u.speaker == CUSTOMER)
    per_turn = [clauses(transcript.utterances[k].text) for k in rows]
    flat = [c for cs in per_turn for c in cs]
    vectors = embeddings.vectors(flat) if flat else np.zeros((0, embeddings.encoder.dim), np.float32)
    spans, at = [], 0
    for cs in per_turn:
        spans.append((at, at + len(cs)))
        at += len(cs)
    return CustomerClauses(rows, tuple(spans), vectors)


def unit_mean(vectors: Sequence[np.ndarray] | np.ndarray) -> np.ndarray | None:
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or not len(v):
        return None
    m = v.mean(axis=0)
    n = float(np.linalg.norm(m))
    return m / n if n > 0 else None
