"""`qa rubric test`: a rubric run over labelled transcripts before rollout, each item's agreement
with the labels held against a floor (for a centre's CI of its own rubric).

An item's floor: `--min-agreement` when given, else the item's `min_agreement` in the rubric, else
the rubric's top-level `min_agreement`.  An item nobody labelled cannot be tested: it is reported,
not failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qa_pipeline.calibration.candidate import rescore_labelled
from qa_pipeline.calibration.compare import calibrate
from qa_pipeline.errors import InputError
from qa_pipeline.records import ItemFloor, Label, RubricTest
from qa_pipeline.scoring.rubric import Rubric


def floors(rubric: Rubric, override: float | None = None) -> dict[str, float | None]:
    """item_id → its floor (None: no floor)."""
    if override is not None and not 0.0 <= override <= 1.0:
        raise InputError(f"--min-agreement must be between 0 and 1 (0.9 = 90%), got {override:g}")
    return {item.id: override if override is not None else
            item.min_agreement if item.min_agreement is not None else rubric.min_agreement
            for item in rubric.items}


def rubric_test(rubric: Rubric, labels: Sequence[Label], transcripts: Path, *, source: str = "",
                min_agreement: float | None = None) -> RubricTest:
    """Score the labelled calls in `transcripts` (an output folder) with `rubric`; each item's
    agreement against its floor. InputError when no floor is set anywhere or no label matches."""
    floor_of = floors(rubric, min_agreement)
    if all(f is None for f in floor_of.values()):
        raise InputError(f"{rubric.path or rubric.id}: no agreement floor: give --min-agreement or set "
                         "min_agreement in the rubric (top level or per item)")
    scores, no_transcript = rescore_labelled(Path(transcripts), labels, rubric)
    result = calibrate(labels, scores, source=source)
    if not result.judged:
        raise InputError(f"none of the {len(labels)} labels matches a scored call and item in {transcripts} "
                         f"({len(no_transcript)} labelled calls have no transcript there)")
    return RubricTest(rubric.id, rubric.version, result,
                      tuple(ItemFloor(item, floor_of.get(item.item_id)) for item in result.items),
                      tuple(no_transcript))
