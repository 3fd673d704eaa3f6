"""Which items' automatic verdicts can count at once: an item whose agreement with people over the
labels of its last N labelled calls is under a floor is "not trusted" (自动判定不可信), and its
fails wait for a person. Only an item with at least ``min_labelled`` labelled calls among those N
is judged at all: one label is no measure (a single override once held back every fail of an item
and moved a call's final score 70.0 → 77.8). Pure: judged labels → :class:`ItemTrust` per item.

"Last" is by the call's date (then start time, then call_id); every label of those calls counts.
An item nobody has judged yet is trusted: there is nothing to measure it by.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qa_pipeline.errors import InputError
from qa_pipeline.records import ItemTrust, Judged


@dataclass(frozen=True)
class TrustRule:
    last_n: int = 50  # labelled calls looked at, most recent first
    min_agreement: float = 0.8  # the floor
    min_labelled: int = 20  # labelled calls needed before the item is judged (at most last_n count)

    def __post_init__(self) -> None:
        if self.last_n < 1:
            raise InputError(f"trust rule: last_n must be >= 1, got {self.last_n}")
        if self.min_labelled < 1:
            raise InputError(f"trust rule: min_labelled must be >= 1, got {self.min_labelled}")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise InputError(f"trust rule: min_agreement must be between 0 and 1, got {self.min_agreement}")


def _rate(judged: Sequence[Judged]) -> float | None:
    return sum(j.agrees for j in judged) / len(judged) if judged else None


def item_trust(judged: Iterable[Judged], item_ids: Iterable[str], rule: TrustRule = TrustRule()) -> dict[str, ItemTrust]:
    """ItemTrust for each of `item_ids` (in that order) from the labels compared with the machine."""
    per_item: dict[str, list[Judged]] = defaultdict(list)
    for j in judged:
        per_item[j.label.item_id].append(j)
    out: dict[str, ItemTrust] = {}
    for item_id in item_ids:
        rows = sorted(per_item.get(item_id, ()), key=lambda j: (j.call_date, j.started_at or "", j.label.call_id))
        recent_calls: list[str] = []
        for j in reversed(rows):
            if j.label.call_id not in recent_calls:
                if len(recent_calls) == rule.last_n:
                    break
                recent_calls.append(j.label.call_id)
        recent = [j for j in rows if j.label.call_id in set(recent_calls)]
        out[item_id] = ItemTrust(item_id, len(rows), _rate(rows), len(recent), _rate(recent), rule.last_n,
                                 rule.min_agreement, len(recent_calls), min(rule.min_labelled, rule.last_n))
    return out
