"""Parquet tables: explicit schemas, pure record<->table converters, atomic writers, readers.

Layout under the output folder ``OUT``:

- ``transcripts/transcripts.parquet`` (:data:`TRANSCRIPT_SCHEMA`): one row per utterance, the
  kept ones and those dropped as hallucinations (``dropped=true``, with ``drop_reason``).
- ``recordings/recordings.parquet`` (:data:`TRANSCRIPT_CALLS_SCHEMA`): one row per transcribed call
  with the call-level fields of :class:`CallTranscript` (duration, channels, model, audio events,
  agent channel), so that ``read_transcripts`` rebuilds exactly what was written, including calls
  with no utterances at all.
- ``scores/calls/call_date=YYYY-MM-DD/part-0.parquet`` (:data:`CALLS_FILE_SCHEMA`): one row per
  call, a folder per day (hive partitioning): read ``scores/calls`` as one dataset and the
  partition adds ``call_date`` (:data:`CALLS_SCHEMA`).
- ``scores/items/call_date=YYYY-MM-DD/part-0.parquet`` (:data:`ITEMS_FILE_SCHEMA`): one row per
  call x rubric item, partitioned the same way (:data:`ITEMS_SCHEMA` with ``call_date``).

``call_date`` lives only in the folder name, not in the files: pyarrow and pandas refuse a
dataset whose partition key is also a column.

Runs accumulate: writing replaces the rows of the calls being written (by ``call_id``, in
whichever day they were) and keeps every other call, so several nights written into one folder
read as one dataset and writing a night again changes nothing but that night.

Row order is meaningful: utterances of a call are written in record order (kept, then dropped),
items in rubric order, and the readers keep it.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from qa_pipeline.errors import InputError
from qa_pipeline.files import write_atomic
from qa_pipeline.final_verdicts import FinalCall, final_call
from qa_pipeline.parallel import no_collection
from qa_pipeline.records import AudioEvent, CallMood, CallScore, CallTranscript, ItemResult, Utterance, Word

log = logging.getLogger("qa_pipeline")

WORD_TYPE = pa.struct(
    [
        pa.field("word", pa.string(), nullable=False),
        pa.field("start", pa.float64(), nullable=False),
        pa.field("end", pa.float64(), nullable=False),
        pa.field("prob", pa.float64(), nullable=False),
    ]
)

EVENT_TYPE = pa.struct(
    [
        pa.field("kind", pa.string(), nullable=False),
        pa.field("start", pa.float64(), nullable=False),
        pa.field("end", pa.float64(), nullable=False),
        pa.field("channel", pa.int32()),
    ]
)

TRANSCRIPT_SCHEMA = pa.schema(
    [
        pa.field("call_id", pa.string(), nullable=False),
        pa.field("utterance_id", pa.string(), nullable=False),
        pa.field("speaker", pa.string(), nullable=False),  # agent | customer | unknown
        pa.field("channel", pa.int32(), nullable=False),
        pa.field("start", pa.float64(), nullable=False),
        pa.field("end", pa.float64(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("raw_text", pa.string(), nullable=False),
        pa.field("avg_logprob", pa.float64(), nullable=False),
        pa.field("no_speech_prob", pa.float64(), nullable=False),
        pa.field("words", pa.list_(pa.field("item", WORD_TYPE, nullable=False)), nullable=False),
        pa.field("dropped", pa.bool_(), nullable=False),
        pa.field("drop_reason", pa.string()),  # null unless dropped
        pa.field("pitch_hz", pa.float64()),  # median pitch over its words (mood.voice); null: unvoiced or not measured
        pa.field("level_db", pa.float64()),  # speech level over its words, dBFS; null: not measured
    ]
)

TRANSCRIPT_CALLS_SCHEMA = pa.schema(
    [
        pa.field("call_id", pa.string(), nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("n_channels", pa.int32(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("agent_channel", pa.int32()),
        pa.field("agent_channel_method", pa.string()),  # manifest | content | default
        pa.field("events", pa.list_(pa.field("item", EVENT_TYPE, nullable=False)), nullable=False),
        pa.field("n_utterances", pa.int32(), nullable=False),
        pa.field("n_dropped", pa.int32(), nullable=False),
        # what decoding said (audio.decode): seconds decoded beside what the container states, and lost
        pa.field("decoded_s", pa.float64(), nullable=False),
        pa.field("container_s", pa.float64()),  # null: the container states none, or only estimates it
        pa.field("lost_s", pa.float64(), nullable=False),
        pa.field("decode_errors", pa.int32(), nullable=False),
        pa.field("audio_note", pa.string()),
    ]
)

PARTITION_FIELD = pa.field("call_date", pa.date32(), nullable=False)  # local day of started_at

CALLS_FILE_SCHEMA = pa.schema(
    [
        pa.field("call_id", pa.string(), nullable=False),
        pa.field("agent_id", pa.string()),
        pa.field("agent_name", pa.string()),
        pa.field("team", pa.string()),
        pa.field("started_at", pa.string()),  # as given, ISO 8601
        pa.field("duration_s", pa.float64()),
        pa.field("rubric_id", pa.string()),
        pa.field("rubric_version", pa.string()),
        pa.field("score", pa.float64()),  # 0-100, null when status=failed
        pa.field("passed", pa.bool_()),
        pa.field("critical_failed", pa.bool_()),
        pa.field("status", pa.string(), nullable=False),  # ok | failed
        pa.field("error", pa.string()),
        pa.field("model", pa.string()),
        pa.field("processed_at", pa.string()),
        pa.field("n_review", pa.int32(), nullable=False),
        pa.field("pass_score", pa.float64()),  # the rubric's pass mark the call was judged against
        # final verdicts: the machine's with people's decisions applied (final_verdicts.final_call)
        pa.field("final_score", pa.float64()),
        pa.field("final_passed", pa.bool_()),
        pa.field("final_critical_failed", pa.bool_()),
        pa.field("review_state", pa.string(), nullable=False),  # unreviewed | in_review | reviewed | disputed
        pa.field("reviewed_by", pa.string()),
        pa.field("reviewed_at", pa.string()),
        pa.field("n_changed", pa.int32(), nullable=False),  # items whose final result differs from the machine's
        pa.field("held_reason", pa.string()),  # why the whole call waits for a person (audio lost); null otherwise
        # the customer's mood (mood.model): null when the call failed or the customer said nothing
        pa.field("frustration_peak", pa.float64()),
        pa.field("frustration_end", pa.float64()),
        pa.field("deescalated", pa.bool_()),  # frustrated at the peak, calmer at the end
    ]
)
CALLS_SCHEMA = CALLS_FILE_SCHEMA.append(PARTITION_FIELD)  # as read: the partition column last

ITEMS_FILE_SCHEMA = pa.schema(
    [
        pa.field("call_id", pa.string(), nullable=False),
        pa.field("agent_id", pa.string()),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("item_name", pa.string(), nullable=False),
        pa.field("result", pa.string(), nullable=False),  # pass | fail | na
        pa.field("points", pa.float64(), nullable=False),
        pa.field("max_points", pa.float64(), nullable=False),
        pa.field("critical", pa.bool_(), nullable=False),
        pa.field("needs_review", pa.bool_(), nullable=False),
        pa.field("matched_by", pa.string()),
        pa.field("evidence_text", pa.string()),
        pa.field("evidence_start", pa.float64()),
        pa.field("evidence_end", pa.float64()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("reason_code", pa.string()),  # stable id of `reason` (message catalogue), any language
        # the final verdict and who decided it (null: nobody, the machine's verdict stands)
        pa.field("final_result", pa.string(), nullable=False),  # pass | fail | na
        pa.field("final_points", pa.float64(), nullable=False),
        pa.field("decision", pa.string()),  # confirm | override | accept | reject
        pa.field("decided_by", pa.string()),
        pa.field("decided_role", pa.string()),  # inspector | supervisor
        pa.field("decided_at", pa.string()),
        pa.field("decision_reason", pa.string()),
        pa.field("decision_stale", pa.bool_(), nullable=False),  # decided on an earlier machine verdict
        pa.field("dispute", pa.string()),  # open | accepted | rejected
        pa.field("held", pa.bool_(), nullable=False),  # an untrusted item's fail waiting for a person: not in final_score
    ]
)
ITEMS_SCHEMA = ITEMS_FILE_SCHEMA.append(PARTITION_FIELD)

TRANSCRIPTS_FILE = Path("transcripts") / "transcripts.parquet"
TRANSCRIPT_CALLS_FILE = Path("recordings") / "recordings.parquet"  # not in transcripts/: that folder reads as one dataset
CALLS_DIR = Path("scores") / "calls"  # call_date=YYYY-MM-DD/part-0.parquet under it
ITEMS_DIR = Path("scores") / "items"
PART_FILE = "part-0.parquet"


# ---------------------------------------------------------------------------------------------
# dates


def _parse_date(value: str | None) -> date | None:
    """The calendar date of an ISO 8601 timestamp (in its own offset), or of YYYYMMDD; else None."""
    if not value:
        return None
    text = value.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    for fmt, width in (("%Y-%m-%d", 10), ("%Y/%m/%d", 10), ("%Y%m%d", 8)):
        try:
            return datetime.strptime(text[:width], fmt).date()
        except ValueError:
            continue
    return None


def call_date(started_at: str | None, processed_at: str | None = None, today: date | None = None) -> date:
    """The day a call belongs to: from ``started_at``, else the processing date.

    The processing date is ``processed_at``'s date when it parses, else ``today`` (default: the
    local date now).  The date is taken in the timestamp's own offset (the call centre's local day),
    not converted to UTC.
    """
    found = _parse_date(started_at) or _parse_date(processed_at)
    if found is not None:
        return found
    return today or date.today()


# ---------------------------------------------------------------------------------------------
# records -> tables (pure)


def build_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """A table in ``schema``; pyarrow does not enforce ``nullable=False`` itself, so check it here."""
    table = pa.Table.from_pylist(rows, schema=schema)
    for field in schema:
        if not field.nullable and table.column(field.name).null_count:
            raise ValueError(f"column {field.name!r} must not be null")
    return table


_UTTERANCE_COLUMNS = ("call_id", "utterance_id", "speaker", "channel", "start", "end", "text", "raw_text",
                      "avg_logprob", "no_speech_prob")


def transcripts_to_table(transcripts: Iterable[CallTranscript]) -> pa.Table:
    """One row per utterance (kept, then dropped, per call) in :data:`TRANSCRIPT_SCHEMA`, built a
    column at a time (no dict per row and word: at 10,000 calls that was seconds)."""
    rows: list[tuple[Utterance, bool, str | None]] = []
    for t in transcripts:
        if len(t.drop_reasons) != len(t.dropped):
            raise ValueError(
                f"{t.call_id}: {len(t.dropped)} dropped utterances but {len(t.drop_reasons)} drop reasons"
            )
        rows.extend((u, False, None) for u in t.utterances)
        rows.extend((u, True, r) for u, r in zip(t.dropped, t.drop_reasons))
    columns: dict[str, pa.Array] = {
        name: pa.array([getattr(u, name) for u, _d, _r in rows], TRANSCRIPT_SCHEMA.field(name).type)
        for name in _UTTERANCE_COLUMNS
    }
    words = [w for u, _d, _r in rows for w in u.words]
    offsets = [0]
    for u, _d, _r in rows:
        offsets.append(offsets[-1] + len(u.words))
    values = pa.StructArray.from_arrays(
        [pa.array([w.text for w in words], pa.string()), pa.array([w.start for w in words], pa.float64()),
         pa.array([w.end for w in words], pa.float64()), pa.array([w.prob for w in words], pa.float64())],
        fields=list(WORD_TYPE))
    columns["words"] = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values,
                                                type=TRANSCRIPT_SCHEMA.field("words").type)
    columns["dropped"] = pa.array([d for _u, d, _r in rows], pa.bool_())
    columns["drop_reason"] = pa.array([r for _u, _d, r in rows], pa.string())
    columns["pitch_hz"] = pa.array([u.pitch_hz for u, _d, _r in rows], pa.float64())
    columns["level_db"] = pa.array([u.level_db for u, _d, _r in rows], pa.float64())
    table = pa.Table.from_arrays([columns[name] for name in TRANSCRIPT_SCHEMA.names], schema=TRANSCRIPT_SCHEMA)
    for field in TRANSCRIPT_SCHEMA:
        if not field.nullable and table.column(field.name).null_count:
            raise ValueError(f"column {field.name!r} must not be null")
    return table


def transcript_calls_to_table(transcripts: Iterable[CallTranscript]) -> pa.Table:
    """One row per call with the call-level transcript fields, in :data:`TRANSCRIPT_CALLS_SCHEMA`."""
    rows = [
        {
            "call_id": t.call_id,
            "duration_s": t.duration_s,
            "n_channels": t.n_channels,
            "model": t.model,
            "agent_channel": t.agent_channel,
            "agent_channel_method": t.agent_channel_method,
            "events": [
                {"kind": e.kind, "start": e.start, "end": e.end, "channel": e.channel} for e in t.events
            ],
            "n_utterances": len(t.utterances),
            "n_dropped": len(t.dropped),
            "decoded_s": t.decoded_s if t.decoded_s is not None else t.duration_s,
            "container_s": t.container_s,
            "lost_s": t.lost_s,
            "decode_errors": t.decode_errors,
            "audio_note": t.audio_note,
        }
        for t in transcripts
    ]
    return build_table(rows, TRANSCRIPT_CALLS_SCHEMA)


def scores_to_tables(scores: Iterable[CallScore], today: date | None = None,
                     finals: Mapping[str, FinalCall] | None = None,
                     moods: Mapping[str, CallMood] | None = None) -> tuple[pa.Table, pa.Table]:
    """``(calls, items)`` tables in :data:`CALLS_SCHEMA` and :data:`ITEMS_SCHEMA`.

    ``today`` is the fallback ``call_date`` for calls with neither ``started_at`` nor
    ``processed_at`` (default: the local date now). ``finals`` gives the final verdicts of the
    calls people reviewed (:func:`qa_pipeline.final_verdicts.final_call`); any other call's final
    verdicts are the machine's. ``moods``: the customer's mood per call (mood.model.call_mood).
    """
    calls: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for s in scores:
        day = call_date(s.started_at, s.processed_at, today)
        final = (finals or {}).get(s.call_id) or final_call(s, ())
        calls.append(
            {
                "call_id": s.call_id,
                "agent_id": s.agent_id,
                "agent_name": s.agent_name,
                "team": s.team,
                "started_at": s.started_at,
                "duration_s": s.duration_s,
                "rubric_id": s.rubric_id,
                "rubric_version": s.rubric_version,
                "score": s.score,
                "passed": s.passed,
                "critical_failed": s.critical_failed,
                "status": s.status,
                "error": s.error,
                "model": s.model,
                "processed_at": s.processed_at,
                "n_review": sum(1 for i in s.items if i.needs_review),
                "pass_score": s.pass_score,
                "final_score": final.score,
                "final_passed": final.passed,
                "final_critical_failed": final.critical_failed,
                "review_state": final.review_state,
                "reviewed_by": final.reviewed.actor if final.reviewed else None,
                "reviewed_at": final.reviewed.at if final.reviewed else None,
                "n_changed": sum(1 for f in final.items if f.changed),
                "held_reason": s.held_reason,
                **_mood_columns((moods or {}).get(s.call_id)),
                "call_date": day,
            }
        )
        for i, f in zip(s.items, final.items):
            if i.call_id != s.call_id:
                raise ValueError(f"item {i.item_id} has call_id {i.call_id!r} inside call {s.call_id!r}")
            d = f.decision
            items.append(
                {
                    "call_id": s.call_id,
                    "agent_id": s.agent_id,
                    "item_id": i.item_id,
                    "item_name": i.item_name,
                    "result": i.result,
                    "points": i.points,
                    "max_points": i.max_points,
                    "critical": i.critical,
                    "needs_review": i.needs_review,
                    "matched_by": i.matched_by,
                    "evidence_text": i.evidence_text,
                    "evidence_start": i.evidence_start,
                    "evidence_end": i.evidence_end,
                    "reason": i.reason,
                    "reason_code": i.reason_code,
                    "final_result": f.result,
                    "final_points": f.points,
                    "decision": d.action if d else None,
                    "decided_by": d.actor if d else None,
                    "decided_role": d.role if d else None,
                    "decided_at": d.at if d else None,
                    "decision_reason": d.reason if d else None,
                    "decision_stale": f.stale,
                    "dispute": f.dispute.state if f.dispute else None,
                    "held": f.held,
                    "call_date": day,
                }
            )
    return (
        build_table(calls, CALLS_SCHEMA),
        build_table(items, ITEMS_SCHEMA),
    )


def _mood_columns(mood: CallMood | None) -> dict[str, Any]:
    if mood is None:
        return {"frustration_peak": None, "frustration_end": None, "deescalated": None}
    return {"frustration_peak": mood.peak, "frustration_end": mood.end,
            "deescalated": mood.deescalated if mood.peak is not None else None}


# ---------------------------------------------------------------------------------------------
# tables -> records (pure)


def table_to_transcripts(utterances: pa.Table, calls: pa.Table) -> dict[str, CallTranscript]:
    """Inverse of :func:`transcripts_to_table` + :func:`transcript_calls_to_table`."""
    with no_collection():  # a Word per character: millions of objects, no cycles
        return _table_to_transcripts(utterances, calls)


def _table_to_transcripts(utterances: pa.Table, calls: pa.Table) -> dict[str, CallTranscript]:
    by_call: dict[str, tuple[list[Utterance], list[Utterance], list[str]]] = {}
    names = ("utterance_id", "call_id", "speaker", "channel", "start", "end", "text", "raw_text", "avg_logprob",
             "no_speech_prob")
    columns = [utterances.column(name).to_pylist() for name in names]
    n = utterances.num_rows
    per_row: list[tuple[Word, ...]] = [()] * n
    if "words" in utterances.column_names and n:  # a column at a time: a dict per word is what costs
        lists = utterances.column("words").combine_chunks()
        flat = lists.flatten()
        all_words = list(map(Word, *(flat.field(k).to_pylist() for k in ("word", "start", "end", "prob"))))
        ends = pc.cumulative_sum(pc.list_value_length(lists).fill_null(0)).to_pylist()
        per_row = [tuple(all_words[a:b]) for a, b in zip([0, *ends[:-1]], ends)]
    extra = [utterances.column(name).to_pylist() for name in ("pitch_hz", "level_db", "dropped", "drop_reason")]
    for *values, words, pitch_hz, level_db, is_dropped, drop_reason in zip(*columns, per_row, *extra):
        kept, dropped, reasons = by_call.setdefault(values[1], ([], [], []))
        u = Utterance(*values, words=words, pitch_hz=pitch_hz, level_db=level_db)
        if is_dropped:
            dropped.append(u)
            reasons.append(drop_reason or "")
        else:
            kept.append(u)
    out: dict[str, CallTranscript] = {}
    for row in calls.to_pylist():
        call_id = row["call_id"]
        kept, dropped, reasons = by_call.pop(call_id, ([], [], []))
        if (len(kept), len(dropped)) != (row["n_utterances"], row["n_dropped"]):
            raise InputError(
                f"transcripts for {call_id}: expected {row['n_utterances']} utterances and "
                f"{row['n_dropped']} dropped, found {len(kept)} and {len(dropped)}"
            )
        out[call_id] = CallTranscript(
            call_id=call_id,
            duration_s=row["duration_s"],
            n_channels=row["n_channels"],
            utterances=tuple(kept),
            model=row["model"],
            events=tuple(AudioEvent(e["kind"], e["start"], e["end"], e["channel"]) for e in row["events"]),
            agent_channel=row["agent_channel"],
            agent_channel_method=row["agent_channel_method"],
            dropped=tuple(dropped),
            drop_reasons=tuple(reasons),
            decoded_s=row["decoded_s"],
            container_s=row["container_s"],
            lost_s=row["lost_s"],
            decode_errors=row["decode_errors"],
            audio_note=row["audio_note"],
        )
    if by_call:
        raise InputError(f"utterances for calls missing from the transcript call table: {sorted(by_call)[:5]}")
    return out


_ITEM_FIELDS = tuple(f.name for f in dataclasses.fields(ItemResult))


def tables_to_scores(calls: pa.Table, items: pa.Table) -> list[CallScore]:
    """Inverse of :func:`scores_to_tables`: the machine's scores (``call_date``, ``n_review`` and
    the final-verdict columns are derived, not read back)."""
    by_call: dict[str, list[ItemResult]] = {}
    # a column at a time (a dict per row is what costs): every ItemResult field is a column
    for item in map(ItemResult, *(items.column(name).to_pylist() for name in _ITEM_FIELDS)):
        by_call.setdefault(item.call_id, []).append(item)
    scores = [
        CallScore(
            call_id=row["call_id"],
            status=row["status"],
            agent_id=row["agent_id"],
            agent_name=row["agent_name"],
            team=row["team"],
            started_at=row["started_at"],
            duration_s=row["duration_s"],
            rubric_id=row["rubric_id"],
            rubric_version=row["rubric_version"],
            score=row["score"],
            passed=row["passed"],
            critical_failed=row["critical_failed"],
            pass_score=row["pass_score"],
            error=row["error"],
            model=row["model"],
            processed_at=row["processed_at"],
            items=tuple(by_call.pop(row["call_id"], ())),
            held_reason=row["held_reason"],
        )
        for row in calls.to_pylist()
    ]
    if by_call:
        raise InputError(f"items for calls missing from the calls table: {sorted(by_call)[:5]}")
    return scores


# ---------------------------------------------------------------------------------------------
# files


def atomic_write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` as Parquet, atomically (:func:`qa_pipeline.files.write_atomic`)."""
    write_atomic(path, lambda f: pq.write_table(table, f))
    log.debug("wrote %s (%d rows)", path, table.num_rows)


def _read(path: Path, schema: pa.Schema) -> pa.Table:
    if not path.is_file():
        raise InputError(f"{path}: not found (was this folder written by `qa run`?)")
    try:
        present = set(pq.read_schema(path).names)
        table = pq.read_table(path, columns=[name for name in schema.names if name in present])
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{path}: not a readable Parquet file: {e}") from e
    table = _upgrade(table)
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise InputError(f"{path}: missing columns {', '.join(missing)}")
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
        raise InputError(f"{path}: columns do not match the expected schema: {e}") from e


# Columns added to the score tables after they were first written: a file without them reads as
# a night nobody reviewed (final verdicts = the machine's).
_ADDED_COLUMNS = {
    "pass_score": lambda t: pa.nulls(t.num_rows, pa.float64()),
    "final_score": lambda t: t.column("score"),
    "final_passed": lambda t: t.column("passed"),
    "final_critical_failed": lambda t: t.column("critical_failed"),
    "review_state": lambda t: pa.array(["unreviewed"] * t.num_rows, pa.string()),
    "reviewed_by": lambda t: pa.nulls(t.num_rows, pa.string()),
    "reviewed_at": lambda t: pa.nulls(t.num_rows, pa.string()),
    "n_changed": lambda t: pa.array([0] * t.num_rows, pa.int32()),
    "final_result": lambda t: t.column("result"),
    "final_points": lambda t: t.column("points"),
    "decision": lambda t: pa.nulls(t.num_rows, pa.string()),
    "decided_by": lambda t: pa.nulls(t.num_rows, pa.string()),
    "decided_role": lambda t: pa.nulls(t.num_rows, pa.string()),
    "decided_at": lambda t: pa.nulls(t.num_rows, pa.string()),
    "decision_reason": lambda t: pa.nulls(t.num_rows, pa.string()),
    "decision_stale": lambda t: pa.array([False] * t.num_rows, pa.bool_()),
    "dispute": lambda t: pa.nulls(t.num_rows, pa.string()),
    "reason_code": lambda t: pa.nulls(t.num_rows, pa.string()),
    "held": lambda t: pa.array([False] * t.num_rows, pa.bool_()),
    "held_reason": lambda t: pa.nulls(t.num_rows, pa.string()),
    "frustration_peak": lambda t: pa.nulls(t.num_rows, pa.float64()),
    "frustration_end": lambda t: pa.nulls(t.num_rows, pa.float64()),
    "deescalated": lambda t: pa.nulls(t.num_rows, pa.bool_()),
}
_CALL_COLUMNS_ADDED = ("pass_score", "final_score", "final_passed", "final_critical_failed", "review_state",
                       "reviewed_by", "reviewed_at", "n_changed", "held_reason", "frustration_peak", "frustration_end",
                       "deescalated")
# recordings written before decoding said what it lost: everything decoded, as that decode believed
_RECORDING_COLUMNS_ADDED = {
    "decoded_s": lambda t: t.column("duration_s"),
    "container_s": lambda t: pa.nulls(t.num_rows, pa.float64()),
    "lost_s": lambda t: pa.array([0.0] * t.num_rows, pa.float64()),
    "decode_errors": lambda t: pa.array([0] * t.num_rows, pa.int32()),
    "audio_note": lambda t: pa.nulls(t.num_rows, pa.string()),
}


def _upgrade(table: pa.Table) -> pa.Table:
    """A score or recordings table written before some of its columns existed, with them added (and a
    transcripts table written before voices were measured, with null voices)."""
    names = table.column_names
    if "utterance_id" in names:
        for name in ("pitch_hz", "level_db"):
            if name not in names:
                table = table.append_column(name, pa.nulls(table.num_rows, pa.float64()))
        return table
    if "n_utterances" in names:
        for name, make in _RECORDING_COLUMNS_ADDED.items():
            if name not in names:
                table = table.append_column(name, make(table))
        return table
    kind = "calls" if "passed" in names else "items" if "result" in names else None
    if kind is None:
        return table
    for name, make in _ADDED_COLUMNS.items():
        if (name in _CALL_COLUMNS_ADDED) == (kind == "calls") and name not in names:
            table = table.append_column(name, make(table))
    return table


def _without_calls(table: pa.Table, call_ids: pa.Array) -> pa.Table:
    """``table`` without the rows of ``call_ids``, in its order."""
    return table.filter(pc.invert(pc.is_in(table.column("call_id"), value_set=call_ids)))


def _merge_into_file(table: pa.Table, path: Path, schema: pa.Schema, replaces: pa.Array) -> None:
    """Write the rows already in ``path`` except those of ``replaces``, then ``table``."""
    if path.exists():
        table = pa.concat_tables([_without_calls(_read(path, schema), replaces), table])
    atomic_write_table(table, path)


def _call_ids(ids: Iterable[str]) -> pa.Array:
    return pa.array(list(ids), pa.string())


def write_transcripts(out: Path, transcripts: list[CallTranscript], replaces: Iterable[str] = ()) -> None:
    """Add ``transcripts`` to ``out/transcripts/transcripts.parquet`` and ``out/recordings/recordings.parquet``.

    A call already there is replaced (all its utterances), and so is any call in ``replaces``
    (e.g. every call of the run: one that failed this time has no transcript and loses its old
    one); other calls are kept.
    """
    out = Path(out)
    dropped = _call_ids({*replaces, *(t.call_id for t in transcripts)})
    _merge_into_file(transcripts_to_table(transcripts), out / TRANSCRIPTS_FILE, TRANSCRIPT_SCHEMA, dropped)
    _merge_into_file(
        transcript_calls_to_table(transcripts), out / TRANSCRIPT_CALLS_FILE, TRANSCRIPT_CALLS_SCHEMA, dropped
    )


def read_transcripts(out: Path, call_ids: Iterable[str] | None = None, *, words: bool = True
                     ) -> dict[str, CallTranscript]:
    """Every transcript that :func:`write_transcripts` wrote under ``out``, keyed by call_id (only
    those of ``call_ids`` when given).

    ``words=False`` leaves out the word timestamps (every utterance's ``words`` is empty): what a
    page showing the transcript needs, read some 20 times faster.
    """
    out = Path(out)
    schema = TRANSCRIPT_SCHEMA if words else TRANSCRIPT_SCHEMA.remove(TRANSCRIPT_SCHEMA.get_field_index("words"))
    utterances = _read(out / TRANSCRIPTS_FILE, schema)
    calls = _read(out / TRANSCRIPT_CALLS_FILE, TRANSCRIPT_CALLS_SCHEMA)
    if call_ids is not None:
        wanted = _call_ids(set(call_ids))
        utterances = utterances.filter(pc.is_in(utterances["call_id"], value_set=wanted))
        calls = calls.filter(pc.is_in(calls["call_id"], value_set=wanted))
    return table_to_transcripts(utterances, calls)


# ---------------------------------------------------------------------------------------------
# date-partitioned tables (scores)

_PARTITION_DIR = re.compile(r"call_date=(\d{4}-\d{2}-\d{2})")


def partition_path(root: Path, day: date) -> Path:
    """``root/call_date=YYYY-MM-DD/part-0.parquet``."""
    return Path(root) / f"{PARTITION_FIELD.name}={day.isoformat()}" / PART_FILE


def partitions(root: Path) -> list[tuple[date, Path]]:
    """``(day, part file)`` for each day folder under ``root`` that holds one, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found: list[tuple[date, Path]] = []
    for folder in root.iterdir():
        match = _PARTITION_DIR.fullmatch(folder.name)
        if folder.name.startswith(f"{PARTITION_FIELD.name}=") and match is None:
            raise InputError(f"{folder}: not a call_date=YYYY-MM-DD partition folder")
        if match is not None and (folder / PART_FILE).is_file():
            try:
                found.append((date.fromisoformat(match.group(1)), folder / PART_FILE))
            except ValueError as e:
                raise InputError(f"{folder}: not a valid date: {e}") from e
    return sorted(found)


def _with_date(table: pa.Table, day: date) -> pa.Table:
    return table.append_column(PARTITION_FIELD, pa.array([day] * table.num_rows, pa.date32()))


def _rows_of_day(table: pa.Table, day: date) -> pa.Table:
    """Rows of ``table`` (with ``call_date``) for ``day``, without the ``call_date`` column."""
    rows = table.filter(pc.equal(table.column(PARTITION_FIELD.name), pa.scalar(day, pa.date32())))
    return rows.drop_columns([PARTITION_FIELD.name])


def _write_part(part: pa.Table, path: Path) -> None:
    """Write a day's part file, or remove it (and its empty folder) when no row is left."""
    if part.num_rows:
        atomic_write_table(part, path)
        return
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass  # not empty: something else lives there, leave it


def write_partitioned(table: pa.Table, root: Path, file_schema: pa.Schema, replaces: pa.Array) -> None:
    """Merge ``table`` (rows with ``call_date``) into the day folders under ``root``.

    Rows of the calls in ``replaces`` are removed from every day first (a call whose date changed
    moves), then each day of ``table`` gets its rows appended.  Only touched days are rewritten,
    each atomically.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    days = set(table.column(PARTITION_FIELD.name).to_pylist())
    for day, path in partitions(root):
        old = _read(path, file_schema)
        kept = _without_calls(old, replaces)
        if day in days:
            _write_part(pa.concat_tables([kept, _rows_of_day(table, day)]), path)
            days.discard(day)
        elif kept.num_rows != old.num_rows:
            _write_part(kept, path)
    for day in sorted(days):
        _write_part(_rows_of_day(table, day), partition_path(root, day))


def read_partitioned(root: Path, file_schema: pa.Schema) -> pa.Table:
    """All days under ``root`` as one table (``file_schema`` + ``call_date``), oldest day first."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not found (was this folder written by `qa run`?)")
    parts = [_with_date(_read(path, file_schema), day) for day, path in partitions(root)]
    schema = file_schema.append(PARTITION_FIELD)
    return pa.concat_tables(parts) if parts else schema.empty_table()


def write_scores(out: Path, scores: list[CallScore], today: date | None = None,
                 finals: Mapping[str, FinalCall] | None = None, moods: Mapping[str, CallMood] | None = None) -> None:
    """Add ``scores`` to ``out/scores/calls/`` and ``out/scores/items/`` (one folder per call date).

    A call already there (any day) is replaced, with all its items; other calls are kept, so
    writing several nights into ``out`` accumulates and writing a night again is idempotent.
    ``finals``: the calls' final verdicts where people reviewed them (see :func:`scores_to_tables`).
    """
    out = Path(out)
    calls, items = scores_to_tables(scores, today, finals, moods)
    replaces = _call_ids(s.call_id for s in scores)
    write_partitioned(items, out / ITEMS_DIR, ITEMS_FILE_SCHEMA, replaces)
    write_partitioned(calls, out / CALLS_DIR, CALLS_FILE_SCHEMA, replaces)
    for day, _path in partitions(out / CALLS_DIR):  # a day whose calls all failed: its items, none, with the schema
        if not partition_path(out / ITEMS_DIR, day).exists():
            atomic_write_table(ITEMS_FILE_SCHEMA.empty_table(), partition_path(out / ITEMS_DIR, day))


def read_score_tables(out: Path) -> tuple[pa.Table, pa.Table]:
    """``(calls, items)`` of every day under ``out``, in :data:`CALLS_SCHEMA` and :data:`ITEMS_SCHEMA`."""
    out = Path(out)
    return read_partitioned(out / CALLS_DIR, CALLS_FILE_SCHEMA), read_partitioned(out / ITEMS_DIR, ITEMS_FILE_SCHEMA)


def read_scores(out: Path) -> list[CallScore]:
    """Every call score under ``out``: by call date, then in written order."""
    return tables_to_scores(*read_score_tables(out))
