"""What the nightly batch and the review desk take from people's labels: each item's agreement with
them and whether its automatic verdict is trusted (the review policy's `trust` section decides N
and the floor), from the label sources an output folder holds (the desk's decisions, labels files).

The batch never fails over labels: an unreadable labels or policy file is logged and the batch
goes on (no agreement shown, or the default trust rule), while `qa calibrate` and `qa review`
refuse the same file with its line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from qa_pipeline.calibration.compare import item_order, match
from qa_pipeline.calibration.labels import CombinedLabels, sources_in
from qa_pipeline.calibration.trust import TrustRule, item_trust
from qa_pipeline.errors import QaError
from qa_pipeline.output.report import merge_scores
from qa_pipeline.output.tables import CALLS_DIR, read_scores
from qa_pipeline.records import CallScore, ItemTrust
from qa_pipeline.review.policy import policy_for

log = logging.getLogger("qa_pipeline")


def has_labels(out: Path) -> bool:
    return bool(sources_in(out))


def trust_rule(out: Path) -> TrustRule:
    """The trust rule of OUT's review policy; the default one when the policy file is unusable."""
    try:
        return policy_for(Path(out)).trust
    except QaError as e:
        log.warning("review policy not used for trust, defaults instead: %s", e)
        return TrustRule()


def trust_in(out: Path, scores: Sequence[CallScore], rule: TrustRule | None = None) -> dict[str, ItemTrust]:
    """item_id → ItemTrust over the labels in `out` matched to `scores`; empty without labels.
    `rule`: N and the floor (default: OUT's review policy)."""
    sources = sources_in(out)
    if not sources:
        return {}
    try:
        labels = CombinedLabels(tuple(sources)).read()
    except QaError as e:
        log.warning("labels not used in the report: %s", e)
        return {}
    judged, _unmatched, _ = match(labels, scores)
    return item_trust(judged, item_order(scores), rule or trust_rule(out))


def night_trust(out: Path, latest: Sequence[CallScore]) -> dict[str, ItemTrust]:
    """:func:`trust_in` over every call in OUT with `latest` (a batch's new verdicts) replacing
    theirs; nothing is read when OUT holds no labels."""
    if not has_labels(out):
        return {}
    earlier = read_scores(out) if (Path(out) / CALLS_DIR).is_dir() else []
    return trust_in(out, merge_scores(earlier, latest))
