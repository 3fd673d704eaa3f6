"""Vectors of a set of texts, computed once: an SQLite file per encoder version beside the transcript cache.

    <transcript cache>/embeddings/<encoder version, as a file name>.sqlite   table batches(key, vectors)

The encoders batch texts for speed, and a text's vector moves by ~1e-7 with the texts batched
beside it (BLAS blocking).  So a set of texts — one call's utterances, one rubric's examples — is
always encoded as one canonical batch: its distinct texts, sorted.  Its vectors are then a pure
function of those texts, whatever else the night holds, and are stored under a digest of the
batch.  They are kept as float16 and *always* returned as stored, so a verdict never depends on
whether the cache was warm.  Several processes may share the file (WAL, a busy timeout, INSERT OR
IGNORE: two writers of the same batch write the same bytes).  A forked worker opens a connection of
its own: SQLite's must not cross a fork.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np

from qa_pipeline.meaning.encoder import SentenceEncoder


def batch_key(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(4, "big") + data)
    return digest.hexdigest()[:32]


_INHERITED: list[sqlite3.Connection] = []  # a forked worker's copies of its parent's connections
# Batches kept in memory beside the file: a call's batch is asked for again while it is scored and its
# mood read, seldom after; a night's every call kept would grow a worker by ~12 kB per call.
MEMORY_BATCHES = 256


class EmbeddingCache:
    """Vectors under one encoder; `root=None` keeps them in memory only (tests, one-off use)."""

    def __init__(self, encoder: SentenceEncoder, root: Path | None) -> None:
        self.encoder = encoder
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()  # all of them without a file (root=None)
        self._db: sqlite3.Connection | None = None
        self._path: Path | None = None
        self._pid = os.getpid()
        # One connection shared by the threads of a process (a Ray actor scores two calls at once).
        self._lock = threading.Lock()
        self._memory_lock = threading.Lock()
        if root is not None:
            root = Path(root)
            root.mkdir(parents=True, exist_ok=True)
            stem = re.sub(r"[^A-Za-z0-9._-]", "_", encoder.version)
            self._path = root / f"{stem}.sqlite"
            self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=60, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS batches (key TEXT PRIMARY KEY, vectors BLOB NOT NULL)")
        return db

    def _connection(self) -> sqlite3.Connection | None:
        self._own()
        return self._db

    def _own(self) -> None:
        """In a forked worker, this process's own connection and locks (the parent's connection is
        left alone, never used nor closed here; a lock another thread held at the fork stays held)."""
        if self._pid != os.getpid():
            if self._db is not None:
                _INHERITED.append(self._db)
                self._db = self._connect()
            self._pid, self._lock, self._memory_lock = os.getpid(), threading.Lock(), threading.Lock()

    def close(self) -> None:
        if self._db is not None and self._pid == os.getpid():
            self._db.close()
        self._db = None

    def _stored(self, key: str, n: int) -> np.ndarray | None:
        db = self._connection()
        if db is None:
            return None
        with self._lock:
            row = db.execute("SELECT vectors FROM batches WHERE key = ?", (key,)).fetchone()
        if row is None or len(row[0]) != n * self.encoder.dim * 2:
            return None
        return np.frombuffer(row[0], dtype=np.float16).reshape(n, self.encoder.dim).astype(np.float32)

    def _store(self, key: str, vectors: np.ndarray) -> None:
        db = self._connection()
        if db is not None:
            with self._lock:
                db.execute("INSERT OR IGNORE INTO batches (key, vectors) VALUES (?, ?)",
                                 (key, vectors.astype(np.float16).tobytes()))

    def _remembered(self, key: str) -> np.ndarray | None:
        self._own()
        with self._memory_lock:
            vectors = self._memory.get(key)
            if vectors is not None:
                self._memory.move_to_end(key)
            return vectors

    def _remember(self, key: str, vectors: np.ndarray) -> None:
        with self._memory_lock:
            self._memory[key] = vectors
            self._memory.move_to_end(key)
            if self._db is not None:  # the file keeps what memory lets go
                while len(self._memory) > MEMORY_BATCHES:
                    self._memory.popitem(last=False)

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 rows, one per text in order: the canonical batch of `texts`."""
        batch = sorted(set(texts))
        if not batch:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        key = batch_key(batch)
        vectors = self._remembered(key)
        if vectors is None:
            vectors = self._stored(key, len(batch))
        if vectors is None:
            vectors = self.encoder.encode(batch).astype(np.float16).astype(np.float32)
            self._store(key, vectors)
        self._remember(key, vectors)
        row = {text: i for i, text in enumerate(batch)}
        return vectors[[row[t] for t in texts]]
