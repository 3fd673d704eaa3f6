"""Every call of a period gets its reason: a pinned one, a group of alike requests, or 其他.

With pinned reasons (policy `reasons.pinned`) each request is classified to them, and the requests
left in 其他 are grouped among themselves (the page shows what 其他 holds); without, every request
is grouped and a group's name is its reason. A call whose customer said nothing substantive is 其他
with score 0. The period's calls are taken in call id order, so the same calls group the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa_pipeline.reasons.groups import centres, group, name_groups
from qa_pipeline.reasons.pinned import OTHER, PinnedVectors, ReasonsConfig
from qa_pipeline.records import CallReason

EXAMPLES_SHOWN = 3


@dataclass(frozen=True)
class CallRequest:
    call_id: str
    text: str
    at: float | None
    vector: np.ndarray | None  # unit mean of its clauses; None: the customer said nothing substantive
    clauses: np.ndarray | None = None  # its clauses' vectors (for pinned reasons)


@dataclass(frozen=True)
class ReasonGroup:
    """A reason as a page shows it: its calls and the requests closest to its centre."""

    name: str
    pinned: bool  # a centre's own reason
    within_other: bool  # a group of the requests the pinned reasons left in 其他
    call_ids: tuple[str, ...]
    examples: tuple[tuple[str, str], ...]  # (call_id, request), the closest to the centre first


@dataclass(frozen=True)
class PeriodReasons:
    reasons: tuple[CallReason, ...]  # one per call, in call id order
    groups: tuple[ReasonGroup, ...]  # largest first


def assign(requests: Sequence[CallRequest], config: ReasonsConfig, pinned: PinnedVectors | None,
           dim: int) -> PeriodReasons:
    items = sorted(requests, key=lambda r: r.call_id)
    said = [r for r in items if r.vector is not None]
    vectors = np.vstack([r.vector for r in said]).astype(np.float32) if said else np.zeros((0, dim), np.float32)
    by_call: dict[str, CallReason] = {}
    groups: list[ReasonGroup] = []
    if config.pinned and pinned is not None:
        labels = pinned.classify([r.clauses if r.clauses is not None else r.vector[None, :] for r in said],
                                 config.min_similarity)
        for r, (name, score) in zip(said, labels):
            by_call[r.call_id] = CallReason(r.call_id, name, score, True, r.text, r.at)
        for p in config.pinned:
            rows = [k for k, (name, _s) in enumerate(labels) if name == p.name]
            groups.append(_group(p.name, True, False, said, vectors, rows))
        rest = [k for k, (name, _s) in enumerate(labels) if name == OTHER]
        groups += _grouped(said, vectors, rest, config, within_other=True)[0]
    else:
        grouped, named = _grouped(said, vectors, list(range(len(said))), config, within_other=False)
        groups += grouped
        for k, r in enumerate(said):
            name, score = named.get(k, (OTHER, 0.0))
            by_call[r.call_id] = CallReason(r.call_id, name, score, False, r.text, r.at)
    for r in items:
        if r.call_id not in by_call:
            by_call[r.call_id] = CallReason(r.call_id, OTHER, 0.0, bool(config.pinned), r.text, r.at)
    groups = [g for g in groups if g.call_ids]
    groups.sort(key=lambda g: (-len(g.call_ids), g.within_other, g.name))
    return PeriodReasons(tuple(by_call[r.call_id] for r in items), tuple(groups))


def _centre(vectors: np.ndarray, rows: Sequence[int]) -> np.ndarray | None:
    if not rows:
        return None
    v = vectors[list(rows)].mean(axis=0)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else None


def _group(name: str, pinned: bool, within_other: bool, said: Sequence[CallRequest], vectors: np.ndarray,
           rows: Sequence[int]) -> ReasonGroup:
    centre = _centre(vectors, rows)
    closeness = [float(vectors[k] @ centre) for k in rows] if centre is not None else []
    order = sorted(range(len(rows)), key=lambda j: (-closeness[j], said[rows[j]].call_id))
    examples = tuple((said[rows[j]].call_id, said[rows[j]].text) for j in order[:EXAMPLES_SHOWN])
    return ReasonGroup(name, pinned, within_other, tuple(said[k].call_id for k in rows), examples)


def _grouped(said: Sequence[CallRequest], vectors: np.ndarray, rows: list[int], config: ReasonsConfig, *,
             within_other: bool) -> tuple[list[ReasonGroup], dict[int, tuple[str, float]]]:
    """The rows grouped by meaning and named, and each grouped row's (name, similarity to its
    group's centre); rows in no group make one 其他 group of their own."""
    if not rows:
        return [], {}
    labels = group(vectors[rows], config.group_similarity)
    names = name_groups([said[k].text for k in rows], labels)
    out: list[ReasonGroup] = []
    named: dict[int, tuple[str, float]] = {}
    for g, name in names.items():
        members = [rows[j] for j, l in enumerate(labels) if l == g]
        title = f"{OTHER}：{name}" if within_other else name
        out.append(_group(title, False, within_other, said, vectors, members))
        centre = _centre(vectors, members)
        for k in members:
            named[k] = (title, round(float(vectors[k] @ centre), 4) if centre is not None else 0.0)
    loose = [rows[j] for j, l in enumerate(labels) if l < 0]
    if loose:
        out.append(_group(f"{OTHER}：零散" if within_other else OTHER, False, within_other, said, vectors, loose))
    return out, named
