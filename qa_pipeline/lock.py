"""One writer per output folder: ``OUT/.lock`` held with flock(2) while a command writes OUT.

The kernel drops a flock when its process dies, however it dies (SIGKILL included), so a crash
never leaves a stale lock behind. The file itself stays; its text (pid, host, since, command)
only serves to tell a second command who holds the folder.
"""

from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from qa_pipeline.errors import OutputError, OutputLocked

LOCK_FILE = ".lock"


@contextmanager
def output_lock(out: Path, command: str) -> Iterator[Path]:
    """Hold OUT/.lock for the duration; raise OutputLocked at once if another process holds it."""
    path = Path(out) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise OutputError(f"cannot write in {out}: {e.strerror or e}") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 400, 0).decode("utf-8", "replace").strip() or "another process"
            raise OutputLocked(
                f"{out} is being written by {holder}; wait for it to finish or choose another --out"
            ) from None
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"`{command}` (pid {os.getpid()} on {socket.gethostname()}, since {since})\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock
