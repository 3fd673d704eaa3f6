"""The machine-readable log of one run: ``OUT/logs/run-<UTC time>-<pid>.jsonl``.

One JSON object per line, flushed as written (a killed run keeps every line it finished):

- ``{"event": "start", ...}``: the command's settings and how many calls there are;
- ``{"event": "call", "call_id", "status", "error", "error_kind", "retry", "reused", "from_cache",
  "audio_s", "stages": {"hash": s, "decode": s, "transcribe": s, "tones": s, "speakers": s,
  "score": s}, "seconds", "processed_at", "redo"}``: one per call (`redo`: why an earlier run's part was not reused), in the order they finished;
- ``{"event": "end", "total", "ok", "failed", "reused", "audio_s", "wall_s", "failed_list"}``, or
  ``{"event": "abort", "error"}`` when the run stopped early.

Every object also has ``time`` (UTC, ISO 8601).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LOGS_DIR = "logs"


class RunLog:
    def __init__(self, out: Path) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.path = Path(out) / LOGS_DIR / f"run-{stamp}-{os.getpid()}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **fields}
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a run log (a line cut short by a crash is skipped)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records
