"""What deserves an alert, found in a batch's calls: each with a stable key (sent once) and a payload
a person reads in an IM message. No customer's number is ever in a payload: every quote is masked
over its whole call as on the call card (output.redact), and nothing else of the customer is sent.

- ``critical_fail``: a call whose final verdict has a critical item failed;
- ``regulator_threat``: a customer turn that names a regulator or a public complaint channel
  (12315, 12345, 消协/消费者协会, 市场监管, 工商, 银保监/金融监管, 通信管理局/工信部, 媒体/曝光) or
  says 投诉到/告到 somewhere — in the matcher's normal form, so 幺二三幺五 is 12315;
- ``reason_doubled``: a reason for calling whose calls this week are at least twice last week's,
  beyond noise (reasons.period);
- ``dispute_overdue``: a dispute (申诉) whose open level, 一审 or 二审, was not answered by its
  deadline (the policy's ``disputes:``, dispute_deadlines); once per dispute and level.

A call is named as its card names it (redact.mask_id: a call_id that holds a phone number is shown
with the number masked), and its link is the card's file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from qa_pipeline.dispute_deadlines import DisputePolicy, overdue
from qa_pipeline.final_verdicts import SECOND, FinalCall
from qa_pipeline.output.redact import mask_id, mask_pii
from qa_pipeline.records import CUSTOMER, FAIL, CallScore, CallTranscript
from qa_pipeline.scoring.normalize import normalize_text

REGULATOR = re.compile(
    r"12315|12345|(?<!\d)315(?!\d)|消协|消费者协会|消保委|市场监管|监管局|监管部门|监管机构|工商局|工商部门"
    r"|银保监|银监|保监|金融监管|人民银行|通信管理局|工信部|信访|媒体|记者|曝光|投诉到|告到|举报到"
)


@dataclass(frozen=True)
class Alert:
    key: str  # stable: an alert with a key already sent is not sent again
    kind: str
    title: str
    text: str
    call_id: str | None = None
    fields: Mapping[str, str | float | int | None] = field(default_factory=dict)

    def payload(self) -> dict:
        return {"source": "qa-pipeline", "kind": self.kind, "title": self.title, "text": self.text,
                "call_id": self.call_id, **dict(self.fields)}


def _card(call_id: str) -> str:
    from qa_pipeline.output.report import card_stem

    return f"reports/calls/{card_stem(call_id)}.html"


def _who(s: CallScore) -> str:
    return mask_pii(f"{s.agent_name or ''}（{s.agent_id}）" if s.agent_id else (s.agent_name or "未知坐席"))


def critical_fails(scores: Iterable[CallScore]) -> list[Alert]:
    out = []
    for s in scores:
        if s.status != "ok" or not s.critical_failed:
            continue
        failed = [i for i in s.items if i.critical and i.result == FAIL]
        names = "、".join(mask_pii(i.item_name) for i in failed) or "关键项"
        evidence = next((mask_pii(i.evidence_text) for i in failed if i.evidence_text), "")
        out.append(Alert(
            key=f"critical_fail:{s.call_id}:{','.join(sorted(i.item_id for i in failed))}", kind="critical_fail",
            title=f"关键项未通过：{names}", call_id=mask_id(s.call_id),
            text=f"坐席 {_who(s)} 的通话 {mask_id(s.call_id)} 关键项未通过：{names}" + (f"。证据：“{evidence}”" if evidence else ""),
            fields={"agent_id": s.agent_id, "team": mask_pii(s.team) if s.team else None, "started_at": s.started_at,
                    "items": names, "report": _card(s.call_id)},
        ))
    return out


def regulator_threats(scores: Iterable[CallScore], transcripts: Mapping[str, CallTranscript]) -> list[Alert]:
    from qa_pipeline.output.report import call_redactor

    out = []
    for s in scores:
        t = transcripts.get(s.call_id)
        if s.status != "ok" or t is None:
            continue
        mask = call_redactor(t)
        for k, u in enumerate(t.utterances):
            if u.speaker != CUSTOMER:
                continue
            m = REGULATOR.search(normalize_text(u.text))
            if m is None:
                continue
            quote = mask.utterance(k)
            out.append(Alert(
                key=f"regulator_threat:{s.call_id}:{u.utterance_id}", kind="regulator_threat",
                title=f"客户提到向监管部门投诉（{m.group(0)}）", call_id=mask_id(s.call_id),
                text=f"通话 {mask_id(s.call_id)}（坐席 {_who(s)}）{u.start:.0f} 秒处客户说：“{quote}”",
                fields={"agent_id": s.agent_id, "team": mask_pii(s.team) if s.team else None,
                        "started_at": s.started_at, "at_s": round(u.start, 1), "quote": quote,
                        "report": _card(s.call_id)},
            ))
            break  # one alert per call
    return out


def doubled_reasons(reasons: Sequence[str], week_ending: date) -> list[Alert]:
    return [Alert(key=f"reason_doubled:{week_ending:%Y-%m-%d}:{r}", kind="reason_doubled",
                  title=f"来电原因翻倍：{mask_pii(r)}",
                  text=f"截至 {week_ending:%Y-%m-%d} 的一周，来电原因“{mask_pii(r)}”的通话数是前一周的两倍以上（超出随机波动）。",
                  fields={"reason": mask_pii(r), "week_ending": f"{week_ending:%Y-%m-%d}",
                          "report": "reports/index.html"})
            for r in reasons]


LEVEL_LABELS = {1: "一审", 2: "二审"}


def overdue_disputes(finals: Iterable[FinalCall], policy: DisputePolicy, today: date) -> list[Alert]:
    """Every open dispute whose level (一审 or 二审) is past its deadline on ``today``: one alert per
    dispute and level (the key names the row that opened the level), oldest deadline first."""
    found = []
    for f in finals:
        s = f.machine
        for item in f.items:
            due = overdue(item.dispute, policy, today)
            if due is None:
                continue
            d = item.dispute
            opened = d.escalation if d.level == SECOND and d.escalation is not None else d.opened
            level = LEVEL_LABELS.get(d.level, str(d.level))
            name, late = mask_pii(item.machine.item_name), (today - due).days
            found.append((due, s.call_id, item.machine.item_id, Alert(
                key=f"dispute_overdue:{s.call_id}:{item.machine.item_id}:{d.level}:{opened.id}", kind="dispute_overdue",
                title=f"申诉{level}逾期：{name}", call_id=mask_id(s.call_id),
                text=f"坐席 {_who(s)} 对通话 {mask_id(s.call_id)} 的“{name}”提出的申诉，{level}应于 "
                     f"{due:%Y-%m-%d} 前答复，已逾期 {late} 天。",
                fields={"agent_id": s.agent_id, "team": mask_pii(s.team) if s.team else None, "started_at": s.started_at,
                        "item": name, "level": level, "opened_on": opened.at[:10], "due": f"{due:%Y-%m-%d}",
                        "days_late": late, "report": _card(s.call_id)},
            )))
    return [alert for *_order, alert in sorted(found, key=lambda x: x[:3])]
