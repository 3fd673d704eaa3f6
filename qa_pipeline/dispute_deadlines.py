"""When a dispute (申诉) is due: the review policy's ``disputes:`` section and the day the open level
(一审 or 二审) must be answered by. Pure.

Below the review desk, which shows the dates and flags a late answer, and the batch, which sends an
alert for a dispute past its deadline (alerts.events), so that both read one rule. A deadline is
open through its last day: a dispute is overdue from the day after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import yaml

from qa_pipeline.final_verdicts import OPEN, SECOND, Dispute, Event
from qa_pipeline.yaml_nodes import NodeReader

KEYS = ("window_days", "first_review_days", "escalate_days", "second_review_days")


@dataclass(frozen=True)
class DisputePolicy:
    window_days: int = 7  # the agent may dispute a failed item until the call's day + N
    first_review_days: int = 3  # 一审 is due N days after the dispute
    escalate_days: int = 3  # the agent may escalate (二审) until N days after the 一审 answer
    second_review_days: int = 5  # 二审 is due N days after the escalation


def parse_disputes(r: NodeReader, node: yaml.Node) -> DisputePolicy:
    m = r.mapping(node, "disputes", KEYS)
    return DisputePolicy(**{k: r.integer(m[k], f"disputes.{k}") for k in KEYS if k in m})


def day_of(event: Event) -> date:
    """The local day an audit row was written (its own offset)."""
    return date.fromisoformat(event.at[:10])


def review_due(dispute: Dispute, policy: DisputePolicy) -> date | None:
    """When the open level (一审 or 二审) is due; None when nothing is open."""
    if dispute.state != OPEN:
        return None
    if dispute.level == SECOND and dispute.escalation is not None:
        return day_of(dispute.escalation) + timedelta(days=policy.second_review_days)
    return day_of(dispute.opened) + timedelta(days=policy.first_review_days)


def overdue(dispute: Dispute | None, policy: DisputePolicy, today: date) -> date | None:
    """The deadline the open level of ``dispute`` missed, when ``today`` is past it; else None."""
    due = review_due(dispute, policy) if dispute is not None else None
    return due if due is not None and today > due else None
