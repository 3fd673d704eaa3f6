"""``OUT/reasons/call_date=YYYY-MM-DD/part-0.parquet``: each call's reason (:data:`REASONS_FILE_SCHEMA`).

Partitioned by the call's date like the scores, so DuckDB reads a month as one dataset:

    select reason, count(*) from read_parquet('OUT/reasons/**/*.parquet', hive_partitioning=true) group by 1;

A day's reasons are regrouped whenever a run adds calls to that day (groups are per period).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import pyarrow as pa

from qa_pipeline.output.tables import PARTITION_FIELD, build_table, read_partitioned, write_partitioned
from qa_pipeline.records import CallReason

REASONS_DIR = Path("reasons")

REASONS_FILE_SCHEMA = pa.schema([
    pa.field("call_id", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),  # a pinned reason, a group's name (its top words), or 其他
    pa.field("score", pa.float64(), nullable=False),  # cosine to the pinned reason's closest example, or to the group's centre
    pa.field("pinned", pa.bool_(), nullable=False),  # one of the centre's own reasons (policy reasons.pinned), or 其他 beside them
    pa.field("request", pa.string(), nullable=False),  # the customer's words it was read from (raw, as transcribed)
    pa.field("request_at", pa.float64()),  # seconds
])
REASONS_SCHEMA = REASONS_FILE_SCHEMA.append(PARTITION_FIELD)


def write_reasons(out: Path, reasons: Sequence[CallReason], days: Mapping[str, date], replaces: Sequence[str] = ()) -> None:
    """Replace the rows of these calls (any day) with `reasons`, and remove those of `replaces`
    (calls that failed this time); `days`: each call's call_date."""
    rows = [{"call_id": r.call_id, "reason": r.reason, "score": r.score, "pinned": r.pinned, "request": r.request,
             "request_at": r.request_at, "call_date": days[r.call_id]} for r in reasons]
    table = build_table(rows, REASONS_SCHEMA)
    gone = pa.array([r.call_id for r in reasons] + list(replaces), pa.string())
    write_partitioned(table, Path(out) / REASONS_DIR, REASONS_FILE_SCHEMA, gone)


def read_reasons(out: Path) -> pa.Table:
    """Every day's reasons (REASONS_SCHEMA); empty when none were written."""
    root = Path(out) / REASONS_DIR
    return read_partitioned(root, REASONS_FILE_SCHEMA) if root.is_dir() else REASONS_SCHEMA.empty_table()
