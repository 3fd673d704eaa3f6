"""Calls that kill the process: a durable record of what was in flight, and crashes per call.

A call that makes the process die (out of memory, a segfault in a native library) cannot report
its own failure. So before the risky work on some calls (decoding and transcribing them), the batch
writes their ids to OUT/parts/in-flight.json, and removes the file when the work returns, either
way (a stop by SIGINT, SIGTERM or SIGHUP included: that is the batch stopping, not a call). A run
that finds the file left over knows the previous run died with those calls in hand:

- with one call alone in hand, the death is that call's: a crash is counted for it in
  OUT/parts/crashes.json (by call and audio content, so a new recording starts again from nothing);
- with several in hand, nobody can tell which one it was (or whether an operator, a reboot or the
  OOM killer took the whole batch down): no crash is counted, each of them is only marked to be
  worked on alone from now on, so that the next death with it in hand is its own.

A call that has crashed the process twice, alone each time, is recorded as failed ("crashed the
worker twice while transcribing") and not tried again until its audio changes or `qa run
--retry-failed`, so the next night does not die on it. Killing a whole batch twice therefore fails
no healthy call: the first kill only marks the calls in hand, the second counts at most one crash.
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
BOOK_FORMAT = 2  # 2: {"format", "crashes", "alone"}; 1 (no "format"): the crashes alone
MAX_CRASHES = 2  # crashes of the process with a call alone in hand before it is failed for good
CRASHED_ERROR = "crashed the worker twice while transcribing (out of memory or a crash in the speech model); " \
                "not tried again until the recording changes (or `qa run --retry-failed`)"


@dataclass
class CrashBook:
    """Crashes per (call_id, audio digest), and the calls to work on alone, kept in ``folder`` (OUT/parts)."""

    folder: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # call_id -> {digest: crashes}
    suspects: dict[str, list[str]] = field(default_factory=dict)  # call_id -> digests in hand at a death among others

    @classmethod
    def open(cls, folder: Path) -> "CrashBook":
        """The book of ``folder``, with what the last run died with (if it died) taken into account."""
        stored = _read(Path(folder) / CRASHES_FILE)
        if stored.get("format") == BOOK_FORMAT:
            book = cls(Path(folder), dict(stored.get("crashes") or {}), dict(stored.get("alone") or {}))
        else:
            book = cls(Path(folder), stored)
        left = _read(Path(folder) / IN_FLIGHT_FILE)
        if left:
            book.died_with([(call_id, digest) for call_id, digest in left.get("calls", [])])
            (Path(folder) / IN_FLIGHT_FILE).unlink(missing_ok=True)
        return book

    def crashes(self, call_id: str, digest: str | None) -> int:
        return self.counts.get(call_id, {}).get(digest or "", 0)

    def alone(self, call_id: str, digest: str | None) -> bool:
        """Whether the call must be worked on with nothing else in hand (it was in hand at a death)."""
        return self.crashes(call_id, digest) > 0 or (digest or "") in self.suspects.get(call_id, ())

    def died_with(self, calls: Sequence[tuple[str, str | None]]) -> None:
        """A process (this batch's, or a worker the batch saw die) died with ``calls`` in hand: a
        crash for the call when it was alone, else each of them marked to go alone."""
        if not calls:
            return
        if len(calls) == 1:
            call_id, digest = calls[0]
            per_call = self.counts.setdefault(call_id, {})
            per_call[digest or ""] = per_call.get(digest or "", 0) + 1
        else:
            for call_id, digest in calls:
                marked = self.suspects.setdefault(call_id, [])
                if (digest or "") not in marked:
                    marked.append(digest or "")
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
        _write(self.folder / CRASHES_FILE, {"format": BOOK_FORMAT, "crashes": self.counts, "alone": self.suspects})


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(path: Path, data: dict) -> None:
    from qa_pipeline.files import write_atomic  # fsync + rename: the record survives the crash it is for

    write_atomic(path, json.dumps(data, sort_keys=True))
