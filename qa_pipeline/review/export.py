"""What the batch writes about reviews: final verdicts for its tables and reports, and the audit
trail as ``OUT/reviews/reviews.parquet`` (:data:`REVIEWS_SCHEMA`, one row per audit row, in order).
:data:`DESK_REVIEWS` is what the CLI hands the batch (``final_verdicts.Reviews``): the desk's
decisions and the trust the labels in OUT give.

The batch never creates the review database: until someone opens the desk in OUT, every final
verdict is the machine's and there is no audit trail to export.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import pyarrow as pa

from qa_pipeline.calibration.nightly import night_trust
from qa_pipeline.final_verdicts import Event, FinalCall, final_calls
from qa_pipeline.records import CallScore, ItemTrust
from qa_pipeline.review.db import open_if_exists

REVIEWS_FILE = Path("reviews") / "reviews.parquet"

REVIEWS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),  # order of the trail
        pa.field("at", pa.string(), nullable=False),  # ISO 8601 with offset
        pa.field("actor", pa.string(), nullable=False),  # user name, or "machine"
        pa.field("role", pa.string(), nullable=False),  # inspector | supervisor | agent | manager | machine
        pa.field("action", pa.string(), nullable=False),  # machine | confirm | override | dispute | accept | reject | escalate | note | reviewed | acknowledge
        pa.field("call_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string()),  # null for note / reviewed
        pa.field("from_result", pa.string()),
        pa.field("to_result", pa.string()),
        pa.field("points", pa.float64()),  # machine rows: the machine's points
        pa.field("reason", pa.string()),
        pa.field("basis_id", pa.int64()),  # the machine row a decision or dispute judged
        pa.field("ref_id", pa.int64()),  # accept / reject: the dispute (一审) or escalation (二审) answered; escalate: the dispute
    ]
)


def events_table(events: Sequence[Event]) -> pa.Table:
    columns = {f.name: [getattr(e, f.name) for e in events] for f in REVIEWS_SCHEMA}
    return pa.Table.from_pydict(columns, schema=REVIEWS_SCHEMA)


def write_reviews(out: Path, events: Sequence[Event]) -> Path:
    from qa_pipeline.output.tables import atomic_write_table

    path = Path(out) / REVIEWS_FILE
    atomic_write_table(events_table(events), path)
    return path


def batch_finals(out: Path, scores: Sequence[CallScore], *, export: bool = True,
                 untrusted: Collection[str] = frozenset()) -> dict[str, FinalCall]:
    """Final verdicts of ``scores`` for the batch's outputs. When OUT has a review database, the
    machine verdicts are recorded there first (so decisions on changed verdicts show as stale) and,
    with ``export``, the audit trail is written to OUT/reviews/reviews.parquet; otherwise every
    final verdict is the machine's, except that fails of ``untrusted`` items are held for a person."""
    db = open_if_exists(Path(out))
    if db is None:
        return final_calls(scores, (), untrusted)
    try:
        db.record_machine(scores)
        events = db.events()
    finally:
        db.close()
    if export:
        write_reviews(out, events)
    return final_calls(scores, events, untrusted)


class DeskReviews:
    """:class:`qa_pipeline.final_verdicts.Reviews` from OUT/review.db and the labels in OUT."""

    def trust(self, out: Path, latest: Sequence[CallScore]) -> Mapping[str, ItemTrust]:
        return night_trust(out, latest)

    def finals(self, out: Path, scores: Sequence[CallScore], *, export: bool = True,
               untrusted: Collection[str] = frozenset()) -> dict[str, FinalCall]:
        return batch_finals(out, scores, export=export, untrusted=untrusted)


DESK_REVIEWS = DeskReviews()
