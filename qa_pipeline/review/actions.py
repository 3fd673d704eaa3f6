"""What people do on the desk, and when it is allowed: confirm, override, dispute, resolve, note, reviewed.

:func:`act` checks, in one write transaction, that the page the person acted on is still current
(optimistic concurrency: the item's latest audit row is the one the page showed, else
:class:`~qa_pipeline.review.db.Conflict`), that their role may do it (:func:`auth.allowed`) and
that the item's state allows it, then appends one audit row. Refusals are :class:`Refused` with a
one-line Chinese message for the page.

States of an item and who moves it:

    machine ──confirm/override (inspector, supervisor)──► decided ──(again)──► decided
    machine | decided ──dispute (its agent, once, within the window, a failed item)──► disputed
    disputed ──accept | reject (inspector, supervisor), with a reply──► resolved (final)

A resolved item can be decided again only when the machine's verdict has changed since (stale).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from qa_pipeline.errors import QaError
from qa_pipeline.records import FAIL, NA, PASS, CallScore
from qa_pipeline.review import auth
from qa_pipeline.review.db import Conflict, ReviewDB
from qa_pipeline.final_verdicts import (ACCEPT, CONFIRM, DISPUTE, MACHINE, NOTE, OPEN, OVERRIDE, REJECT, REVIEWED,
                                        Event, FinalCall, FinalItem, final_call)
from qa_pipeline.review.policy import Policy
from qa_pipeline.output.tables import call_date

MAX_TEXT = 2000
RESULTS = (PASS, FAIL, NA)
ITEM_ACTIONS = (CONFIRM, OVERRIDE, DISPUTE, ACCEPT, REJECT)
CALL_ACTIONS = (NOTE, REVIEWED)
_PERMISSION = {CONFIRM: auth.DECIDE, OVERRIDE: auth.DECIDE, DISPUTE: auth.DISPUTE, ACCEPT: auth.RESOLVE,
               REJECT: auth.RESOLVE, NOTE: auth.NOTE, REVIEWED: auth.MARK_REVIEWED}


class Refused(QaError):
    """The action is not allowed now; str() is the message shown to the person."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    """One action as a person submitted it."""

    action: str
    item_id: str | None = None
    result: str | None = None  # override / accept: pass | fail | na
    reason: str | None = None  # required for override, dispute, accept, reject, note
    version: int | None = None  # the item's (or call's) version the page showed; None is refused (400) where one is needed


def resource(score: CallScore) -> auth.Resource:
    return auth.Resource(agent_id=score.agent_id)


def _text(value: str | None, what: str, required: bool) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise Refused(f"请填写{what}")
        return None
    if len(text) > MAX_TEXT:
        raise Refused(f"{what}太长（最多 {MAX_TEXT} 字）")
    return text


def _basis(db: ReviewDB, conn, events: list[Event], score: CallScore, item: FinalItem) -> int:
    """The id of the machine row for the item's current machine verdict (added when the item has
    none yet). A different latest row means a batch has just re-scored the call: refused."""
    m = item.machine
    latest = next((e for e in reversed(events) if e.action == MACHINE and e.item_id == m.item_id), None)
    if latest is not None and latest.to_result == m.result and latest.points == float(m.points):
        return latest.id
    if latest is not None:
        raise Refused("机器刚刚重新评分，页面已过期，请刷新后再操作", 409)
    basis = " · ".join(x for x in (score.rubric_id, score.rubric_version, score.model) if x) or None
    row = db.append(conn, Event(0, "", "machine", "machine", MACHINE, score.call_id, m.item_id,
                                None, m.result, float(m.points), basis))
    return row.id


def _check_version(final: FinalCall, item: FinalItem | None, events: list[Event], version: int | None) -> None:
    if version is None:  # the concurrency check cannot be skipped by leaving the field out
        raise Refused("页面版本缺失或无效，请刷新页面后再操作", 400)
    current = item.version if item is not None else final.version
    if current == version:
        return
    newer = [e for e in events if e.id > version and (item is None or e.item_id == item.machine.item_id)]
    if not newer:
        raise Refused("页面已过期，请刷新后再操作", 409)
    raise Conflict(newer[-1])


def _item_rules(req: Request, item: FinalItem, score: CallScore, policy: Policy, today: date) -> None:
    dispute = item.dispute
    if req.action in (CONFIRM, OVERRIDE):
        if dispute is not None and dispute.state == OPEN:
            raise Refused("该项有待处理的申诉，请先裁决申诉", 409)
        if dispute is not None and not item.stale and item.decision is not None and item.decision.event.ref_id:
            raise Refused("该项申诉已裁决，裁决结论为最终结论", 409)
        if req.action == OVERRIDE and req.result not in RESULTS:
            raise Refused("请选择改判结果（通过 / 未通过 / 不适用）")
    elif req.action == DISPUTE:
        if dispute is not None:
            raise Refused("每个评分项只能申诉一次", 409)
        if item.result != FAIL:
            raise Refused("只能对未通过的评分项申诉", 409)
        days = (today - call_date(score.started_at, score.processed_at)).days
        if days > policy.disputes.window_days:
            raise Refused(f"已超过申诉期限（通话后 {policy.disputes.window_days} 天内）", 409)
    elif req.action in (ACCEPT, REJECT):
        if dispute is None or dispute.state != OPEN:
            raise Refused("该项没有待处理的申诉", 409)
        if req.action == ACCEPT and req.result not in RESULTS:
            raise Refused("请选择采纳申诉后的结果")


def act(db: ReviewDB, actor: auth.Actor, score: CallScore, req: Request, *, policy: Policy, today: date) -> Event:
    """Check and record one action on the call ``score``; returns the audit row written."""
    if req.action not in ITEM_ACTIONS + CALL_ACTIONS:
        raise Refused(f"未知操作：{req.action}")
    if not auth.allowed(actor, _PERMISSION[req.action], resource(score)):
        raise Refused("您没有权限执行此操作", 403)
    if score.status != "ok":
        raise Refused("该通话处理失败，没有可复核的评分", 409)
    needs_reason = req.action in (OVERRIDE, DISPUTE, ACCEPT, REJECT, NOTE)
    what = {OVERRIDE: "改判理由", DISPUTE: "申诉说明", ACCEPT: "答复", REJECT: "答复", NOTE: "备注"}.get(req.action, "理由")
    reason = _text(req.reason, what, needs_reason)
    with db.write() as conn:
        events = db.events_in(conn, score.call_id)
        final = final_call(score, events)
        if req.action in CALL_ACTIONS:
            if req.action == REVIEWED:
                _check_version(final, None, events, req.version)
            return db.append(conn, Event(0, "", actor.name, actor.role, req.action, score.call_id, None, None,
                                         "reviewed" if req.action == REVIEWED else None, None, reason))
        item = final.item(req.item_id or "")
        if item is None:
            raise Refused("没有这个评分项", 404)
        _check_version(final, item, events, req.version)
        _item_rules(req, item, score, policy, today)
        basis = _basis(db, conn, events, score, item)
        to = {CONFIRM: item.machine.result, OVERRIDE: req.result, DISPUTE: None, ACCEPT: req.result,
              REJECT: item.result}[req.action]
        ref = item.dispute.opened.id if req.action in (ACCEPT, REJECT) and item.dispute else None
        return db.append(conn, Event(0, "", actor.name, actor.role, req.action, score.call_id, item.machine.item_id,
                                     item.result, to, None, reason, basis, ref))


def available(actor: auth.Actor, score: CallScore, item: FinalItem, *, policy: Policy, today: date) -> frozenset[str]:
    """The item actions ``actor`` may take on ``item`` now: what the page offers (the same checks
    as :func:`act`, which still makes them again when the form comes back)."""
    found = set()
    for action in ITEM_ACTIONS:
        if not auth.allowed(actor, _PERMISSION[action], resource(score)):
            continue
        try:
            _item_rules(Request(action, item.machine.item_id, result="pass"), item, score, policy, today)
        except Refused:
            continue
        found.add(action)
    return frozenset(found)
