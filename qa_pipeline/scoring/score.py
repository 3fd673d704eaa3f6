"""Score one call against a rubric: a pure function of (transcript, metadata, rubric).

Every item gets pass / fail / n/a.  Every pass and fail carries evidence (quoted words and their
start/end seconds, from word timestamps where the transcript has them) and a one-line reason; an
n/a carries its reason.  Reasons are written in the rubric's language from the message catalogue
(messages.py) and keep a stable `reason_code`.  Utterances whose speaker is `unknown` (mono calls
before diarization) are eligible for both agent and customer checks.

Each item's check is judged by its kind (checks/<kind>.py, found by checks.kind_of); this module
only applies the item's `when` (when.py) and turns verdicts into points and a call's outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from qa_pipeline import messages
from qa_pipeline.records import FAIL, NA, PASS, CallMeta, CallScore, CallTranscript, ItemResult
from qa_pipeline.scoring.checks import kind_of
from qa_pipeline.scoring.checks.context import Call, Verdict
from qa_pipeline.scoring.rubric_records import Item, Rubric
from qa_pipeline.scoring.when import trigger

BY_MODEL = "model"


def _verdict(call: Call, item: Item) -> Verdict:
    after = None
    prefix = ""
    by_model = False
    if item.when is not None:
        trig = trigger(call, item.when)
        if trig is None:
            reason = item.when.reason if item.when.reason is not None else call.say("when.not_triggered")
            return call.verdict(NA, "when.not_triggered", reason=reason)
        after, prefix, by_model = trig
    v = kind_of(item.check).judge(call, item, item.check, after)
    if prefix and v.result != NA:
        v = replace(v, reason=call.join([prefix, v.reason]),
                    matched_by=BY_MODEL if by_model and v.result == FAIL else v.matched_by)
    if v.needs_review:
        v = replace(v, reason=call.join([v.reason, call.say("review.low_confidence")]))
    return v


def _item_result(call: Call, item: Item) -> ItemResult:
    v = _verdict(call, item)
    if v.result == PASS:
        points = item.weight
    elif v.result == FAIL and v.deduction is not None:
        points = max(0.0, item.weight - v.deduction)
    else:
        points = 0.0
    return ItemResult(
        call_id=call.t.call_id,
        item_id=item.id,
        item_name=item.name,
        result=v.result,
        points=points,
        max_points=item.weight,
        reason=v.reason,
        evidence_text=v.evidence_text,
        evidence_start=None if v.start is None else round(v.start, 2),
        evidence_end=None if v.end is None else round(v.end, 2),
        critical=item.critical or v.critical_hit,
        needs_review=v.needs_review,
        matched_by=v.matched_by,
        reason_code=v.code,
    )


def call_outcome(items: Sequence[ItemResult], pass_score: float) -> tuple[float, bool, bool]:
    """The rubric's rule for a call: (score 0-100, passed, critical_failed) from its item verdicts.

    n/a items count neither way; a call passes at ``pass_score`` or above unless a critical item
    failed. Used for the machine's verdicts and for the final ones with people's decisions applied.
    """
    applicable = [r for r in items if r.result != NA]
    total = sum(r.max_points for r in applicable)
    score = 100.0 if total == 0 else round(100.0 * sum(r.points for r in applicable) / total, 1)
    critical_failed = any(r.result == FAIL and r.critical for r in items)
    return score, score >= pass_score and not critical_failed, critical_failed


# A call with this much audio lost (damaged packets, a file cut short) is held for a person: an item
# may have failed only because its words were in what could not be decoded. Less is shorter than a
# syllable (a damaged MP3 or AAC frame or two, 36-128 ms, which ffmpeg also drops without a word).
HOLD_LOST_AUDIO_S = 0.25


def held_reason(transcript: CallTranscript, language: str) -> str | None:
    """Why the whole call waits for a person before its fails count, or None."""
    if transcript.lost_s < HOLD_LOST_AUDIO_S:
        return None
    decoded = transcript.decoded_s if transcript.decoded_s is not None else transcript.duration_s
    return messages.text(language, "review.audio_lost", lost=f"{transcript.lost_s:.1f}",
                         total=f"{decoded + transcript.lost_s:.1f}")


def score_call(transcript: CallTranscript, meta: CallMeta, rubric: Rubric, *, processed_at: str) -> CallScore:
    """One CallScore with one ItemResult per rubric item, in rubric order."""
    call = Call(transcript, meta, rubric)
    items = tuple(_item_result(call, item) for item in rubric.items)
    score, passed, critical_failed = call_outcome(items, rubric.pass_score)
    return CallScore(
        call_id=transcript.call_id,
        status="ok",
        agent_id=meta.agent_id,
        agent_name=meta.agent_name,
        team=meta.team,
        started_at=meta.started_at,
        duration_s=transcript.duration_s,
        rubric_id=rubric.id,
        rubric_version=rubric.version,
        score=score,
        passed=passed,
        critical_failed=critical_failed,
        pass_score=rubric.pass_score,
        model=transcript.model,
        processed_at=processed_at,
        items=items,
        held_reason=held_reason(transcript, rubric.language),
    )
