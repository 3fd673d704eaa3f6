"""`qa score`: the transcripts of an earlier run scored again with a (new) rubric, without any model."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from pathlib import Path

from qa_pipeline.batch.stages import failed_score
from qa_pipeline.batch.store import now, output_lock, read_run_file, remove_temp_files, write_outputs
from qa_pipeline.final_verdicts import MACHINE_ONLY, Reviews
from qa_pipeline.morning import MoodReader
from qa_pipeline.output.tables import CALLS_DIR, read_scores, read_transcripts
from qa_pipeline.parallel import long_lived, map_chunks
from qa_pipeline.reasons.assign import CallRequest
from qa_pipeline.records import BatchSummary, CallMeta, CallMood, CallScore, CallTranscript
from qa_pipeline.scoring.rubric import Rubric, load_rubric
from qa_pipeline.scoring.score import score_call


def rescore(out: Path, rubric_path: Path, *, reviews: Reviews = MACHINE_ONLY) -> BatchSummary:
    """Score the transcripts of an earlier run into `out` again with `rubric_path`; a call without
    a transcript keeps its failure. `reviews`: what people decided, folded into the final verdicts."""
    started = time.monotonic()
    rubric = load_rubric(rubric_path)
    calls = read_run_file(out)
    with output_lock(Path(out), "qa score"), long_lived() as keep:
        remove_temp_files(Path(out))
        transcripts = read_transcripts(out)
        earlier = {s.call_id: s for s in read_scores(out)} if (Path(out) / CALLS_DIR).exists() else {}
        keep()  # the transcripts live to the end: not walked by every collection, not copied by the workers
        processed_at = now()
        scored, moods = score_with_moods([(transcripts[m.call_id], m) for m in calls if m.call_id in transcripts],
                                         rubric, processed_at, MoodReader.load())
        keep()
        scores: list[CallScore] = []
        for meta in calls:
            before = earlier.get(meta.call_id)
            if meta.call_id in scored:
                score = scored[meta.call_id]
            else:
                error = before.error if before is not None else "no transcript in the earlier run"
                score = failed_score(meta, rubric, error or "failed in the earlier run", model=None,
                                     processed_at=processed_at)
            if before is not None and before.processed_at:  # the call's first processing: its day stays
                score = replace(score, processed_at=before.processed_at)
            scores.append(score)
        index = write_outputs(out, calls, transcripts, scores, reviews, new_transcripts=False, moods=moods)
    failures = tuple((s.call_id, s.error or "") for s in scores if s.status != "ok")
    return BatchSummary(out, len(scores), len(scores) - len(failures), len(failures),
                        sum(t.duration_s for t in transcripts.values()), time.monotonic() - started, failures, index)


def score_many(work: list[tuple[CallTranscript, CallMeta]], rubric: Rubric, processed_at: str) -> dict[str, CallScore]:
    """Score many calls, on every core when there are enough of them (scoring is pure)."""
    return score_with_moods(work, rubric, processed_at, None)[0]


def score_with_moods(work: list[tuple[CallTranscript, CallMeta]], rubric: Rubric, processed_at: str,
                     moods: MoodReader | None) -> tuple[dict[str, CallScore], dict[str, tuple[CallMood, CallRequest]]]:
    """:func:`score_many`, and with a `moods` reader the mood and request of each call scored ok,
    read by the worker that scored it (its transcript at hand: no second pass over the calls)."""
    found = map_chunks(partial(_score_chunk, rubric=rubric, processed_at=processed_at, moods=moods), work)
    return {score.call_id: score for score, _m in found}, {score.call_id: m for score, m in found if m is not None}


def _score_chunk(work, *, rubric: Rubric, processed_at: str, moods: MoodReader | None
                 ) -> list[tuple[CallScore, tuple[CallMood, CallRequest] | None]]:
    found = []
    for t, meta in work:
        score = score_call(t, meta, rubric, processed_at=processed_at)
        found.append((score, moods(t) if moods is not None and score.status == "ok" else None))
    return found
