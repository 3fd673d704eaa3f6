"""Labels matched to the machine's verdicts: per item and overall agreement, between inspectors,
each inspector against the machine. Pure: (labels, call scores) → :class:`Calibration`.

Blind double review (:func:`blind_agreement`): two inspectors' verdicts on the same items, neither
having seen the other's, against each other and each against the machine.

Every label is counted once: n is the number of labels, so a (call, item) judged by two
inspectors counts twice against the machine.  A label that cannot be compared is kept in
``unmatched`` with why (unknown_call, call_failed, unknown_item), never dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from itertools import combinations

from qa_pipeline.calibration.stats import agreement
from qa_pipeline.output.tables import call_date
from qa_pipeline.records import (
    BlindAgreement,
    BlindPair,
    CallScore,
    Calibration,
    ItemCalibration,
    ItemResult,
    Judged,
    Label,
    RaterAgreement,
    Unmatched,
)

OVERALL = "*"
OVERALL_NAME = "全部评分项"
MACHINE = "machine"

UNKNOWN_CALL = "unknown_call"
CALL_FAILED = "call_failed"
UNKNOWN_ITEM = "unknown_item"


def item_order(scores: Iterable[CallScore]) -> dict[str, str]:
    """item_id → item_name of every item the scores have verdicts on, in rubric (first-seen) order."""
    names: dict[str, str] = {}
    for score in scores:
        for item in score.items:
            names.setdefault(item.item_id, item.item_name)
    return names


def match(labels: Iterable[Label], scores: Sequence[CallScore], since: date | None = None
          ) -> tuple[list[Judged], list[Unmatched], int]:
    """(judged, unmatched, left out by `since`): each label beside the machine's verdict."""
    by_call = {s.call_id: s for s in scores}
    verdicts: dict[tuple[str, str], ItemResult] = {(s.call_id, i.item_id): i for s in scores for i in s.items}
    judged: list[Judged] = []
    unmatched: list[Unmatched] = []
    left_out = 0
    for label in labels:
        score = by_call.get(label.call_id)
        if score is None:
            unmatched.append(Unmatched(label, UNKNOWN_CALL))
            continue
        day = call_date(score.started_at, score.processed_at)
        if since is not None and day < since:
            left_out += 1
            continue
        if score.status != "ok":
            unmatched.append(Unmatched(label, CALL_FAILED))
            continue
        item = verdicts.get((label.call_id, label.item_id))
        if item is None:
            unmatched.append(Unmatched(label, UNKNOWN_ITEM))
            continue
        judged.append(Judged(label, item.item_name, item.result, item.needs_review, day, score.started_at,
                             item.reason, item.evidence_text, item.evidence_start))
    return judged, unmatched, left_out


def item_calibration(item_id: str, item_name: str, judged: Sequence[Judged]) -> ItemCalibration:
    return ItemCalibration(item_id, item_name, agreement((j.label.result, j.machine) for j in judged),
                           sum(j.needs_review for j in judged))


def between_inspectors(judged: Sequence[Judged]) -> list[RaterAgreement]:
    """For each pair of named inspectors, their agreement over the (call, item)s both judged."""
    by_key: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for j in judged:
        if j.label.inspector:
            by_key[(j.label.call_id, j.label.item_id)][j.label.inspector] = j.label.result
    pairs: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for verdicts in by_key.values():
        for a, b in combinations(sorted(verdicts), 2):
            pairs[(a, b)].append((verdicts[a], verdicts[b]))
    return [RaterAgreement(a, b, agreement(v)) for (a, b), v in sorted(pairs.items())]


def versus_machine(judged: Sequence[Judged]) -> list[RaterAgreement]:
    """Each named inspector's agreement with the machine over the items they judged."""
    by_inspector: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for j in judged:
        if j.label.inspector:
            by_inspector[j.label.inspector].append((j.label.result, j.machine))
    return [RaterAgreement(name, MACHINE, agreement(v)) for name, v in sorted(by_inspector.items())]


def blind_agreement(pairs: Iterable[BlindPair], scores: Sequence[CallScore], since: date | None = None
                    ) -> list[BlindAgreement]:
    """Blind double review: for each pair of inspectors, their agreement over the items both judged
    without seeing each other's verdicts, and each one's agreement with the machine over the same
    items. Pairs on calls or items the scores do not have (or before ``since``) are left out."""
    by_call = {s.call_id: s for s in scores if s.status == "ok"}
    machine = {(s.call_id, i.item_id): i.result for s in by_call.values() for i in s.items}
    grouped: dict[tuple[str, str], list[tuple[str, str, str, str]]] = defaultdict(list)
    for p in pairs:
        verdict = machine.get((p.call_id, p.item_id))
        score = by_call.get(p.call_id)
        if verdict is None or score is None:
            continue
        if since is not None and call_date(score.started_at, score.processed_at) < since:
            continue
        a, b, ra, rb = (p.first, p.second, p.first_result, p.second_result) if p.first <= p.second else (
            p.second, p.first, p.second_result, p.first_result)
        grouped[(a, b)].append((ra, rb, verdict, p.call_id))
    return [BlindAgreement(a, b, agreement((x, y) for x, y, _, _ in rows), agreement((x, m) for x, _, m, _ in rows),
                           agreement((y, m) for _, y, m, _ in rows), len({c for *_, c in rows}))
            for (a, b), rows in sorted(grouped.items())]


def calibrate(labels: Iterable[Label], scores: Sequence[CallScore], *, source: str = "",
              since: date | None = None, blind: Iterable[BlindPair] = ()) -> Calibration:
    """Machine vs people over the calls in `scores`: per item (every item the scores have, in
    rubric order, n = 0 where nobody judged it), overall, between inspectors."""
    judged, unmatched, left_out = match(labels, scores, since)
    per_item: dict[str, list[Judged]] = defaultdict(list)
    for j in judged:
        per_item[j.label.item_id].append(j)
    items = tuple(item_calibration(item_id, name, per_item.get(item_id, ())) for item_id, name in item_order(scores).items())
    return Calibration(
        source=source,
        items=items,
        overall=item_calibration(OVERALL, OVERALL_NAME, judged),
        judged=tuple(judged),
        unmatched=tuple(unmatched),
        inspectors=tuple(between_inspectors(judged)),
        versus_machine=tuple(versus_machine(judged)),
        since=since,
        left_out=left_out,
        blind=tuple(blind_agreement(blind, scores, since)),
    )
