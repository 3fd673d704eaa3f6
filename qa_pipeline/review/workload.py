"""Each reviewer's work, for the supervisor: what they did on a day and how their decisions held.

Pure: (the audit trail, the final verdicts, the users, a day) → one :class:`Workload` per person
who reviews (the users of the review duties, and anyone who made a decision).

- decided: items confirmed or overridden that day; overrides: of those, overridden;
- reviewed: calls marked reviewed that day;
- answered: disputes answered (一审 or 二审) that day;
- disputed / lost: every dispute of a decision of theirs, and those an answer accepted (the agent
  got the verdict changed, at 一审 or 二审), whenever they happened;
- overturned: their 一审 rejections that a 二审 accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from qa_pipeline.final_verdicts import ACCEPT, CONFIRM, OVERRIDE, REJECT, REVIEWED, Event, FinalCall


@dataclass(frozen=True)
class Workload:
    name: str
    role: str
    decided: int = 0
    overrides: int = 0
    reviewed: int = 0
    answered: int = 0
    disputed: int = 0
    lost: int = 0
    overturned: int = 0

    @property
    def override_rate(self) -> float | None:
        return self.overrides / self.decided if self.decided else None


def workloads(events: Iterable[Event], finals: Mapping[str, FinalCall], reviewers: Mapping[str, str],
              day: date) -> list[Workload]:
    """One row per reviewer (``reviewers``: name → role, plus whoever decided anything), by name."""
    counts: dict[str, dict[str, int]] = {}
    roles = dict(reviewers)

    def bump(name: str, key: str) -> None:
        counts.setdefault(name, {}).setdefault(key, 0)
        counts[name][key] += 1

    stamp = day.isoformat()
    for e in events:
        if e.action in (CONFIRM, OVERRIDE, REVIEWED, ACCEPT, REJECT):
            roles.setdefault(e.actor, e.role)
        if not e.at.startswith(stamp):
            continue
        if e.action in (CONFIRM, OVERRIDE):
            bump(e.actor, "decided")
            if e.action == OVERRIDE:
                bump(e.actor, "overrides")
        elif e.action == REVIEWED:
            bump(e.actor, "reviewed")
        elif e.action in (ACCEPT, REJECT):
            bump(e.actor, "answered")
    for f in finals.values():
        for item in f.items:
            d = item.dispute
            if d is None or d.disputed is None:
                continue
            maker = d.disputed.actor
            bump(maker, "disputed")
            answers = [a for a in (d.first, d.resolution) if a is not None]
            if any(a.action == ACCEPT for a in answers):
                bump(maker, "lost")
            if d.first is not None and d.first.action == REJECT and d.resolution is not None \
                    and d.resolution.action == ACCEPT:
                bump(d.first.actor, "overturned")
    return [Workload(name, roles.get(name, ""), **counts.get(name, {})) for name in sorted(roles)]
