"""The dates of a dispute (申诉), from the review policy's ``disputes`` section. Pure.

- the agent may dispute a failed item until the call's day + ``window_days``;
- 一审 is due on the dispute's day + ``first_review_days`` (shown and flagged when late; a late
  answer is still taken);
- the agent may escalate (二审) until the 一审 answer's day + ``escalate_days``;
- 二审 is due on the escalation's day + ``second_review_days``.

A window is open through its last day and closed after it; a page says "截至 <date>" either way,
never a silent refusal.
"""

from __future__ import annotations

from datetime import date, timedelta

from qa_pipeline.dispute_deadlines import day_of
from qa_pipeline.dispute_deadlines import review_due as due_by
from qa_pipeline.final_verdicts import FIRST, Dispute
from qa_pipeline.output.tables import call_date
from qa_pipeline.records import CallScore
from qa_pipeline.review.policy import Policy


def dispute_until(score: CallScore, policy: Policy) -> date:
    return call_date(score.started_at, score.processed_at) + timedelta(days=policy.disputes.window_days)


def escalate_until(dispute: Dispute, policy: Policy) -> date | None:
    """The last day the agent may ask for 二审; None while 一审 has not answered or after escalating."""
    if dispute.level != FIRST or dispute.resolution is None:
        return None
    return day_of(dispute.resolution) + timedelta(days=policy.disputes.escalate_days)


def review_due(dispute: Dispute, policy: Policy) -> date | None:
    """When the open level (一审 or 二审) is due; None when nothing is open (the rule the batch's
    overdue alert reads too: dispute_deadlines)."""
    return due_by(dispute, policy.disputes)


def closed_line(what: str, until: date) -> str:
    return f"{what}已截止（截至 {until.isoformat()}）"


def open_line(what: str, until: date) -> str:
    return f"{what}截至 {until.isoformat()}"
