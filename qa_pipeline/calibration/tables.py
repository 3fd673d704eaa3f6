"""`qa calibrate`'s Parquet tables under OUT/calibration/, explicit schemas (documented in the README).

- ``items.parquet`` (:data:`ITEM_STATS_SCHEMA`): one row per rubric item and one for all items
  together (``item_id = "*"``): labelled n, agreement, κ, fail precision/recall, needs_review share,
  the pass/fail/na confusion matrix as nine counts (``human_<x>_machine_<y>``).
- ``labels.parquet`` (:data:`LABELS_SCHEMA`): one row per label: the person's verdict, the machine's,
  and whether they could be compared (``status``).
- ``inspectors.parquet`` (:data:`RATERS_SCHEMA`): each pair of inspectors over the (call, item)s
  both judged, and each inspector against the machine (``second = "machine"``).
- with ``--rubric``: ``candidate_items.parquet`` (:data:`ITEM_STATS_SCHEMA`, the candidate's
  agreement) and ``candidate_changes.parquet`` (:data:`CHANGES_SCHEMA`, every verdict it changes).

Each run of ``qa calibrate`` replaces the folder's tables (a candidate's are removed by a run
without ``--rubric``), every file written atomically.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from qa_pipeline.calibration.stats import VERDICTS
from qa_pipeline.output.tables import atomic_write_table, build_table
from qa_pipeline.records import (CandidateComparison, Calibration, ItemCalibration, Label, RaterAgreement,
                                 VerdictChange)

CALIBRATION_DIR = Path("calibration")
ITEMS_FILE = CALIBRATION_DIR / "items.parquet"
LABELS_FILE = CALIBRATION_DIR / "labels.parquet"
RATERS_FILE = CALIBRATION_DIR / "inspectors.parquet"
CANDIDATE_ITEMS_FILE = CALIBRATION_DIR / "candidate_items.parquet"
CANDIDATE_CHANGES_FILE = CALIBRATION_DIR / "candidate_changes.parquet"

CONFUSION_COLUMNS = tuple(f"human_{h}_machine_{m}" for h in VERDICTS for m in VERDICTS)

ITEM_STATS_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.string(), nullable=False),  # "*" = every item together
        pa.field("item_name", pa.string(), nullable=False),
        pa.field("n", pa.int32(), nullable=False),  # labels compared
        pa.field("agree", pa.int32(), nullable=False),
        pa.field("agreement", pa.float64()),  # agree / n; null when n = 0
        pa.field("kappa", pa.float64()),  # Cohen's κ; null when undefined
        pa.field("fail_precision", pa.float64()),  # of the machine's fails, the share people called fail
        pa.field("fail_recall", pa.float64()),  # of people's fails, the share the machine called fail
        pa.field("n_review", pa.int32(), nullable=False),  # of the n, flagged needs_review by the machine
        pa.field("review_share", pa.float64()),
        *(pa.field(name, pa.int32(), nullable=False) for name in CONFUSION_COLUMNS),
        pa.field("scored_by", pa.string(), nullable=False),  # "out": OUT's verdicts; else the candidate rubric's path
        pa.field("labels_source", pa.string(), nullable=False),
        pa.field("since", pa.date32()),  # --since; null: every day
        pa.field("computed_at", pa.string(), nullable=False),  # ISO 8601
    ]
)

LABELS_SCHEMA = pa.schema(
    [
        pa.field("call_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("inspector", pa.string()),
        pa.field("role", pa.string()),
        pa.field("decided_at", pa.string()),
        pa.field("human", pa.string(), nullable=False),  # pass | fail | na
        pa.field("machine", pa.string()),  # null unless status = compared
        pa.field("agrees", pa.bool_()),  # null unless status = compared
        pa.field("needs_review", pa.bool_()),
        pa.field("status", pa.string(), nullable=False),  # compared | unknown_call | call_failed | unknown_item
        pa.field("call_date", pa.date32()),  # null unless compared
        pa.field("stale", pa.bool_(), nullable=False),  # decided on an earlier machine verdict (review desk)
        pa.field("source", pa.string(), nullable=False),  # file:line, or the database
    ]
)

RATERS_SCHEMA = pa.schema(
    [
        pa.field("first", pa.string(), nullable=False),
        pa.field("second", pa.string(), nullable=False),  # an inspector, or "machine"
        pa.field("n", pa.int32(), nullable=False),  # (call, item)s both judged
        pa.field("agree", pa.int32(), nullable=False),
        pa.field("agreement", pa.float64()),
        pa.field("kappa", pa.float64()),
    ]
)

CHANGES_SCHEMA = pa.schema(
    [
        pa.field("call_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("item_name", pa.string(), nullable=False),
        pa.field("before", pa.string()),  # OUT's verdict; null: the item is new in the candidate
        pa.field("after", pa.string()),  # the candidate's; null: the candidate has no such item
        pa.field("human", pa.list_(pa.field("item", pa.string(), nullable=False)), nullable=False),  # labels, if any
        pa.field("reason", pa.string(), nullable=False),  # the candidate's reason
        pa.field("evidence_text", pa.string()),
        pa.field("evidence_start", pa.float64()),
    ]
)


def _item_row(item: ItemCalibration, scored_by: str, c: Calibration, computed_at: str) -> dict[str, Any]:
    s = item.stats
    row = {
        "item_id": item.item_id, "item_name": item.item_name, "n": s.n, "agree": s.agree, "agreement": s.rate,
        "kappa": s.kappa, "fail_precision": s.fail_precision, "fail_recall": s.fail_recall,
        "n_review": item.n_review, "review_share": item.review_share,
        "scored_by": scored_by, "labels_source": c.source, "since": c.since, "computed_at": computed_at,
    }
    cells = [count for line in s.confusion for count in line]
    row.update(zip(CONFUSION_COLUMNS, cells))
    return row


def items_table(c: Calibration, computed_at: str, scored_by: str = "out") -> pa.Table:
    return build_table([_item_row(i, scored_by, c, computed_at) for i in (*c.items, c.overall)], ITEM_STATS_SCHEMA)


def labels_table(c: Calibration) -> pa.Table:
    rows = []
    for j in c.judged:
        rows.append({**_label_fields(j.label), "machine": j.machine, "agrees": j.agrees,
                     "needs_review": j.needs_review, "status": "compared", "call_date": j.call_date})
    for u in c.unmatched:
        rows.append({**_label_fields(u.label), "machine": None, "agrees": None, "needs_review": None,
                     "status": u.why, "call_date": None})
    return build_table(rows, LABELS_SCHEMA)


def _label_fields(label: Label) -> dict[str, Any]:
    return {"call_id": label.call_id, "item_id": label.item_id, "inspector": label.inspector, "role": label.role,
            "decided_at": label.decided_at, "human": label.result, "stale": label.stale, "source": label.where}


def raters_table(raters: Iterable[RaterAgreement]) -> pa.Table:
    return build_table([{"first": r.first, "second": r.second, "n": r.stats.n, "agree": r.stats.agree,
                    "agreement": r.stats.rate, "kappa": r.stats.kappa} for r in raters], RATERS_SCHEMA)


def changes_table(changes: Iterable[VerdictChange]) -> pa.Table:
    return build_table([{"call_id": c.call_id, "item_id": c.item_id, "item_name": c.item_name, "before": c.before,
                    "after": c.after, "human": list(c.human), "reason": c.reason, "evidence_text": c.evidence_text,
                    "evidence_start": c.evidence_start} for c in changes], CHANGES_SCHEMA)


def write_calibration(out: Path, c: Calibration, computed_at: str, candidate: CandidateComparison | None = None) -> Path:
    """Write OUT/calibration/*.parquet; returns the folder."""
    out = Path(out)
    atomic_write_table(items_table(c, computed_at), out / ITEMS_FILE)
    atomic_write_table(labels_table(c), out / LABELS_FILE)
    atomic_write_table(raters_table((*c.inspectors, *c.versus_machine)), out / RATERS_FILE)
    if candidate is not None:
        atomic_write_table(items_table(candidate.after, computed_at, scored_by=candidate.rubric_path),
                           out / CANDIDATE_ITEMS_FILE)
        atomic_write_table(changes_table(candidate.changes), out / CANDIDATE_CHANGES_FILE)
    else:
        for stale in (CANDIDATE_ITEMS_FILE, CANDIDATE_CHANGES_FILE):
            (out / stale).unlink(missing_ok=True)
    return out / CALIBRATION_DIR
