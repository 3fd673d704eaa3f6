"""What the nightly report shows of people's labels: each item's agreement with them and whether
its automatic verdict is trusted, from the label sources an output folder holds.

The batch never fails over labels: an unreadable labels file is logged and the index shows no
agreement, while `qa calibrate` refuses the same file with its line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from qa_pipeline.calibration.compare import item_order, match
from qa_pipeline.calibration.labels import CombinedLabels, sources_in
from qa_pipeline.calibration.trust import TrustRule, item_trust
from qa_pipeline.errors import QaError
from qa_pipeline.records import CallScore, ItemTrust

log = logging.getLogger("qa_pipeline")


def trust_in(out: Path, scores: Sequence[CallScore], rule: TrustRule = TrustRule()) -> dict[str, ItemTrust]:
    """item_id → ItemTrust over the labels in `out` matched to `scores`; empty without labels."""
    sources = sources_in(out)
    if not sources:
        return {}
    try:
        labels = CombinedLabels(tuple(sources)).read()
    except QaError as e:
        log.warning("labels not used in the report: %s", e)
        return {}
    judged, _unmatched, _ = match(labels, scores)
    return item_trust(judged, item_order(scores), rule)
