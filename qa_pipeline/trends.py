"""What changed (趋势): this week against the four before it, per rubric item and per team.

"This week" is the 7 days that end on the latest call date in OUT; "the last four" the 28 days
before them, pooled. A change is marked only when it is beyond noise for that many calls:

- a rate (an item's fail rate among pass + fail, a team's share of failed calls, a reason's share
  of calls, in reasons.period): a two-proportion z-test with the pooled rate, marked when |z| ≥ 1.96 (p < 0.05,
  two-sided) and each side has at least MIN_N calls;
- a mean (a team's peak frustration): Welch's z on the two means, the same bound and minimum.

Every row also carries both sides' counts, so a reader sees how many calls a change rests on.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

Z_BOUND = 1.96
MIN_N = 5
WEEK = 7
BEFORE_WEEKS = 4


@dataclass(frozen=True)
class Window:
    this_week: tuple[date, date]  # first, last day
    before: tuple[date, date]
    last_week: tuple[date, date]  # the 7 days before this week (for "doubled")

    @classmethod
    def ending(cls, last: date) -> Window:
        first = last - timedelta(days=WEEK - 1)
        return cls((first, last), (first - timedelta(days=WEEK * BEFORE_WEEKS), first - timedelta(days=1)),
                   (first - timedelta(days=WEEK), first - timedelta(days=1)))

    def side(self, day: date) -> str | None:
        if self.this_week[0] <= day <= self.this_week[1]:
            return "now"
        if self.before[0] <= day <= self.before[1]:
            return "before"
        return None


@dataclass(frozen=True)
class RateChange:
    key: str
    label: str
    now_k: int
    now_n: int
    before_k: int
    before_n: int
    z: float | None
    marked: str | None  # "up" | "down" | None (within noise, or too few calls)

    @property
    def now(self) -> float | None:
        return self.now_k / self.now_n if self.now_n else None

    @property
    def before(self) -> float | None:
        return self.before_k / self.before_n if self.before_n else None


@dataclass(frozen=True)
class MeanChange:
    key: str
    label: str
    now: float | None
    now_n: int
    before: float | None
    before_n: int
    z: float | None
    marked: str | None


def two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> float | None:
    """z of p1 - p2 with the pooled rate; None when undefined (no calls, or all or none on both sides)."""
    if not n1 or not n2:
        return None
    p = (k1 + k2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return (k1 / n1 - k2 / n2) / se if se > 0 else None


def welch_z(a: Sequence[float], b: Sequence[float]) -> float | None:
    if len(a) < 2 or len(b) < 2:
        return None
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    va = sum((x - ma) ** 2 for x in a) / (len(a) - 1)
    vb = sum((x - mb) ** 2 for x in b) / (len(b) - 1)
    se = math.sqrt(va / len(a) + vb / len(b))
    return (ma - mb) / se if se > 0 else None


def _mark(z: float | None, n1: int, n2: int) -> str | None:
    if z is None or n1 < MIN_N or n2 < MIN_N or abs(z) < Z_BOUND:
        return None
    return "up" if z > 0 else "down"


def rate_change(key: str, label: str, now_k: int, now_n: int, before_k: int, before_n: int) -> RateChange:
    z = two_proportion_z(now_k, now_n, before_k, before_n)
    return RateChange(key, label, now_k, now_n, before_k, before_n, z, _mark(z, now_n, before_n))


def mean_change(key: str, label: str, now: Sequence[float], before: Sequence[float]) -> MeanChange:
    z = welch_z(now, before)
    return MeanChange(key, label, sum(now) / len(now) if now else None, len(now),
                      sum(before) / len(before) if before else None, len(before), z, _mark(z, len(now), len(before)))


@dataclass(frozen=True)
class CallFacts:
    """What trends read of one scored call."""

    call_id: str
    day: date
    team: str | None
    agent_id: str | None
    failed: bool | None  # final verdict: not passed
    frustration: float | None  # peak
    items: tuple[tuple[str, str, str], ...]  # (item_id, item_name, final result)


@dataclass(frozen=True)
class Trends:
    window: Window
    items: tuple[RateChange, ...]  # per rubric item: fail rate
    teams: tuple[tuple[RateChange, MeanChange], ...]  # per team: failed-call share, peak frustration
    frustration: MeanChange  # all calls

    @property
    def marked(self) -> int:
        rows = [*self.items, *(r for pair in self.teams for r in pair), self.frustration]
        return sum(r.marked is not None for r in rows)


def trends(facts: Iterable[CallFacts], last_day: date | None = None) -> Trends | None:
    """The changes over `facts` (e.g. one agent's calls, or every call); None without any call."""
    facts = list(facts)
    if not facts:
        return None
    window = Window.ending(last_day or max(f.day for f in facts))
    sides = [(f, window.side(f.day)) for f in facts]
    names: dict[str, str] = {}
    item_counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"now": [0, 0], "before": [0, 0]})
    for f, side in sides:
        for item_id, name, result in f.items:
            names.setdefault(item_id, name)
            if side and result in ("pass", "fail"):
                c = item_counts[item_id][side]
                c[0] += result == "fail"
                c[1] += 1
    items = tuple(rate_change(i, names[i], *item_counts[i]["now"], *item_counts[i]["before"]) for i in names)

    teams = []
    for team in sorted({f.team or "" for f in facts}):
        mine = [(f, s) for f, s in sides if (f.team or "") == team and s and f.failed is not None]
        k = {s: sum(f.failed for f, x in mine if x == s) for s in ("now", "before")}
        n = {s: sum(1 for _f, x in mine if x == s) for s in ("now", "before")}
        fr = {s: [f.frustration for f, x in mine if x == s and f.frustration is not None] for s in ("now", "before")}
        label = team or "未分组"
        teams.append((rate_change(team, label, k["now"], n["now"], k["before"], n["before"]),
                      mean_change(team, label, fr["now"], fr["before"])))

    everything = {s: [f.frustration for f, x in sides if x == s and f.frustration is not None] for s in ("now", "before")}
    return Trends(window, items, tuple(teams), mean_change("*", "全部通话", everything["now"], everything["before"]))
