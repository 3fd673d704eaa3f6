"""The output folder as the desk reads it: machine scores, call metadata, transcripts.

Read once and kept in memory; :meth:`OutFolder.refresh` reads again when a batch has rewritten the
tables since (compared by the files' size and modification time). Transcripts, the largest part,
are read on first use (or ahead of time in a thread by :meth:`OutFolder.preload`).
"""

from __future__ import annotations

import threading
from pathlib import Path

from qa_pipeline.batch.store import RUN_FILE, read_run_file
from qa_pipeline.errors import InputError
from qa_pipeline.output.tables import CALLS_DIR, ITEMS_DIR, TRANSCRIPTS_FILE, read_scores, read_transcripts
from qa_pipeline.records import CallMeta, CallScore, CallTranscript


def read_metas(out: Path) -> dict[str, CallMeta]:
    """Every call's metadata from OUT/run.json (empty when there is none)."""
    path = Path(out) / RUN_FILE
    if not path.is_file():
        return {}
    try:
        return {m.call_id: m for m in read_run_file(out)}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a readable run file: {e}") from e


class OutFolder:
    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self._lock = threading.RLock()
        self._tlock = threading.Lock()  # transcripts load apart: reading them must not hold up a queue page
        self._signature: tuple | None = None
        self._transcripts: dict[str, CallTranscript] | None = None
        self.generation = 0  # counts the reads of the tables
        self.scores: dict[str, CallScore] = {}
        self.metas: dict[str, CallMeta] = {}
        self.refresh()

    def _files(self) -> list[Path]:
        files = [self.out / RUN_FILE, self.out / TRANSCRIPTS_FILE]
        for folder in (self.out / CALLS_DIR, self.out / ITEMS_DIR):
            if folder.is_dir():
                files.extend(sorted(folder.glob("*/*.parquet")))
        return files

    def signature(self) -> tuple:
        sig = []
        for f in self._files():
            try:
                st = f.stat()
                sig.append((str(f), st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                sig.append((str(f), None, None))
        return tuple(sig)

    def refresh(self) -> bool:
        """Read the folder again if a batch changed it; True when it did. While a batch is still
        writing (the day files of the calls and of the items disagree), the last good read stays."""
        sig = self.signature()
        with self._lock:
            if sig == self._signature:
                return False
            try:
                scores = read_scores(self.out)
            except InputError:
                if self._signature is None:
                    raise  # the first read: nothing to fall back on
                return False
            self.scores = {s.call_id: s for s in scores}
            self.metas = read_metas(self.out)
            self._transcripts = None
            self._signature = sig
            self.generation += 1
            return True

    def transcripts(self) -> dict[str, CallTranscript]:
        with self._tlock:
            found, sig = self._transcripts, self._signature
            if found is None:
                try:
                    found = read_transcripts(self.out, words=False)  # the card shows utterances, not words
                except InputError:
                    found = {}
                with self._lock:
                    if self._signature == sig:  # else a batch rewrote OUT meanwhile: read again next time
                        self._transcripts = found
            return found

    def preload(self) -> threading.Thread:
        thread = threading.Thread(target=self.transcripts, name="qa-review-transcripts", daemon=True)
        thread.start()
        return thread
