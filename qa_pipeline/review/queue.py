"""The inspector's queue: what to listen to first, per day, by the review policy.

In this order: calls part of whose audio could not be decoded (``audio_lost``: every fail held
until a person has listened; always listed, whatever the policy), items the machine marked as
unsure (``needs_review``), items whose decision was
made on an earlier machine verdict (``stale``), the machine's fails of items whose automatic
verdict is not trusted (``untrusted``: held, not counted until a person decides), calls with a
critical failure, calls under the pass mark, and a random sample of each agent's calls (抽检), drawn with a seed made of the
policy's seed, the day and the agent, so a day's sample is the same every time. A call is listed
once, under the first reason that applies; an item entry is done once decided, a call entry once
the call is marked reviewed.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from qa_pipeline.records import FAIL
from qa_pipeline.final_verdicts import OPEN, FinalCall, FinalItem
from qa_pipeline.review.policy import Policy, Sample
from qa_pipeline.output.tables import call_date

AUDIO_LOST = "audio_lost"
NEEDS_REVIEW = "needs_review"
STALE = "stale"
UNTRUSTED = "untrusted"
CRITICAL = "critical"
BELOW_PASS = "below_pass"
SAMPLE = "sample"
KINDS = (AUDIO_LOST, NEEDS_REVIEW, STALE, UNTRUSTED, CRITICAL, BELOW_PASS, SAMPLE)
KIND_LABELS = {
    AUDIO_LOST: "音频不完整",
    NEEDS_REVIEW: "机器不确定",
    STALE: "机器结论已变，需重新确认",
    UNTRUSTED: "自动判定不可信",
    CRITICAL: "关键项未通过",
    BELOW_PASS: "低于合格分",
    SAMPLE: "抽检",
}

# entry states
TODO = "open"
DONE = "done"
DISPUTED = "disputed"
STATES = (TODO, DONE, DISPUTED)
STATE_LABELS = {TODO: "待复核", DONE: "已复核", DISPUTED: "申诉中"}


@dataclass(frozen=True)
class QueueEntry:
    kind: str
    call_id: str
    day: date
    agent_id: str | None
    team: str | None
    state: str
    item_id: str | None = None  # item entries (needs_review, stale, untrusted)


def day_of(final: FinalCall) -> date:
    return call_date(final.machine.started_at, final.machine.processed_at)


def _item_state(item: FinalItem) -> str:
    if item.dispute is not None and item.dispute.state == OPEN:
        return DISPUTED
    return DONE if item.decision is not None and not item.stale else TODO


def _call_state(final: FinalCall) -> str:
    if final.open_disputes:
        return DISPUTED
    return DONE if final.reviewed is not None else TODO


def sample_size(sample: Sample, n: int) -> int:
    if sample.percent is not None:
        return min(n, math.ceil(n * sample.percent / 100.0))
    return min(n, sample.per_agent or 0)


def sampled(finals: Iterable[FinalCall], sample: Sample) -> set[str]:
    """The 抽检 sample: per day and agent, the same calls for the same policy and calls."""
    groups: dict[tuple[date, str], list[str]] = defaultdict(list)
    for f in finals:
        if f.machine.status == "ok":
            groups[(day_of(f), f.machine.agent_id or "")].append(f.call_id)
    chosen: set[str] = set()
    for (day, agent), calls in groups.items():
        k = sample_size(sample, len(calls))
        if k:
            rng = random.Random(f"{sample.seed}|{day.isoformat()}|{agent}")
            chosen.update(rng.sample(sorted(calls), k))
    return chosen


def build_queue(finals: Mapping[str, FinalCall], policy: Policy) -> list[QueueEntry]:
    """Every entry of every day, in queue order (then by day, call start, call id)."""
    q = policy.queue
    ordered = sorted(finals.values(), key=lambda f: (day_of(f), f.machine.started_at or "", f.call_id))
    sample = sampled(ordered, q.sample)
    by_kind: dict[str, list[QueueEntry]] = {k: [] for k in KINDS}
    for f in ordered:
        s = f.machine
        if s.status != "ok":
            continue
        day = day_of(f)

        def entry(kind: str, state: str, item_id: str | None = None) -> QueueEntry:
            return QueueEntry(kind, f.call_id, day, s.agent_id, s.team, state, item_id)

        for item in f.items:
            if item.stale:
                by_kind[STALE].append(entry(STALE, _item_state(item), item.machine.item_id))
            elif q.needs_review and item.machine.needs_review:
                by_kind[NEEDS_REVIEW].append(entry(NEEDS_REVIEW, _item_state(item), item.machine.item_id))
            elif item.untrusted and s.held_reason is None:  # a held call's fails: its own entry below
                by_kind[UNTRUSTED].append(entry(UNTRUSTED, _item_state(item), item.machine.item_id))
        kind = None
        if s.held_reason is not None:
            kind = AUDIO_LOST
        elif q.critical_failures and s.critical_failed:
            kind = CRITICAL
        elif q.below_pass and s.passed is False:  # not critical, so under the pass mark
            kind = BELOW_PASS
        elif f.call_id in sample:
            kind = SAMPLE
        if kind is not None:
            by_kind[kind].append(entry(kind, _call_state(f)))
    return [e for k in KINDS for e in by_kind[k]]


def filter_queue(entries: Iterable[QueueEntry], finals: Mapping[str, FinalCall], *, day: date | None = None,
                 team: str | None = None, agent: str | None = None, item: str | None = None,
                 state: str | None = TODO) -> list[QueueEntry]:
    """Entries of one day / team / agent / item / state (None: any). An item filter keeps that
    item's entries and the calls where the machine failed it."""
    out = []
    for e in entries:
        if day is not None and e.day != day:
            continue
        if team is not None and e.team != team:
            continue
        if agent is not None and e.agent_id != agent:
            continue
        if state is not None and e.state != state:
            continue
        if item is not None:
            if e.item_id is not None and e.item_id != item:
                continue
            if e.item_id is None:
                found = finals[e.call_id].item(item)
                if found is None or found.machine.result != FAIL:
                    continue
        out.append(e)
    return out


@dataclass(frozen=True)
class QueueFilter:
    """The queue's filters as a page's query string holds them (``day=all``: every day)."""

    day: date | None = None
    team: str | None = None
    agent: str | None = None
    item: str | None = None
    state: str | None = TODO

    @classmethod
    def from_params(cls, params: Mapping[str, str], latest: date | None) -> "QueueFilter":
        """Filters from a query string; no ``day`` means the latest day, no ``state`` the open entries."""
        raw_day = params.get("day")
        if raw_day is None:
            day = latest
        elif raw_day in ("", "all"):
            day = None
        else:
            try:
                day = date.fromisoformat(raw_day)
            except ValueError:
                day = None
        state = params.get("state", TODO)
        return cls(day, params.get("team") or None, params.get("agent") or None, params.get("item") or None,
                   state if state in STATES else None)

    def params(self) -> dict[str, str]:
        """The query string that gives these filters back (state left out: the default, open)."""
        out = {"day": self.day.isoformat() if self.day else "all"}
        out.update({k: v for k, v in (("team", self.team), ("agent", self.agent), ("item", self.item)) if v})
        if self.state != TODO:
            out["state"] = self.state or "all"
        return out

    def apply(self, entries: Iterable[QueueEntry], finals: Mapping[str, FinalCall], *, state: str | None | bool = True
              ) -> list[QueueEntry]:
        return filter_queue(entries, finals, day=self.day, team=self.team, agent=self.agent, item=self.item,
                            state=self.state if state is True else state)


def next_entry(entries: list[QueueEntry], call_id: str, item_id: str | None) -> QueueEntry | None:
    """The first open entry after the entry (call_id, item_id) in queue order, going round to the
    start; never that entry itself. Where the entry is not in ``entries``, the first open one of
    another call."""
    here = next((k for k, e in enumerate(entries) if e.call_id == call_id and e.item_id == item_id), None)
    order = entries[here + 1:] + entries[:here] if here is not None else entries
    for e in order:
        if e.state == TODO and (here is not None or e.call_id != call_id):
            return e
    return None


def entry_of(entries: Iterable[QueueEntry], call_id: str, item_id: str | None) -> QueueEntry | None:
    return next((e for e in entries if e.call_id == call_id and e.item_id == item_id), None)
