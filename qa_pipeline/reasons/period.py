"""A period's reasons beside an earlier period's: share per reason, its change, per team.

The period's calls get their reasons (assign.py); the earlier period's calls are then counted into
the same reasons — by their pinned reason, or, for groups, by the group whose centre their request
is closest to (at least ``group_similarity``; else 其他) — so both sides count the same things even
though groups are made per period. A share's change is marked by the two-proportion test of
trends.py; a reason *doubled* when it has at least MIN_DOUBLED calls, at least twice the earlier
period's count, and its share rose beyond noise.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from qa_pipeline.reasons.assign import CallRequest, PeriodReasons, ReasonGroup, assign
from qa_pipeline.reasons.pinned import OTHER, PinnedVectors, ReasonsConfig
from qa_pipeline.trends import RateChange, rate_change

MIN_DOUBLED = 3


@dataclass(frozen=True)
class ReasonRow:
    group: ReasonGroup
    change: RateChange  # share now vs the earlier period
    doubled: bool
    teams: tuple[tuple[str, int], ...]  # (team, calls) this period, most first


@dataclass(frozen=True)
class PeriodComparison:
    now: PeriodReasons
    rows: tuple[ReasonRow, ...]
    n_now: int
    n_before: int

    @property
    def doubled(self) -> tuple[str, ...]:
        return tuple(r.group.name for r in self.rows if r.doubled)


def _centre(vectors: Sequence[np.ndarray]) -> np.ndarray | None:
    if not vectors:
        return None
    m = np.mean(np.vstack(vectors), axis=0)
    n = float(np.linalg.norm(m))
    return m / n if n > 0 else None


def earlier_counts(now: PeriodReasons, now_requests: Sequence[CallRequest], before: Sequence[CallRequest],
                   config: ReasonsConfig, pinned: PinnedVectors | None) -> Counter:
    """How many of the earlier period's calls fall into each of `now`'s reasons."""
    if not before:
        return Counter()
    if config.pinned and pinned is not None:
        said = [r for r in before if r.vector is not None]
        labels = pinned.classify([r.clauses if r.clauses is not None else r.vector[None, :] for r in said],
                                 config.min_similarity)
        return Counter(name for name, _s in labels) + Counter({OTHER: len(before) - len(said)})
    vec = {r.call_id: r.vector for r in now_requests if r.vector is not None}
    groups = [g for g in now.groups if g.name != OTHER]
    centres = [_centre([vec[c] for c in g.call_ids if c in vec]) for g in groups]
    keep = [(g, c) for g, c in zip(groups, centres) if c is not None]
    counts: Counter = Counter()
    matrix = np.vstack([c for _g, c in keep]) if keep else None
    for r in before:
        if r.vector is None or matrix is None:
            counts[OTHER] += 1
            continue
        sims = matrix @ r.vector
        k = int(sims.argmax())
        counts[keep[k][0].name if sims[k] >= config.group_similarity else OTHER] += 1
    return counts


def compare(now_requests: Sequence[CallRequest], before: Sequence[CallRequest], teams: Mapping[str, str | None],
            config: ReasonsConfig, pinned: PinnedVectors | None, dim: int) -> PeriodComparison:
    now = assign(now_requests, config, pinned, dim)
    counts = earlier_counts(now, now_requests, before, config, pinned)
    by_reason = Counter(r.reason for r in now.reasons)
    n_now, n_before = len(now.reasons), len(before)
    team_counts: dict[str, Counter] = defaultdict(Counter)
    for r in now.reasons:
        team_counts[r.reason][teams.get(r.call_id) or "未分组"] += 1
    rows = []
    shown = {g.name for g in now.groups}
    groups = list(now.groups)
    for name, k in by_reason.items():  # a reason with calls but no group of its own (其他 without requests)
        if name not in shown:
            groups.append(ReasonGroup(name, False, False, tuple(r.call_id for r in now.reasons if r.reason == name), ()))
    for g in groups:
        k_now = by_reason.get(g.name, len(g.call_ids)) if not g.within_other else len(g.call_ids)
        k_before = counts.get(g.name, 0)
        change = rate_change(g.name, g.name, k_now, n_now, k_before, n_before)
        doubled = (not g.within_other and g.name != OTHER and k_now >= MIN_DOUBLED and k_now >= 2 * k_before
                   and change.marked == "up")
        members = team_counts.get(g.name) or Counter(teams.get(c) or "未分组" for c in g.call_ids)
        rows.append(ReasonRow(g, change, doubled, tuple(sorted(members.items(), key=lambda kv: (-kv[1], kv[0])))))
    rows.sort(key=lambda r: (r.group.within_other, -r.change.now_k, r.group.name))
    return PeriodComparison(now, tuple(rows), n_now, n_before)
