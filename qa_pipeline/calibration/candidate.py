"""A candidate rubric judged before it reaches a night: the labelled calls of an output folder
scored again from their stored transcripts (no model), compared with the verdicts OUT holds now.

Nothing in OUT is changed: the candidate's verdicts live only in the returned records.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

from qa_pipeline.batch.rescore import score_many
from qa_pipeline.batch.store import RUN_FILE, now, read_run_file
from qa_pipeline.calibration.compare import calibrate
from qa_pipeline.output.tables import CALLS_DIR, call_date, read_scores, read_transcripts
from qa_pipeline.records import CallMeta, CallScore, CandidateComparison, Label, VerdictChange
from qa_pipeline.scoring.rubric import Rubric


def _metas(out: Path, call_ids: set[str]) -> dict[str, CallMeta]:
    """The calls' metadata from OUT/run.json; a folder filled by `qa transcribe` has none, and its
    calls are scored without metadata (the hang-up side then comes from the audio)."""
    known = {m.call_id: m for m in read_run_file(out)} if (Path(out) / RUN_FILE).is_file() else {}
    return {c: known.get(c) or CallMeta(call_id=c, path=Path(c)) for c in call_ids}


def rescore_labelled(out: Path, labels: Sequence[Label], rubric: Rubric) -> tuple[list[CallScore], list[str]]:
    """(scores of the labelled calls that have a transcript in OUT, with `rubric`; labelled calls
    without one). Calls in neither OUT's transcripts nor its scores are left to the caller."""
    wanted = {label.call_id for label in labels}
    transcripts = read_transcripts(out, call_ids=wanted)
    metas = _metas(out, set(transcripts))
    work = [(transcripts[c], metas[c]) for c in sorted(transcripts)]
    scored = score_many(work, rubric, now())
    return [scored[c] for c in sorted(scored)], sorted(wanted - set(transcripts))


def verdict_changes(before: Sequence[CallScore], after: Sequence[CallScore], labels: Sequence[Label]
                    ) -> list[VerdictChange]:
    """Every (call, item) whose verdict differs between `before` and `after` (calls in both)."""
    human: dict[tuple[str, str], list[str]] = defaultdict(list)
    for label in labels:
        human[(label.call_id, label.item_id)].append(label.result)
    earlier = {s.call_id: s for s in before}
    changes: list[VerdictChange] = []
    for score in after:
        old = earlier.get(score.call_id)
        if old is None or old.status != "ok" or score.status != "ok":
            continue
        old_items = {i.item_id: i for i in old.items}
        new_items = {i.item_id: i for i in score.items}
        for item_id in [*new_items, *(k for k in old_items if k not in new_items)]:
            was, new = old_items.get(item_id), new_items.get(item_id)
            if was is not None and new is not None and was.result == new.result:
                continue
            changes.append(VerdictChange(
                score.call_id, item_id, (new or was).item_name, was.result if was else None,
                new.result if new else None, tuple(human.get((score.call_id, item_id), ())),
                new.reason if new else "候选标准中没有此项", new.evidence_text if new else None,
                new.evidence_start if new else None))
    return changes


def compare_candidate(out: Path, labels: Sequence[Label], rubric: Rubric, *, source: str = "",
                      since: date | None = None) -> CandidateComparison:
    """The labelled calls of `out` under `rubric`, against the verdicts `out` holds now."""
    started = time.monotonic()
    current = read_scores(out) if (Path(out) / CALLS_DIR).exists() else []
    rescored, no_transcript = rescore_labelled(out, labels, rubric)
    seconds = time.monotonic() - started
    labelled = {label.call_id for label in labels}
    before = [s for s in current if s.call_id in labelled]
    candidate = {s.call_id: s for s in rescored}
    in_out = {s.call_id for s in before}
    # a re-scored call keeps the day it is filed under (its first processing, when it has no started_at)
    after = ([replace(candidate[s.call_id], processed_at=s.processed_at) if s.call_id in candidate else s
              for s in before] + [s for s in rescored if s.call_id not in in_out])
    shown = [s for s in after if since is None or call_date(s.started_at, s.processed_at) >= since]
    return CandidateComparison(
        rubric_path=rubric.path or "",
        rubric_id=rubric.id,
        rubric_version=rubric.version,
        before=calibrate(labels, before, source=source, since=since),
        after=calibrate(labels, after, source=source, since=since),
        changes=tuple(verdict_changes(before, shown, labels)),
        no_transcript=tuple(c for c in no_transcript if c in in_out),
        n_calls=len(rescored),
        seconds=seconds,
    )
