"""People's decisions as labels, for measuring the machine against them (``qa calibrate``).

    from qa_pipeline.review import read_labels
    for label in read_labels(OUT):          # one per (call, item) that a person decided
        label.call_id, label.item_id, label.result, label.user, label.role, label.decided_at
        label.machine_result, label.machine_points   # the machine verdict the person judged
        label.stale                                  # the machine has said otherwise since

Read from OUT/review.db only (no Parquet): "current machine verdict" is the latest one recorded
there, which `qa run`, `qa score` and `qa review` keep up to date.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qa_pipeline.review.db import open_if_exists
from qa_pipeline.final_verdicts import MACHINE, Event, fold_item, is_stale


@dataclass(frozen=True)
class Label:
    call_id: str
    item_id: str
    result: str  # the person's final verdict: pass | fail | na
    user: str  # who decided
    role: str  # inspector | supervisor
    decided_at: str  # ISO 8601 with offset
    action: str  # confirm | override | accept | reject
    machine_result: str | None  # the machine verdict the decision was made on
    machine_points: float | None
    current_machine_result: str | None  # the machine's latest verdict for the item
    stale: bool  # decided on an earlier machine verdict (current differs from judged)
    reason: str | None = None

    @property
    def agrees(self) -> bool:
        """Whether the person agreed with the machine verdict they judged."""
        return self.result == self.machine_result


def labels_from_events(events: list[Event]) -> list[Label]:
    """One label per (call, item) with a decision, from audit rows (pure; in first-decided order)."""
    by_id = {e.id: e for e in events}
    per_item: dict[tuple[str, str], list[Event]] = {}
    for e in sorted(events, key=lambda e: e.id):
        if e.item_id is not None:
            per_item.setdefault((e.call_id, e.item_id), []).append(e)
    labels = []
    for (call_id, item_id), rows in per_item.items():
        decision, _ = fold_item(rows, by_id)
        if decision is None:
            continue
        current = next((e for e in reversed(rows) if e.action == MACHINE), None)
        stale = current is not None and is_stale(decision, current.to_result or "", current.points or 0.0)
        labels.append(Label(call_id, item_id, decision.result, decision.actor, decision.role, decision.at,
                            decision.action, decision.judged_result, decision.judged_points,
                            current.to_result if current else None, stale, decision.reason))
    return labels


def read_labels(out: Path) -> list[Label]:
    """Every decided item in OUT as a :class:`Label`; empty when the desk was never opened there."""
    db = open_if_exists(Path(out))
    if db is None:
        return []
    try:
        return labels_from_events(db.events())
    finally:
        db.close()
