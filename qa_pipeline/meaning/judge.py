"""Judging by meaning: each clause of a call against an item's examples and near-misses.

A call's utterances are cut into clauses (at punctuation and pauses Whisper writes as spaces), and
each clause, with its neighbour, is one *unit*.  A unit counts for an item when its closest example
is at least the item's `threshold` similar and beats its closest near-miss by the item's `margin`:

    sim(unit, closest example) >= threshold   and   sim(example) - sim(closest near-miss) >= margin

Texts are compared in the matcher's normal form (simplified characters, no punctuation, digits),
with 您 folded to 你: Whisper writes 你 for 您 about half the time (bench/encoders.py measures the
forms).  The vectors of a call are one canonical batch of its own units' texts (EmbeddingCache), and
a rubric's examples another, so a verdict is a pure function of the call's transcript and the
rubric, whatever else the night holds and whether the cache was warm.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from qa_pipeline.meaning.cache import EmbeddingCache
from qa_pipeline.scoring.normalize import normalize_text, to_simplified
from qa_pipeline.scoring.rubric_records import Example, Meaning

@lru_cache(maxsize=1)
def _blas_limit():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().limit


def _one_blas_thread():
    """Similarities on one BLAS thread: a small product gains nothing from threads (on a busy machine
    it lost 70x to them), and one fixed summation order keeps them the same on any thread count."""
    return _blas_limit()(limits=1, user_api="blas")


CLAUSE = re.compile(r"[^，。！？；、,.!?;：:…\s]+")
MIN_CHARS = 3  # a shorter clause (好的, 嗯嗯) says too little to be judged by meaning
MAX_UNIT_CHARS = 40  # two clauses longer than this together are judged apart only


def meaning_text(text: str) -> str:
    return normalize_text(text).replace("您", "你")


@dataclass(frozen=True)
class Unit:
    """A clause (or two neighbouring clauses) of one utterance: offsets into its original text."""

    start: int
    end: int
    text: str  # meaning_text of text[start:end]


def units(text: str, norm: str | None = None, index: Sequence[int] | None = None) -> tuple[Unit, ...]:
    """The text's clauses and pairs of neighbouring clauses. `norm`, `index`: the text's normal form
    and its map back to the text (matching.prepare), when at hand: a clause's normal form is then
    cut out of it. Normalising changes nothing across a clause break (no numeral run, no OpenCC
    phrase holds a clause mark or a space); a text OpenCC converts is normalised clause by clause."""
    spans = [(m.start(), m.end()) for m in CLAUSE.finditer(text)]
    if norm is None or index is None or to_simplified(text) != text:
        def form(a: int, b: int) -> str:
            return meaning_text(text[a:b])
    else:
        def form(a: int, b: int) -> str:
            return norm[bisect_left(index, a):bisect_left(index, b)].replace("您", "你")
    out: dict[str, Unit] = {}
    for i, (a, b) in enumerate(spans):
        t = form(a, b)
        if len(t) >= MIN_CHARS:
            out.setdefault(f"{a}:{b}", Unit(a, b, t))
        if i + 1 < len(spans):
            c, d = spans[i + 1]
            pair = form(a, d)
            if len(pair) <= MAX_UNIT_CHARS and len(pair) >= MIN_CHARS and pair != t:
                out.setdefault(f"{a}:{d}", Unit(a, d, pair))
    return tuple(out.values())


def near_miss_texts(text: str) -> list[str]:
    """A near-miss stands for itself and for each of its clauses: a polite sentence's every part is
    polite (对不起，我们公司有规定不能报私人电话 protects the clause 我们公司有规定… on its own)."""
    whole = meaning_text(text)
    parts = [meaning_text(text[m.start():m.end()]) for m in CLAUSE.finditer(text)]
    return list(dict.fromkeys([whole] + [p for p in parts if len(p) >= MIN_CHARS]))


@dataclass(frozen=True)
class Closest:
    """A unit's closest example and closest near-miss under one item's meaning."""

    seg: int  # index of the utterance in the caller's list
    unit: Unit
    similarity: float  # to the closest example, rounded to 3 decimals (what the evidence shows and rules use)
    example: Example
    near_similarity: float  # to the closest near-miss (0 without near-misses)
    near_miss: Example | None

    @property
    def gap(self) -> float:
        return round(self.similarity - self.near_similarity, 3)

    def counts(self, m: Meaning) -> bool:
        return self.similarity >= m.threshold and self.gap >= m.margin

    def borderline(self, m: Meaning) -> bool:
        """Decided by meaning but within the review band of the threshold or the margin."""
        return self.similarity < m.threshold + m.review_band or self.gap < m.margin + m.review_band


class MeaningJudge:
    """The encoder's view of the rubrics in use: every meaning's example vectors, computed once."""

    def __init__(self, cache: EmbeddingCache) -> None:
        self.cache = cache
        self._sets: dict[int, tuple[Meaning, np.ndarray, np.ndarray | None, tuple[int, ...]]] = {}
        self._stacks: dict[tuple[int, ...], tuple[np.ndarray, dict[int, tuple[slice, slice | None]]]] = {}

    def vectors(self, meaning: Meaning) -> tuple[np.ndarray, np.ndarray | None]:
        """The examples' and near-misses' vectors: one canonical batch per meaning (its own texts)."""
        got = self._sets.get(id(meaning))
        if got is None or got[0] is not meaning:
            pos = [meaning_text(e.text) for e in meaning.examples]
            neg = [t for e in meaning.near_misses for t in near_miss_texts(e.text)]
            v = self.cache.vectors(pos + neg)
            got = (meaning, v[:len(pos)], v[len(pos):] if neg else None, tuple(
                n for n, e in enumerate(meaning.near_misses) for _ in near_miss_texts(e.text)))
            self._sets[id(meaning)] = got
        return got[1], got[2]

    def near_miss_of(self, meaning: Meaning, row: int):
        return meaning.near_misses[self._sets[id(meaning)][3][row]]

    def stack(self, meanings: Sequence[Meaning]) -> tuple[np.ndarray, dict[int, tuple[slice, slice | None]]]:
        """Every vector of `meanings` in one matrix, and where each meaning's examples and near-misses
        are in it: a call's similarities to all of a rubric's meanings are then one product."""
        key = tuple(id(m) for m in meanings)
        got = self._stacks.get(key)
        if got is None or any(self._sets.get(id(m), (None,))[0] is not m for m in meanings):
            parts, where, at = [], {}, 0
            for m in meanings:
                pos, neg = self.vectors(m)
                where[id(m)] = (slice(at, at + len(pos)), slice(at + len(pos), at + len(pos) + len(neg))
                                if neg is not None else None)
                parts += [pos] + ([neg] if neg is not None else [])
                at += len(pos) + (len(neg) if neg is not None else 0)
            got = (np.concatenate(parts) if parts else np.zeros((0, self.cache.encoder.dim), np.float32), where)
            self._stacks[key] = got
        return got

    def call(self, texts: Sequence[str], meanings: Sequence[Meaning] = (),
             normal: Sequence[tuple[str, Sequence[int]]] | None = None) -> CallMeaning:
        """`normal`: each text's normal form and map, where the caller has them (units)."""
        return CallMeaning(self, texts, meanings, normal)


class CallMeaning:
    """One call's units and their vectors (one canonical batch of all its units' texts)."""

    def __init__(self, judge: MeaningJudge, texts: Sequence[str], meanings: Sequence[Meaning] = (),
                 normal: Sequence[tuple[str, Sequence[int]]] | None = None) -> None:
        self.judge = judge
        self._meanings = tuple(meanings)  # the rubric's: their similarities come from one product
        self._sims: tuple[np.ndarray, dict[int, tuple[slice, slice | None]]] | None = None
        self.units = [units(t, *normal[n]) if normal is not None else units(t) for n, t in enumerate(texts)]
        flat = sorted({u.text for us in self.units for u in us})
        vectors = judge.cache.vectors(flat) if flat else np.zeros((0, judge.cache.encoder.dim), np.float32)
        self._row = {t: i for i, t in enumerate(flat)}
        self._vectors = vectors

    def closest(self, meaning: Meaning, segs: Sequence[int], *, counting: bool = False) -> list[Closest]:
        """Every unit of the given utterances with its closest example and near-miss, the most
        similar first (ties: earlier utterance, earlier clause); `counting`: only the units that
        count under `meaning` (Closest.counts)."""
        found = [(s, u) for s in segs for u in self.units[s]]
        if not found:
            return []
        rows = [self._row[u.text] for _, u in found]
        if any(m is meaning for m in self._meanings):
            if self._sims is None:
                stack, where = self.judge.stack(self._meanings)
                with _one_blas_thread():
                    self._sims = (self._vectors @ stack.T, where)
            all_sims, where = self._sims
            at_pos, at_neg = where[id(meaning)]
            sims = all_sims[rows, at_pos]
            near = all_sims[rows, at_neg] if at_neg is not None else None
        else:
            pos, neg = self.judge.vectors(meaning)
            v = self._vectors[rows]
            with _one_blas_thread():
                sims = v @ pos.T
                near = (v @ neg.T) if neg is not None else None
        best = sims.argmax(axis=1)
        near_at = near.argmax(axis=1) if near is not None else None
        if counting:  # rounding to 3 decimals moves a similarity by 0.0005 at most
            rows_kept = np.flatnonzero(sims[np.arange(len(found)), best] >= meaning.threshold - 0.001).tolist()
        else:
            rows_kept = range(len(found))
        out = []
        for k in rows_kept:
            s, u = found[k]
            n_at = int(near_at[k]) if near_at is not None else -1
            out.append(Closest(
                s, u, round(float(sims[k, best[k]]), 3), meaning.examples[int(best[k])],
                round(float(near[k, n_at]), 3) if near is not None else 0.0,
                self.judge.near_miss_of(meaning, n_at) if near is not None else None,
            ))  # fmt: skip
        if counting:
            out = [c for c in out if c.counts(meaning)]
        out.sort(key=lambda c: (-c.similarity, c.seg, c.unit.start))
        return out


_JUDGES: dict[tuple[str, str], MeaningJudge] = {}


def embeddings_dir(transcript_cache: Path | None = None) -> Path:
    """Where vectors are kept: beside the transcripts, in <transcript cache>/embeddings (default
    <cache root>/transcripts/embeddings), so a fresh transcript cache starts with cold vectors too."""
    from qa_pipeline.models import cache_root

    return Path(transcript_cache if transcript_cache is not None else cache_root() / "transcripts") / "embeddings"


def default_judge(encoder: str, root: Path | None = None) -> MeaningJudge:
    """The process's judge for `encoder`, its vectors kept under `root` (default: embeddings_dir())."""
    from qa_pipeline.meaning.encoder import load_encoder

    where = Path(root) if root is not None else embeddings_dir()
    key = (encoder, str(where))
    if key not in _JUDGES:
        _JUDGES[key] = MeaningJudge(EmbeddingCache(load_encoder(encoder), where))
    return _JUDGES[key]
