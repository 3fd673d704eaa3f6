"""What people do on the desk, and when it is allowed: confirm, override, dispute, resolve, note, reviewed.

:func:`act` checks, in one write transaction, that the page the person acted on is still current
(optimistic concurrency: the item's latest audit row is the one the page showed, else
:class:`~qa_pipeline.review.db.Conflict`), that their role may do it (:func:`auth.allowed`) and
that the item's state allows it, then appends one audit row. Refusals are :class:`Refused` with a
one-line Chinese message for the page.

States of an item and who moves it (the roles are the review policy's ``duties``):

    machine ──confirm/override (review: inspector, supervisor)──► decided ──(again)──► decided
    machine | decided ──dispute (its agent, once, within the window, a failed item)──► 一审 open
    一审 open ──accept | reject (first_review; never the person whose decision is disputed)──► 一审 answered
    一审 answered, still failed ──escalate (its agent, once, within escalate_days)──► 二审 open
    二审 open ──accept | reject (second_review; neither that person nor the 一审's answerer)──► final

An answered dispute can be decided again only when the machine's verdict has changed since
(stale). ``acknowledge`` (签收) is the agent's, on their own call, once per evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from qa_pipeline.errors import QaError
from qa_pipeline.records import FAIL, NA, PASS, CallScore
from qa_pipeline.review import auth
from qa_pipeline.review.db import Conflict, ReviewDB
from qa_pipeline.final_verdicts import (ACCEPT, ACKNOWLEDGE, CONFIRM, DISPUTE, ESCALATE, MACHINE, NOTE, OPEN, OVERRIDE,
                                        REJECT, REVIEWED, SECOND, Event, FinalCall, FinalItem, final_call)
from qa_pipeline.output.review_views import ROLE_LABELS
from qa_pipeline.review.deadlines import closed_line, dispute_until, escalate_until
from qa_pipeline.review.policy import Policy

MAX_TEXT = 2000
RESULTS = (PASS, FAIL, NA)
ITEM_ACTIONS = (CONFIRM, OVERRIDE, DISPUTE, ACCEPT, REJECT, ESCALATE)
CALL_ACTIONS = (NOTE, REVIEWED, ACKNOWLEDGE)
_PERMISSION = {CONFIRM: (auth.DECIDE,), OVERRIDE: (auth.DECIDE,), DISPUTE: (auth.DISPUTE,), ESCALATE: (auth.ESCALATE,),
               ACCEPT: (auth.RESOLVE_FIRST, auth.RESOLVE_SECOND), REJECT: (auth.RESOLVE_FIRST, auth.RESOLVE_SECOND),
               NOTE: (auth.NOTE,), REVIEWED: (auth.MARK_REVIEWED,), ACKNOWLEDGE: (auth.ACKNOWLEDGE,)}


def duty_rules(policy: Policy) -> dict[str, frozenset[str]]:
    """:data:`auth.RULES` with the roles the policy gives each duty."""
    d = policy.duties
    review = frozenset(d.review)
    return {**auth.RULES, auth.DECIDE: review, auth.NOTE: review, auth.MARK_REVIEWED: review, auth.BLIND_REVIEW: review,
            auth.RESOLVE_FIRST: frozenset(d.first_review), auth.RESOLVE_SECOND: frozenset(d.second_review)}


def _roles(roles: tuple[str, ...]) -> str:
    return "或".join(ROLE_LABELS.get(r, r) for r in roles)


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
    reason: str | None = None  # required for override, dispute, escalate, accept, reject, note
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


def _item_rules(req: Request, item: FinalItem, score: CallScore, policy: Policy, today: date,
                actor: auth.Actor) -> None:
    dispute = item.dispute
    if req.action in (CONFIRM, OVERRIDE):
        if dispute is not None and dispute.state == OPEN:
            raise Refused("该项有待处理的申诉，请先裁决申诉", 409)
        if dispute is not None and not item.stale and item.decision is not None and item.decision.event.ref_id:
            if dispute.final:
                raise Refused("该项申诉已由二审裁决，为最终结论", 409)
            raise Refused("该项申诉已由一审裁决；如有异议，由坐席申请二审", 409)
        if req.action == OVERRIDE and req.result not in RESULTS:
            raise Refused("请选择改判结果（通过 / 未通过 / 不适用）")
    elif req.action == DISPUTE:
        if dispute is not None:
            raise Refused("每个评分项只能申诉一次", 409)
        if item.result != FAIL:
            raise Refused("只能对未通过的评分项申诉", 409)
        until = dispute_until(score, policy)
        if today > until:
            raise Refused(closed_line("申诉期", until), 409)
    elif req.action == ESCALATE:
        if dispute is None:
            raise Refused("该项没有申诉，不能申请二审", 409)
        if dispute.level == SECOND:
            raise Refused("每个评分项只能申请一次二审", 409)
        if dispute.state == OPEN:
            raise Refused("一审尚未裁决，请等待一审结论", 409)
        if item.result != FAIL:
            raise Refused("一审后该项已不是未通过，无需二审", 409)
        until = escalate_until(dispute, policy)
        if until is not None and today > until:
            raise Refused(closed_line("二审申请期", until), 409)
    elif req.action in (ACCEPT, REJECT):
        if dispute is None or dispute.state != OPEN:
            raise Refused("该项没有待处理的申诉", 409)
        if req.action == ACCEPT and req.result not in RESULTS:
            raise Refused("请选择采纳申诉后的结果")
        if dispute.level == SECOND:
            if not auth.allowed(actor, auth.RESOLVE_SECOND, resource(score), duty_rules(policy)):
                raise Refused(f"二审由{_roles(policy.duties.second_review)}裁决", 403)
            involved = {e.actor for e in (dispute.first,) if e is not None}
            if dispute.disputed is not None:
                involved.add(dispute.disputed.actor)
            if actor.name in involved:
                raise Refused("二审须由未参与原结论和一审的人裁决", 403)
        else:
            if not auth.allowed(actor, auth.RESOLVE_FIRST, resource(score), duty_rules(policy)):
                raise Refused(f"一审由{_roles(policy.duties.first_review)}裁决", 403)
            if dispute.disputed is not None and dispute.disputed.actor == actor.name:
                raise Refused("一审须由作出原结论以外的人处理：您是被申诉结论的作出人", 403)


def act(db: ReviewDB, actor: auth.Actor, score: CallScore, req: Request, *, policy: Policy, today: date) -> Event:
    """Check and record one action on the call ``score``; returns the audit row written."""
    if req.action not in ITEM_ACTIONS + CALL_ACTIONS:
        raise Refused(f"未知操作：{req.action}")
    rules = duty_rules(policy)
    if not any(auth.allowed(actor, p, resource(score), rules) for p in _PERMISSION[req.action]):
        raise Refused("您没有权限执行此操作", 403)
    if score.status != "ok":
        raise Refused("该通话处理失败，没有可复核的评分", 409)
    needs_reason = req.action in (OVERRIDE, DISPUTE, ESCALATE, ACCEPT, REJECT, NOTE)
    what = {OVERRIDE: "改判理由", DISPUTE: "申诉说明", ESCALATE: "二审申请说明", ACCEPT: "答复", REJECT: "答复",
            NOTE: "备注"}.get(req.action, "理由")
    reason = _text(req.reason, what, needs_reason)
    with db.write() as conn:
        events = db.events_in(conn, score.call_id)
        final = final_call(score, events)
        if req.action in CALL_ACTIONS:
            if req.action == REVIEWED:
                _check_version(final, None, events, req.version)
            if req.action == ACKNOWLEDGE:
                if final.acknowledged_current:
                    raise Refused("本次评价已签收", 409)
                reason = None
            return db.append(conn, Event(0, "", actor.name, actor.role, req.action, score.call_id, None, None,
                                         "reviewed" if req.action == REVIEWED else None, None, reason))
        item = final.item(req.item_id or "")
        if item is None:
            raise Refused("没有这个评分项", 404)
        _check_version(final, item, events, req.version)
        _item_rules(req, item, score, policy, today, actor)
        basis = _basis(db, conn, events, score, item)
        to = {CONFIRM: item.machine.result, OVERRIDE: req.result, DISPUTE: None, ESCALATE: None, ACCEPT: req.result,
              REJECT: item.result}[req.action]
        ref = None
        if req.action in (ACCEPT, REJECT) and item.dispute:  # the row answered: the escalation at 二审
            ref = (item.dispute.escalation or item.dispute.opened).id
        elif req.action == ESCALATE and item.dispute:
            ref = item.dispute.opened.id
        return db.append(conn, Event(0, "", actor.name, actor.role, req.action, score.call_id, item.machine.item_id,
                                     item.result, to, None, reason, basis, ref))


def available(actor: auth.Actor, score: CallScore, item: FinalItem, *, policy: Policy, today: date) -> frozenset[str]:
    """The item actions ``actor`` may take on ``item`` now: what the page offers (the same checks
    as :func:`act`, which still makes them again when the form comes back)."""
    rules = duty_rules(policy)
    found = set()
    for action in ITEM_ACTIONS:
        if not any(auth.allowed(actor, p, resource(score), rules) for p in _PERMISSION[action]):
            continue
        try:
            _item_rules(Request(action, item.machine.item_id, result="pass"), item, score, policy, today, actor)
        except Refused:
            continue
        found.add(action)
    return frozenset(found)


def may(actor: auth.Actor, action: str, score: CallScore, policy: Policy) -> bool:
    """Whether ``actor``'s role may do a call action (note, reviewed, acknowledge) on ``score``."""
    return any(auth.allowed(actor, p, resource(score), duty_rules(policy)) for p in _PERMISSION[action])
