"""Blind double review (背靠背双人复核): a supervisor puts a sample of calls to two inspectors; each
judges every item of each call alone, and neither sees the other's verdicts (nor their comments)
until both have handed in theirs. ``qa calibrate`` then reports how often the two agree (Cohen's
κ) beside how often each agrees with the machine.

The verdicts are kept in their own tables of OUT/review.db (``blind_reviews``, ``blind_verdicts``,
append-only), not in the audit trail: they measure people, they do not decide the call (its final
verdict is still the queue's confirm / override), and the trail is readable by every inspector.
While a blind review is open for someone, the call's ordinary card is not shown to them (it
would show the machine's verdicts and other people's decisions): they are sent to the blind form,
which shows the recording, the transcript and the items, without any verdict. The sample is drawn
from the day's calls that nobody has reviewed yet, so there is no decision to see either.

One hand-in per inspector and call: all items at once, final once written.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from qa_pipeline.final_verdicts import UNREVIEWED, FinalCall
from qa_pipeline.records import FAIL, NA, PASS, BlindPair
from qa_pipeline.review.actions import Refused
from qa_pipeline.review.db import ReviewDB, now, open_if_exists

RESULTS = (PASS, FAIL, NA)
MAX_SAMPLE = 50
MAX_REASON = 500


class BlindError(Refused):
    """A blind review that cannot be made or handed in; str() is the line for the page."""


@dataclass(frozen=True)
class Verdict:
    actor: str
    item_id: str
    result: str
    reason: str | None
    at: str


@dataclass(frozen=True)
class BlindReview:
    id: int
    call_id: str
    first: str
    second: str
    assigned_by: str
    assigned_at: str
    verdicts: tuple[Verdict, ...] = ()

    def of(self, name: str) -> dict[str, Verdict]:
        return {v.item_id: v for v in self.verdicts if v.actor == name}

    def handed_in(self, name: str) -> bool:
        return any(v.actor == name for v in self.verdicts)

    @property
    def revealed(self) -> bool:
        """Both have handed in: now each (and the readers of the desk) may see both."""
        return self.handed_in(self.first) and self.handed_in(self.second)

    def involves(self, name: str) -> bool:
        return name in (self.first, self.second)

    def waiting_for(self, name: str) -> bool:
        return self.involves(name) and not self.handed_in(name)

    def other(self, name: str) -> str:
        return self.second if name == self.first else self.first

    def visible_to(self, name: str) -> tuple[Verdict, ...]:
        """The verdicts ``name`` may see: all once revealed, else only their own."""
        return self.verdicts if self.revealed else tuple(v for v in self.verdicts if v.actor == name)


def reviews(db: ReviewDB, call_id: str | None = None) -> list[BlindReview]:
    """Every blind review (of one call), oldest first, with its verdicts."""
    conn = db.conn
    if call_id is None:
        rows = conn.execute("SELECT id, call_id, first, second, assigned_by, assigned_at FROM blind_reviews ORDER BY id")
    else:
        rows = conn.execute("SELECT id, call_id, first, second, assigned_by, assigned_at FROM blind_reviews "
                            "WHERE call_id = ? ORDER BY id", (call_id,))
    found = [BlindReview(*r) for r in rows]
    if not found:
        return []
    verdicts: dict[int, list[Verdict]] = {}
    ids = [r.id for r in found]
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        for rid, actor, item, result, reason, at in conn.execute(
                f"SELECT review_id, actor, item_id, result, reason, at FROM blind_verdicts WHERE review_id IN "
                f"({', '.join('?' for _ in part)}) ORDER BY id", part):
            verdicts.setdefault(rid, []).append(Verdict(actor, item, result, reason, at))
    return [BlindReview(r.id, r.call_id, r.first, r.second, r.assigned_by, r.assigned_at,
                        tuple(verdicts.get(r.id, ()))) for r in found]


def review(db: ReviewDB, review_id: int) -> BlindReview | None:
    row = db.conn.execute("SELECT call_id FROM blind_reviews WHERE id = ?", (review_id,)).fetchone()
    if row is None:
        return None
    return next((r for r in reviews(db, row[0]) if r.id == review_id), None)


def candidates(finals: Iterable[FinalCall], day_of: Mapping[str, str], day: str, first: str, second: str,
               taken: Iterable[BlindReview]) -> list[str]:
    """The calls of ``day`` a blind review may take: scored, nobody has reviewed them, and not
    already put to one of the two."""
    busy = {r.call_id for r in taken if r.involves(first) or r.involves(second)}
    return sorted(f.call_id for f in finals
                  if f.machine.status == "ok" and f.items and f.review_state == UNREVIEWED
                  and day_of.get(f.call_id) == day and f.call_id not in busy)


def assign(db: ReviewDB, *, by: str, first: str, second: str, calls: Sequence[str], n: int,
           rng: random.Random | None = None) -> list[int]:
    """Put ``n`` of ``calls`` (drawn at random) to ``first`` and ``second``; returns the new ids."""
    if first == second:
        raise BlindError("请选择两位不同的质检员")
    if not 1 <= n <= MAX_SAMPLE:
        raise BlindError(f"抽样数量须在 1 到 {MAX_SAMPLE} 之间")
    if not calls:
        raise BlindError("这一天没有可抽样的通话（均已有人复核，或已分配给这两位）", 409)
    chosen = sorted((rng or random.SystemRandom()).sample(list(calls), min(n, len(calls))))
    stamp = now()
    ids = []
    with db.write() as conn:
        for call_id in chosen:
            cur = conn.execute("INSERT INTO blind_reviews (call_id, first, second, assigned_by, assigned_at) "
                               "VALUES (?, ?, ?, ?, ?)", (call_id, first, second, by, stamp))
            ids.append(cur.lastrowid)
    return ids


def hand_in(db: ReviewDB, review_id: int, actor: str, verdicts: Mapping[str, tuple[str, str | None]],
            item_ids: Sequence[str]) -> None:
    """Record ``actor``'s verdicts (item_id → (result, reason)) on every item of the call, at once."""
    with db.write() as conn:
        row = conn.execute("SELECT first, second FROM blind_reviews WHERE id = ?", (review_id,)).fetchone()
        if row is None or actor not in row:
            raise BlindError("没有分配给您的这项双盲复核", 404)
        if conn.execute("SELECT 1 FROM blind_verdicts WHERE review_id = ? AND actor = ?", (review_id, actor)).fetchone():
            raise BlindError("您已提交过这通电话的双盲复核结论，不能修改", 409)
        missing = [i for i in item_ids if verdicts.get(i, ("", None))[0] not in RESULTS]
        if missing:
            raise BlindError(f"请为每个评分项选择结论（还有 {len(missing)} 项未选）")
        stamp = now()
        for item_id in item_ids:
            result, reason = verdicts[item_id]
            text = (reason or "").strip()[:MAX_REASON] or None
            conn.execute("INSERT INTO blind_verdicts (review_id, actor, item_id, result, reason, at) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (review_id, actor, item_id, result, text, stamp))


def pairs_of(found: Iterable[BlindReview]) -> list[BlindPair]:
    """One pair per item of every revealed review: the two verdicts side by side."""
    out = []
    for r in found:
        if not r.revealed:
            continue
        a, b = r.of(r.first), r.of(r.second)
        for item_id in a:
            if item_id in b:
                out.append(BlindPair(r.call_id, item_id, r.first, a[item_id].result, r.second, b[item_id].result))
    return out


def read_blind_pairs(out) -> list[BlindPair]:
    """Every revealed blind verdict pair in OUT/review.db; empty when the desk was never opened there."""
    db = open_if_exists(out)
    if db is None:
        return []
    try:
        return pairs_of(reviews(db))
    finally:
        db.close()
