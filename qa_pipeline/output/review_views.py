"""Plain dicts for the pages that show reviews: the desk's pages and the static report cards.

Pure functions of records. Everything a person typed (reasons, comments, replies, notes) and every
name goes through the same masking as the call card's text (:func:`qa_pipeline.output.redact.mask_pii`),
so a customer's number typed into a note never reaches a page; Jinja2 escapes it all as well.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from qa_pipeline.choices import Role
from qa_pipeline.final_verdicts import (ACCEPT, ACCEPTED, ACKNOWLEDGE, CONFIRM, DISPUTE, ESCALATE, FIRST, MACHINE,
                                        NOTE, OPEN, OVERRIDE, REJECT, REJECTED, REVIEWED, REVIEWED_STATE, SECOND,
                                        DISPUTED, IN_REVIEW, UNREVIEWED, Dispute, Event, FinalCall, FinalItem)
from qa_pipeline.output.redact import mask_pii
from qa_pipeline.records import FAIL, NA, PASS

ROLE_LABELS = {Role.inspector.value: "质检员", Role.supervisor.value: "主管", Role.agent.value: "坐席", Role.manager.value: "经理",
               MACHINE: "机器"}
RESULT_LABELS = {PASS: "通过", FAIL: "未通过", NA: "不适用", "reviewed": "已复核"}
ACTION_LABELS = {MACHINE: "机器判定", CONFIRM: "确认", OVERRIDE: "改判", DISPUTE: "申诉", ACCEPT: "一审采纳申诉",
                 REJECT: "一审驳回申诉", ESCALATE: "申请二审", NOTE: "备注", REVIEWED: "标记已复核",
                 ACKNOWLEDGE: "坐席签收"}
SECOND_LEVEL_LABELS = {ACCEPT: "二审采纳申诉", REJECT: "二审驳回申诉"}
DISPUTE_LABELS = {(FIRST, OPEN): "申诉待一审", (FIRST, ACCEPTED): "一审已采纳", (FIRST, REJECTED): "一审已驳回",
                  (SECOND, OPEN): "二审待处理", (SECOND, ACCEPTED): "二审已采纳（最终）",
                  (SECOND, REJECTED): "二审已驳回（最终）"}
REVIEW_STATE_LABELS = {UNREVIEWED: "未复核", IN_REVIEW: "复核中", REVIEWED_STATE: "已复核", DISPUTED: "申诉中"}
HELD_LINE = "自动判定不可信：机器判为未通过，待人工复核，暂不计入得分"


def mask(text: str | None) -> str:
    return mask_pii(text) if text else ""


def result_label(result: str | None) -> str:
    return RESULT_LABELS.get(result or "", result or "—")


def fmt_time(value: str | None) -> str:
    """``YYYY-MM-DD HH:MM`` of an ISO timestamp, as written (its own offset)."""
    if not value:
        return ""
    return value.replace("T", " ")[:16]


def who(actor: str, role: str) -> str:
    return f"{ROLE_LABELS.get(role, role)} {mask(actor)}"


def review_item_view(item: FinalItem) -> dict[str, Any] | None:
    """What a page says about the people's part in one item; None when nobody touched it."""
    d, dispute = item.decision, item.dispute
    if d is None and dispute is None and not item.held:
        return None
    view: dict[str, Any] = {"changed": item.changed, "stale": item.stale, "line": "", "reason": "",
                            "confirmed": False, "dispute": None, "stale_line": "", "held": item.held,
                            "held_line": HELD_LINE if item.held else ""}
    if d is not None:
        person = who(d.actor, d.role)
        if item.changed:
            view["line"] = f"机器：{result_label(item.machine.result)} → {person}：{result_label(item.result)}"
        else:
            view["confirmed"] = True
            view["line"] = f"{person} 维持机器结论：{result_label(item.result)}"
        view["reason"] = mask(d.reason)
        view["at"] = fmt_time(d.at)
        if item.stale:
            view["stale_line"] = (f"基于较早的机器结论（当时：{result_label(d.judged_result)}）作出的决定；"
                                  f"机器现在的结论：{result_label(item.machine.result)}，需重新确认")
    if dispute is not None:
        view["dispute"] = dispute_view(dispute)
    return view


def dispute_label(dispute: Dispute) -> str:
    return DISPUTE_LABELS[(dispute.level, dispute.state)]


def dispute_view(dispute: Dispute) -> dict[str, Any]:
    """A dispute's steps: the agent's 申诉, the 一审 answer, the escalation and the 二审 answer."""
    res, first, up = dispute.resolution, dispute.first, dispute.escalation
    return {
        "state": dispute.state,
        "level": dispute.level,
        "label": dispute_label(dispute),
        "by": who(dispute.opened.actor, dispute.opened.role),
        "at": fmt_time(dispute.opened.at),
        "comment": mask(dispute.opened.reason),
        "first": {"resolver": who(first.actor, first.role), "at": fmt_time(first.at), "reply": mask(first.reason),
                  "label": "一审采纳" if first.action == ACCEPT else "一审驳回"} if first else None,
        "escalation": {"by": who(up.actor, up.role), "at": fmt_time(up.at), "comment": mask(up.reason)} if up else None,
        "resolver": who(res.actor, res.role) if res else "",
        "resolved_at": fmt_time(res.at) if res else "",
        "reply": mask(res.reason) if res else "",
        "deadline": "",  # the desk adds the open level's due date (the review policy's)
        "late": False,
    }


def event_view(e: Event, item_names: Mapping[str, str] | None = None,
               escalations: frozenset[int] = frozenset()) -> dict[str, Any]:
    """One audit row for a page; ``escalations``: ids of the escalate rows (an answer to one is 二审)."""
    names = item_names or {}
    label = ACTION_LABELS.get(e.action, e.action)
    if e.action in SECOND_LEVEL_LABELS and e.ref_id in escalations:
        label = SECOND_LEVEL_LABELS[e.action]
    return {
        "id": e.id,
        "at": fmt_time(e.at),
        "who": "机器" if e.role == MACHINE else who(e.actor, e.role),
        "action": label,
        "call_id": e.call_id,
        "item": mask(names.get(e.item_id or "", e.item_id or "")) if e.item_id else "（整通）",
        "from": result_label(e.from_result) if e.from_result else "",
        "to": result_label(e.to_result) if e.to_result else "",
        "reason": mask(e.reason),
    }


def note_views(final: FinalCall) -> list[dict[str, Any]]:
    return [{"who": who(n.actor, n.role), "at": fmt_time(n.at), "text": mask(n.reason)} for n in final.notes]


def call_review_view(final: FinalCall) -> dict[str, Any]:
    """The call-level review facts a page shows beside the final score."""
    m = final.machine
    return {
        "state": final.review_state,
        "state_label": REVIEW_STATE_LABELS[final.review_state],
        "machine_score": "—" if m.score is None else f"{m.score:.1f}",
        "machine_passed": m.passed,
        "score_changed": m.score != final.score or m.passed != final.passed,
        "reviewed_by": who(final.reviewed.actor, final.reviewed.role) if final.reviewed else "",
        "reviewed_at": fmt_time(final.reviewed.at) if final.reviewed else "",
        "n_changed": sum(1 for i in final.items if i.changed),
        "n_stale": sum(1 for i in final.items if i.stale),
        "open_disputes": final.open_disputes,
        "notes": note_views(final),
        "acknowledged": final.acknowledged_current,
        "acknowledged_at": fmt_time(final.acknowledged.at) if final.acknowledged_current and final.acknowledged else "",
    }


def dispute_counts(finals: Iterable[FinalCall]) -> dict[str, int]:
    """Disputes of these calls by outcome: total, open, accepted, rejected."""
    c: Counter[str] = Counter()
    for f in finals:
        for i in f.items:
            if i.dispute is not None:
                c["total"] += 1
                c[i.dispute.state] += 1
    return {"total": c["total"], OPEN: c[OPEN], ACCEPTED: c[ACCEPTED], REJECTED: c[REJECTED]}
