"""`qa calibrate`: read the labels and OUT's verdicts, compare (and a candidate rubric's), write
OUT/calibration/*.parquet and OUT/reports/calibration.html."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from qa_pipeline.batch.store import now, output_lock
from qa_pipeline.calibration.candidate import compare_candidate
from qa_pipeline.calibration.compare import calibrate
from qa_pipeline.calibration.labels import LabelSource
from qa_pipeline.calibration.page import write_calibration_page
from qa_pipeline.calibration.tables import write_calibration
from qa_pipeline.errors import InputError
from qa_pipeline.output.tables import CALLS_DIR, read_scores
from qa_pipeline.records import CalibrationRun
from qa_pipeline.scoring.rubric import load_rubric


def calibrate_out(out: Path, source: LabelSource, *, rubric: Path | None = None, since: date | None = None
                  ) -> CalibrationRun:
    """Compare `source`'s labels with OUT's verdicts (and, with `rubric`, a candidate's); write the
    tables and the page. A bad rubric or labels file is refused before anything is written."""
    started = time.monotonic()
    out = Path(out)
    candidate_rubric = load_rubric(rubric) if rubric is not None else None
    if not out.is_dir():
        raise InputError(f"{out}: no scores (was this folder written by `qa run`?)")
    with output_lock(out, "qa calibrate"):  # no `qa run` / `qa score` rewrites the scores under it
        if not (out / CALLS_DIR).is_dir():
            raise InputError(f"{out}: no scores (was this folder written by `qa run`?)")
        labels = source.read()
        if not labels:
            raise InputError(f"{source.name}: no labels in it")
        scores = read_scores(out)
        result = calibrate(labels, scores, source=source.name, since=since)
        candidate = (compare_candidate(out, labels, candidate_rubric, source=source.name, since=since)
                     if candidate_rubric is not None else None)
        computed_at = now()
        tables = write_calibration(out, result, computed_at, candidate)
        page = write_calibration_page(out, result, computed_at, candidate)
    return CalibrationRun(result, candidate, tables, page, time.monotonic() - started)
