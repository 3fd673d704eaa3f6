"""Calls that kill the process: a durable record of what was in flight, and crashes per call.

A call that makes the process die (out of memory, a segfault in a native library) cannot report
its own failure. So before the risky work on some calls (decoding and transcribing them), the batch
writes their ids to OUT/parts/in-flight.json, and removes the file when the work returns, either
way. A run that finds the file left over knows the previous run died with those calls in hand:
each of them gets a crash counted in OUT/parts/crashes.json (by call and audio content, so a new
recording starts again from nothing).

What the batch does with the count (see pipeline): a call with one crash is transcribed alone, so
that neighbours it was grouped with are not blamed again; a call that has crashed the process
twice is recorded as failed ("crashed the worker twice while transcribing") and not tried again
until its audio changes, so the next night does not die on it.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

IN_FLIGHT_FILE = "in-flight.json"
CRASHES_FILE = "crashes.json"
MAX_CRASHES = 2  # crashes of the process with a call in hand before it is failed for good
CRASHED_ERROR = "crashed the worker twice while transcribing (out of memory or a crash in the speech model); " \
                "not tried again until the recording changes"


@dataclass
class CrashBook:
    """Crashes per (call_id, audio digest), kept in ``folder`` (OUT/parts)."""

    folder: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # call_id -> {digest: crashes}

    @classmethod
    def open(cls, folder: Path) -> "CrashBook":
        """The book of ``folder``, with a crash added for every call the last run died with."""
        book = cls(Path(folder), _read(Path(folder) / CRASHES_FILE))
        left = _read(Path(folder) / IN_FLIGHT_FILE)
        if left:
            for call_id, digest in left.get("calls", []):
                per_call = book.counts.setdefault(call_id, {})
                per_call[digest] = per_call.get(digest, 0) + 1
            book._save()
            (Path(folder) / IN_FLIGHT_FILE).unlink(missing_ok=True)
        return book

    def crashes(self, call_id: str, digest: str | None) -> int:
        return self.counts.get(call_id, {}).get(digest or "", 0)

    def add(self, calls: Sequence[tuple[str, str | None]]) -> None:
        """Count a crash for each call (a worker died with them in hand, and the batch saw it)."""
        for call_id, digest in calls:
            per_call = self.counts.setdefault(call_id, {})
            per_call[digest or ""] = per_call.get(digest or "", 0) + 1
        self._save()

    @contextmanager
    def in_flight(self, calls: Sequence[tuple[str, str | None]]) -> Iterator[None]:
        """Mark ``calls`` (call_id, digest) as in the process's hands while the block runs."""
        if not calls:
            yield
            return
        _write(self.folder / IN_FLIGHT_FILE, {"pid": os.getpid(), "calls": [[c, d or ""] for c, d in calls]})
        try:
            yield
        finally:
            (self.folder / IN_FLIGHT_FILE).unlink(missing_ok=True)

    def _save(self) -> None:
        _write(self.folder / CRASHES_FILE, self.counts)


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(path: Path, data: dict) -> None:
    from qa_pipeline.files import write_atomic  # fsync + rename: the record survives the crash it is for

    write_atomic(path, json.dumps(data, ensure_ascii=False, sort_keys=True))
