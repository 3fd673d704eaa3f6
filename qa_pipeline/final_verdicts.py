"""Final verdicts: the machine's verdicts with people's decisions and trust applied, scored by the
rubric's rules.

:func:`final_call` is the one place where a call's final item results, score, pass/fail and
critical flag are worked out; the review desk, `qa run`, `qa score`, calibration and the static
reports all call it. It is a pure function of the machine's :class:`CallScore`, the call's rows of
the audit trail (:class:`Event`) and the items not trusted. This module sits below the batch, the
desk and calibration and imports none of them: the batch is handed a :class:`Reviews` (the desk's
reads OUT/review.db and OUT's labels; the CLI passes it) instead of importing the desk.

Rules, per item (events taken in the order they were written):

- ``confirm`` / ``override`` by an inspector or supervisor sets the item's decision (the latest
  one wins); ``confirm`` keeps the machine's verdict, ``override`` sets pass, fail or n/a.
- ``dispute`` by the agent opens a dispute (申诉, first level, 一审); ``accept`` (the verdict
  changes to the resolver's result) or ``reject`` (it stays) closes it, and the resolution is the
  item's decision. ``escalate`` by the agent reopens it once at the second level (二审); the
  second level's ``accept`` / ``reject`` is final. An ``accept`` / ``reject`` row's ``ref_id`` is
  the row it answers (the dispute, or the escalation).
- ``acknowledge`` (签收) by the agent: they have seen the call's evaluation. It holds until the
  evaluation changes (a machine row, a decision or a "reviewed" mark after it).
- A decision is tied to the machine verdict it judged (its ``basis_id`` machine row). When the
  machine's current verdict differs (another rubric or model), the decision still stands but is
  ``stale``: shown as "decided on an earlier verdict", and the item goes back in the queue.
- Points: the same result as the machine keeps the machine's points (a forbidden-phrase
  deduction stays); pass otherwise earns the item's full points, fail and n/a none. Whether a
  failed item is critical is the machine's record of it (the rubric's flag, or a critical
  forbidden phrase heard). The call's score, pass/fail and critical flag then follow
  :func:`qa_pipeline.scoring.score.call_outcome`, exactly as for the machine's verdicts.
- Not trusted: the machine's fail of an item whose automatic verdict is not trusted (its agreement
  with people under the policy's floor, ``qa_pipeline.calibration.trust``) is ``held`` until a
  person decides it: it goes to the review queue and, meanwhile, does not count in the call's
  score, pass/fail or critical flag (as if n/a); the machine's verdict stays on record.
- A call held as a whole (``CallScore.held_reason``: part of its audio could not be decoded) has
  every fail held the same way, until a person decides the item or marks the call reviewed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from qa_pipeline.records import FAIL, PASS, CallScore, ItemResult, ItemTrust
from qa_pipeline.scoring.score import call_outcome

# actions in the audit trail
MACHINE = "machine"
CONFIRM = "confirm"
OVERRIDE = "override"
DISPUTE = "dispute"
ACCEPT = "accept"
REJECT = "reject"
ESCALATE = "escalate"
NOTE = "note"
REVIEWED = "reviewed"
ACKNOWLEDGE = "acknowledge"
ITEM_ACTIONS = (MACHINE, CONFIRM, OVERRIDE, DISPUTE, ACCEPT, REJECT, ESCALATE)
CALL_ACTIONS = (NOTE, REVIEWED, ACKNOWLEDGE)
ACTIONS = ITEM_ACTIONS + CALL_ACTIONS
DECISIONS = (CONFIRM, OVERRIDE, ACCEPT, REJECT)
EVALUATION = (MACHINE, *DECISIONS, REVIEWED)  # the rows that change what an agent acknowledges

# dispute levels
FIRST = 1  # 一审: an inspector other than the one whose decision is disputed
SECOND = 2  # 二审: a supervisor, final

# dispute states
OPEN = "open"
ACCEPTED = "accepted"
REJECTED = "rejected"

# review states of a call
UNREVIEWED = "unreviewed"
IN_REVIEW = "in_review"
REVIEWED_STATE = "reviewed"
DISPUTED = "disputed"
REVIEW_STATES = (UNREVIEWED, IN_REVIEW, REVIEWED_STATE, DISPUTED)


@dataclass(frozen=True)
class Event:
    """One row of the append-only audit trail (table ``events`` in OUT/review.db)."""

    id: int
    at: str  # ISO 8601 with offset
    actor: str  # user name, or "machine"
    role: str  # inspector | supervisor | agent | manager | machine
    action: str  # see ACTIONS
    call_id: str
    item_id: str | None = None  # None for call-level actions (note, reviewed)
    from_result: str | None = None  # the verdict before the action (machine rows: the previous machine verdict)
    to_result: str | None = None  # the verdict after it (pass | fail | na; "reviewed" for reviewed)
    points: float | None = None  # machine rows: the machine's points for the item
    reason: str | None = None  # the person's reason, comment, reply or note; machine rows: rubric and model
    basis_id: int | None = None  # decisions and disputes: the machine row they judged; accept/reject: its dispute too via ref_id
    ref_id: int | None = None  # accept / reject: the dispute they resolve


@dataclass(frozen=True)
class Decision:
    """The person's verdict on an item that the final result follows."""

    event: Event
    result: str  # pass | fail | na
    judged_result: str | None  # the machine verdict it was made on
    judged_points: float | None

    @property
    def actor(self) -> str:
        return self.event.actor

    @property
    def role(self) -> str:
        return self.event.role

    @property
    def at(self) -> str:
        return self.event.at

    @property
    def reason(self) -> str | None:
        return self.event.reason

    @property
    def action(self) -> str:
        return self.event.action


@dataclass(frozen=True)
class Dispute:
    opened: Event  # the agent's dispute
    state: str  # open | accepted | rejected, at the current level
    resolution: Event | None = None  # the current level's answer
    level: int = FIRST
    first: Event | None = None  # escalated: the first level's answer
    escalation: Event | None = None
    disputed: Decision | None = None  # the decision in force when the agent disputed (None: the machine's)

    @property
    def final(self) -> bool:
        """The second level has answered: nothing changes the item any more (but a new machine verdict)."""
        return self.level == SECOND and self.state != OPEN


@dataclass(frozen=True)
class FinalItem:
    machine: ItemResult
    result: str
    points: float
    decision: Decision | None = None
    dispute: Dispute | None = None
    stale: bool = False  # the decision was made on an earlier machine verdict
    version: int = 0  # id of the item's latest audit row: a save made on an older page is refused
    untrusted: bool = False  # the machine failed it, and the item's automatic verdict is not trusted

    @property
    def changed(self) -> bool:
        return self.result != self.machine.result

    @property
    def held(self) -> bool:
        """An untrusted fail nobody has decided yet: it waits for a person and does not count."""
        return self.untrusted and self.decision is None

    def as_item(self) -> ItemResult:
        if self.result == self.machine.result and self.points is self.machine.points:
            return self.machine  # nobody changed it: the machine's own record, not a copy of it
        return replace(self.machine, result=self.result, points=self.points)


@dataclass(frozen=True)
class FinalCall:
    machine: CallScore
    items: tuple[FinalItem, ...]
    score: float | None
    passed: bool | None
    critical_failed: bool | None
    reviewed: Event | None = None  # the latest "reviewed" mark
    notes: tuple[Event, ...] = ()
    version: int = 0  # id of the call's latest row other than notes and acknowledgements
    acknowledged: Event | None = None  # the agent's latest 签收
    evaluated: int = 0  # id of the latest row that changed the evaluation (see EVALUATION)

    @property
    def call_id(self) -> str:
        return self.machine.call_id

    @property
    def open_disputes(self) -> int:
        return sum(1 for i in self.items if i.dispute is not None and i.dispute.state == OPEN)

    @property
    def acknowledged_current(self) -> bool:
        """The agent has acknowledged the evaluation as it stands now."""
        return self.acknowledged is not None and self.acknowledged.id > self.evaluated

    @property
    def review_state(self) -> str:
        if self.open_disputes:
            return DISPUTED
        if self.reviewed is not None:
            return REVIEWED_STATE
        if any(i.decision is not None for i in self.items) or self.notes:
            return IN_REVIEW
        return UNREVIEWED

    def item(self, item_id: str) -> FinalItem | None:
        return next((i for i in self.items if i.machine.item_id == item_id), None)

    def as_score(self) -> CallScore:
        """The call as a CallScore carrying the final verdicts (what reports and averages use)."""
        m = self.machine
        items = tuple(i.as_item() for i in self.items)
        if (self.score is m.score and self.passed is m.passed and self.critical_failed is m.critical_failed
                and len(items) == len(m.items) and all(a is b for a, b in zip(items, m.items))):
            return m  # nothing changed: the machine's own record, not a copy of it
        return replace(self.machine, score=self.score, passed=self.passed, critical_failed=self.critical_failed,
                       items=items)


def _points(machine: ItemResult, result: str) -> float:
    if result == machine.result:
        return machine.points
    return machine.max_points if result == PASS else 0.0


def fold_item(events: Sequence[Event], by_id: dict[int, Event]) -> tuple[Decision | None, Dispute | None]:
    """The decision in force and the dispute (if any) after one item's audit rows, oldest first;
    ``by_id`` finds the machine rows the decisions judged."""
    decision: Decision | None = None
    dispute: Dispute | None = None
    for e in events:
        if e.action in DECISIONS:
            basis = by_id.get(e.basis_id) if e.basis_id is not None else None
            judged = basis.to_result if basis is not None else e.from_result
            judged_points = basis.points if basis is not None else None
            result = e.to_result if e.to_result is not None else (decision.result if decision else e.from_result)
            decision = Decision(e, result or "", judged, judged_points)
            if e.action in (ACCEPT, REJECT) and dispute is not None:
                dispute = replace(dispute, state=ACCEPTED if e.action == ACCEPT else REJECTED, resolution=e)
        elif e.action == DISPUTE:
            dispute = Dispute(e, OPEN, disputed=decision)
        elif e.action == ESCALATE and dispute is not None and dispute.level == FIRST:
            dispute = replace(dispute, state=OPEN, resolution=None, level=SECOND, first=dispute.resolution,
                              escalation=e)
    return decision, dispute


def is_stale(decision: Decision | None, result: str, points: float) -> bool:
    """Whether ``decision`` was made on a machine verdict other than (``result``, ``points``)."""
    return decision is not None and (
        decision.judged_result != result
        or (decision.judged_points is not None and decision.judged_points != float(points))
    )


def _final_item(machine: ItemResult, events: Sequence[Event], by_id: dict[int, Event], untrusted: bool) -> FinalItem:
    decision, dispute = fold_item(events, by_id)
    result = decision.result if decision is not None else machine.result
    return FinalItem(machine, result, _points(machine, result), decision, dispute,
                     is_stale(decision, machine.result, machine.points), max((e.id for e in events), default=0),
                     untrusted=untrusted and machine.result == FAIL)


def final_call(score: CallScore, events: Iterable[Event], untrusted: Collection[str] = frozenset()) -> FinalCall:
    """The call's final verdicts: ``score`` (the machine's) with the decisions in ``events`` applied.

    ``events`` are the call's audit rows, any order; rows of other calls and of items the rubric
    no longer has are ignored (they stay in the audit trail). A failed call has no items and stays
    as it is. ``untrusted``: ids of the items whose automatic verdict is not trusted (their fails
    are held for a person).
    """
    rows = sorted((e for e in events if e.call_id == score.call_id), key=lambda e: e.id)
    by_id = {e.id: e for e in rows}
    per_item: dict[str, list[Event]] = {}
    for e in rows:
        if e.item_id is not None:
            per_item.setdefault(e.item_id, []).append(e)
    reviewed = next((e for e in reversed(rows) if e.action == REVIEWED), None)
    held_call = score.held_reason is not None and reviewed is None
    items = tuple(_final_item(m, per_item.get(m.item_id, ()), by_id, held_call or m.item_id in untrusted)
                  for m in score.items)
    notes = tuple(e for e in rows if e.action == NOTE)
    version = max((e.id for e in rows if e.action not in (NOTE, ACKNOWLEDGE)), default=0)
    people = {"reviewed": reviewed, "notes": notes, "version": version,
              "acknowledged": next((e for e in reversed(rows) if e.action == ACKNOWLEDGE), None),
              "evaluated": max((e.id for e in rows if e.action in EVALUATION), default=0)}
    if score.status != "ok" or not items:
        return FinalCall(score, items, score.score, score.passed, score.critical_failed, **people)
    if not any(i.changed or i.points != i.machine.points or i.held for i in items):
        return FinalCall(score, items, score.score, score.passed, score.critical_failed, **people)
    total, passed, critical = call_outcome([i.as_item() for i in items if not i.held], score.pass_score or 0.0)
    if score.pass_score is None:  # written before the pass mark was recorded: pass/fail cannot be redone
        passed = None
    return FinalCall(score, items, total, passed, critical, **people)


def final_calls(scores: Iterable[CallScore], events: Iterable[Event], untrusted: Collection[str] = frozenset()
                ) -> dict[str, FinalCall]:
    """:func:`final_call` for each of ``scores``, keyed by call_id (events grouped once)."""
    by_call: dict[str, list[Event]] = {}
    for e in events:
        by_call.setdefault(e.call_id, []).append(e)
    return {s.call_id: final_call(s, by_call.get(s.call_id, ()), untrusted) for s in scores}


def untrusted(trust: Mapping[str, ItemTrust]) -> frozenset[str]:
    """The items whose automatic verdict is not trusted."""
    return frozenset(item_id for item_id, t in trust.items() if not t.trusted)


class Reviews(Protocol):
    """What people said about OUT's calls, as the batch folds it into the night's tables and pages."""

    def trust(self, out: Path, latest: Sequence[CallScore]) -> Mapping[str, ItemTrust]:
        """item_id → trust over the labels in OUT, with ``latest`` replacing those calls' verdicts."""
        ...

    def finals(self, out: Path, scores: Sequence[CallScore], *, export: bool = True,
               untrusted: Collection[str] = frozenset()) -> dict[str, FinalCall]:
        """Final verdicts of ``scores`` (the machine's recorded first; with ``export``, the trail written)."""
        ...


class MachineOnly:
    """No people: every final verdict is the machine's (less the fails of ``untrusted`` items)."""

    def trust(self, out: Path, latest: Sequence[CallScore]) -> Mapping[str, ItemTrust]:
        return {}

    def finals(self, out: Path, scores: Sequence[CallScore], *, export: bool = True,
               untrusted: Collection[str] = frozenset()) -> dict[str, FinalCall]:
        return final_calls(scores, (), untrusted)


MACHINE_ONLY = MachineOnly()
