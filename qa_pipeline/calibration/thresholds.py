"""Per-item meaning thresholds proposed from labels (`qa calibrate OUT --propose-thresholds`).

For every item whose check or `when` carries examples, the labelled calls are scored again from
their stored transcripts (no model; the vectors are cached) with that item alone under a grid of
(threshold, margin), and the pair that agrees with the people most often is proposed.  Ties go to
the pair nearest the rubric's own, then to the stricter one (a higher threshold and margin: fewer
verdicts decided by meaning).  Nothing is written: the proposal is lines to put in the rubric.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from qa_pipeline.calibration.candidate import metas_of
from qa_pipeline.output.tables import read_transcripts
from qa_pipeline.records import Label
from qa_pipeline.scoring.rubric import Item, Meaning, Rubric
from qa_pipeline.scoring.score import score_call

THRESHOLDS = tuple(round(0.50 + 0.02 * i, 2) for i in range(23))  # 0.50 … 0.94
MARGINS = (0.0, 0.02, 0.05, 0.08, 0.10, 0.15)


@dataclass(frozen=True)
class Proposal:
    item_id: str
    where: str  # "item" | "when"
    n: int  # labels of the item compared
    current: tuple[float, float]
    current_agree: int
    proposed: tuple[float, float]
    proposed_agree: int


def _with(item: Item, where: str, meaning: Meaning) -> Item:
    if where == "when":
        return replace(item, when=replace(item.when, meaning=meaning))
    return replace(item, meaning=meaning)


def propose(out: Path, labels: Sequence[Label], rubric: Rubric) -> list[Proposal]:
    calls = {lab.call_id for lab in labels}
    transcripts = read_transcripts(out, call_ids=calls)
    metas = metas_of(out, set(transcripts))
    proposals = []
    for item in rubric.items:
        for where, meaning in (("item", item.meaning), ("when", item.when.meaning if item.when else None)):
            if meaning is None:
                continue
            truth = {lab.call_id: lab.result for lab in labels if lab.item_id == item.id and lab.call_id in transcripts}
            if not truth:
                continue

            def agree(threshold: float, margin: float) -> int:
                m = replace(meaning, threshold=threshold, margin=margin)
                alone = replace(rubric, items=(_with(item, where, m),))
                got = 0
                for call_id, result in truth.items():
                    score = score_call(transcripts[call_id], metas[call_id], alone, processed_at="calibrate")
                    got += score.items[0].result == result
                return got

            current = (meaning.threshold, meaning.margin)
            grid = {(t, m): agree(t, m) for t in THRESHOLDS for m in MARGINS}
            now = agree(*current)
            best = max(grid.items(), key=lambda kv: (kv[1], -abs(kv[0][0] - current[0]) - abs(kv[0][1] - current[1]),
                                                     kv[0][0], kv[0][1]))
            chosen = best[0] if best[1] > now else current
            proposals.append(Proposal(item.id, where, len(truth), current, now, chosen, max(best[1], now)))
    return proposals


def proposal_lines(proposals: Sequence[Proposal]) -> list[str]:
    out = []
    for p in proposals:
        where = p.item_id if p.where == "item" else f"{p.item_id} when"
        change = ("keep" if p.proposed == p.current
                  else f"threshold: {p.proposed[0]:g}, margin: {p.proposed[1]:g}")
        out.append(f"{where}: threshold {p.current[0]:g}, margin {p.current[1]:g} agrees {p.current_agree}/{p.n}; "
                   f"proposed: {change} ({p.proposed_agree}/{p.n})")
    return out
