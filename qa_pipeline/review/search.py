"""Search the night's transcripts by phrase: SQLite FTS5 over every kept utterance, masked.

The index is its own file, ``OUT/review-search.db`` (0600), not a table of ``OUT/review.db``:
it is derived data (rebuilt from ``OUT/transcripts`` whenever a batch rewrites them), it is some
times larger than the audit trail that backups of review.db carry, and building it takes seconds
that must not hold the write lock every save of a decision waits for. It is built into a temporary
file and renamed over the old one, so a search reads either the old index or the new one, never
half of one.

Chinese has no spaces, so the tokenizer is FTS5's ``trigram``: every run of three characters is
indexed and a phrase of three or more characters is found wherever it was said, inside any word
(measured against jieba-segmented text in bench/review.py: a QA lead types 不归我管, 稍等, 投诉,
and word segmentation cuts the night's text differently from the query, so it misses some). A
two-character term (工号, 投诉, 稍等: the commonest thing typed) is below what trigrams can look up:
a second FTS5 table holds every utterance as its overlapping character pairs (tokenizer
``unicode61``), so it is a token lookup too; only a single character (喂) is matched with LIKE, a
scan of the table. What is indexed is the card's masked text
(:func:`report.call_redactor`, over the whole call): a customer's number is never in a hit, and
cannot be searched for.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from qa_pipeline.output.report import call_redactor
from qa_pipeline.records import CallTranscript
from qa_pipeline.review.db import PRIVATE, private_file
from qa_pipeline.scoring.normalize import to_simplified

SEARCH_FILE = "review-search.db"
PAGE_SIZE = 20
MAX_TERMS = 8
MAX_QUERY = 100
INDEX_VERSION = "2"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE VIRTUAL TABLE utterances USING fts5(
    text, call_id UNINDEXED, day UNINDEXED, speaker UNINDEXED, start UNINDEXED, "end" UNINDEXED,
    tokenize = 'trigram'
);
CREATE VIRTUAL TABLE pairs USING fts5(grams, tokenize = 'unicode61');
"""


@dataclass(frozen=True)
class Hit:
    call_id: str
    day: str
    speaker: str  # agent | customer
    start: float
    end: float
    text: str  # masked


@dataclass(frozen=True)
class Hits:
    query: str
    terms: tuple[str, ...]
    hits: tuple[Hit, ...]
    total: int
    page: int  # 1-based
    pages: int
    seconds: float


def terms_of(query: str) -> tuple[str, ...]:
    """The phrases of a query as the index holds text: simplified, half-width, split on spaces."""
    text = to_simplified(unicodedata.normalize("NFKC", query or ""))[:MAX_QUERY]
    return tuple(dict.fromkeys(t for t in text.split() if t))[:MAX_TERMS]


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _pairs(text: str) -> str:
    """``text`` as its overlapping pairs of letters or characters, space-separated (the pairs table)."""
    return " ".join(text[k:k + 2] for k in range(len(text) - 1) if text[k].isalnum() and text[k + 1].isalnum())


def _quoted(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _where(terms: tuple[str, ...], day: str | None) -> tuple[str, list]:
    """SQL conditions: phrases of 3+ characters through the trigram index (MATCH), pairs through the
    pairs table, anything shorter (or a pair with punctuation) by LIKE."""
    long = [t for t in terms if len(t) >= 3]
    pairs = [t for t in terms if len(t) == 2 and t.isalnum()]
    short = [t for t in terms if t not in long and t not in pairs]
    clauses, args = [], []
    if long:
        clauses.append("utterances MATCH ?")
        args.append(" AND ".join(_quoted(t) for t in long))
    if pairs:
        clauses.append("rowid IN (SELECT rowid FROM pairs WHERE pairs MATCH ?)")
        args.append(" AND ".join(_quoted(t) for t in pairs))
    for t in short:
        clauses.append("text LIKE ? ESCAPE '\\'")
        args.append(_like(t))
    if day:
        clauses.append("day = ?")
        args.append(day)
    return " AND ".join(clauses), args


def signature_of(out: Path, files: Iterable[Path]) -> str:
    parts = [INDEX_VERSION]
    for f in files:
        try:
            st = (Path(out) / f).stat()
            parts.append(f"{f}:{st.st_mtime_ns}:{st.st_size}")
        except FileNotFoundError:
            parts.append(f"{f}:-")
    return "|".join(parts)


def build_index(path: Path, transcripts: Mapping[str, CallTranscript], days: Mapping[str, str], signature: str) -> None:
    """Write the index of ``transcripts`` (masked as the call card shows them) to ``path``, atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".qa-tmp-search-", suffix=".db", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, PRIVATE)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.executescript(SCHEMA)
            conn.execute("BEGIN")
            rowid = 0
            for call_id in sorted(transcripts):
                t = transcripts[call_id]
                mask = call_redactor(t)
                rows = []
                for k, u in enumerate(t.utterances):
                    if u.text:
                        rowid += 1
                        rows.append((rowid, mask.utterance(k), call_id, days.get(call_id, ""), u.speaker,
                                     float(u.start), float(u.end)))
                conn.executemany('INSERT INTO utterances (rowid, text, call_id, day, speaker, start, "end") '
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                conn.executemany("INSERT INTO pairs (rowid, grams) VALUES (?, ?)", [(r[0], _pairs(r[1])) for r in rows])
            conn.execute("INSERT INTO meta VALUES ('signature', ?)", (signature,))
            conn.execute("COMMIT")
            conn.execute("INSERT INTO utterances(utterances) VALUES ('optimize')")
            conn.execute("INSERT INTO pairs(pairs) VALUES ('optimize')")
        finally:
            conn.close()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SearchIndex:
    """OUT/review-search.db: built (again) in a thread when the transcripts change; searched read-only."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.path = self.out / SEARCH_FILE
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._built_for: str | None = None
        self.error: str | None = None
        self.build_seconds: float | None = None

    def stored_signature(self) -> str | None:
        if not self.path.is_file():
            return None
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'signature'").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            return None
        return row[0] if row else None

    def ready(self, signature: str) -> bool:
        if self._built_for == signature:
            return True
        if self.stored_signature() == signature:
            private_file(self.path)
            self._built_for = signature
            return True
        return False

    def ensure(self, signature: str, load: Callable[[], tuple]) -> threading.Thread | None:
        """Start building the index for ``signature`` unless it is there or under way; ``load()``
        gives (transcripts, days). Returns the building thread (None when the index is current)."""
        with self._lock:
            if self.ready(signature):
                return None
            if self._thread is not None and self._thread.is_alive():
                return self._thread

            def run() -> None:
                started = time.monotonic()
                try:
                    transcripts, days = load()
                    build_index(self.path, transcripts, days, signature)
                    self._built_for = signature
                    self.error = None
                except (OSError, sqlite3.Error) as e:
                    self.error = str(e)
                self.build_seconds = time.monotonic() - started

            self._thread = threading.Thread(target=run, name="qa-review-search-index", daemon=True)
            self._thread.start()
            return self._thread

    def search(self, query: str, *, page: int = 1, day: str | None = None, page_size: int = PAGE_SIZE) -> Hits:
        """One page of the utterances that hold every phrase of ``query``, in call and time order."""
        started = time.monotonic()
        terms = terms_of(query)
        if not terms:
            return Hits(query, (), (), 0, 1, 0, 0.0)
        where, args = _where(terms, day)
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            total = conn.execute(f"SELECT count(*) FROM utterances WHERE {where}", args).fetchone()[0]
            pages = max(1, -(-total // page_size))
            page = min(max(1, page), pages)
            rows = conn.execute(
                f'SELECT call_id, day, speaker, start, "end", text FROM utterances WHERE {where} '
                "ORDER BY day DESC, call_id, start LIMIT ? OFFSET ?", [*args, page_size, (page - 1) * page_size]
            ).fetchall()
        finally:
            conn.close()
        hits = tuple(Hit(c, d, s, float(a), float(b), t) for c, d, s, a, b, t in rows)
        return Hits(query, terms, hits, total, page, pages if total else 0, time.monotonic() - started)


def highlight(text: str, terms: Iterable[str]) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, is_a_hit) for a page to mark; case-insensitive like the search."""
    low = text.lower()
    marks = [False] * len(text)
    for term in terms:
        t = term.lower()
        start = low.find(t)
        while t and start >= 0:
            for k in range(start, start + len(t)):
                marks[k] = True
            start = low.find(t, start + 1)
    pieces: list[tuple[str, bool]] = []
    for ch, on in zip(text, marks):
        if pieces and pieces[-1][1] == on:
            pieces[-1] = (pieces[-1][0] + ch, on)
        else:
            pieces.append((ch, on))
    return pieces
