from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factories import make_failed_score, make_score, make_transcript
from qa_pipeline import tables
from qa_pipeline.errors import InputError
from qa_pipeline.records import CallTranscript


def _names_types(schema: pa.Schema) -> list[tuple[str, str, bool]]:
    return [(f.name, str(f.type), f.nullable) for f in schema]


def test_transcript_schema_exact():
    assert _names_types(tables.TRANSCRIPT_SCHEMA) == [
        ("call_id", "string", False),
        ("utterance_id", "string", False),
        ("speaker", "string", False),
        ("channel", "int32", False),
        ("start", "double", False),
        ("end", "double", False),
        ("text", "string", False),
        ("raw_text", "string", False),
        ("avg_logprob", "double", False),
        ("no_speech_prob", "double", False),
        (
            "words",
            "list<item: struct<word: string not null, start: double not null, end: double not null, "
            "prob: double not null> not null>",
            False,
        ),
        ("dropped", "bool", False),
        ("drop_reason", "string", True),
    ]


def test_transcript_calls_schema_exact():
    assert _names_types(tables.TRANSCRIPT_CALLS_SCHEMA) == [
        ("call_id", "string", False),
        ("duration_s", "double", False),
        ("n_channels", "int32", False),
        ("model", "string", False),
        ("agent_channel", "int32", True),
        ("agent_channel_method", "string", True),
        (
            "events",
            "list<item: struct<kind: string not null, start: double not null, end: double not null, "
            "channel: int32> not null>",
            False,
        ),
        ("n_utterances", "int32", False),
        ("n_dropped", "int32", False),
    ]


def test_calls_schema_exact():
    assert _names_types(tables.CALLS_SCHEMA) == [
        ("call_id", "string", False),
        ("agent_id", "string", True),
        ("agent_name", "string", True),
        ("team", "string", True),
        ("started_at", "string", True),
        ("call_date", "date32[day]", False),
        ("duration_s", "double", True),
        ("rubric_id", "string", True),
        ("rubric_version", "string", True),
        ("score", "double", True),
        ("passed", "bool", True),
        ("critical_failed", "bool", True),
        ("status", "string", False),
        ("error", "string", True),
        ("model", "string", True),
        ("processed_at", "string", True),
        ("n_review", "int32", False),
    ]


def test_items_schema_exact():
    assert _names_types(tables.ITEMS_SCHEMA) == [
        ("call_id", "string", False),
        ("call_date", "date32[day]", False),
        ("agent_id", "string", True),
        ("item_id", "string", False),
        ("item_name", "string", False),
        ("result", "string", False),
        ("points", "double", False),
        ("max_points", "double", False),
        ("critical", "bool", False),
        ("needs_review", "bool", False),
        ("matched_by", "string", True),
        ("evidence_text", "string", True),
        ("evidence_start", "double", True),
        ("evidence_end", "double", True),
        ("reason", "string", False),
    ]


def _transcripts() -> list[CallTranscript]:
    empty = CallTranscript(call_id="call_silent", duration_s=5.0, n_channels=1, utterances=(), model="base")
    return [make_transcript("call_001"), make_transcript("call_002", dropped=(), drop_reasons=(), events=()), empty]


def test_transcripts_round_trip(tmp_path: Path):
    written = _transcripts()
    tables.write_transcripts(tmp_path, written)
    assert (tmp_path / "transcripts" / "transcripts.parquet").is_file()
    assert (tmp_path / "recordings" / "recordings.parquet").is_file()
    back = tables.read_transcripts(tmp_path)
    assert back == {t.call_id: t for t in written}
    assert list(back) == [t.call_id for t in written]


def test_transcript_table_rows_and_dropped_flag():
    table = tables.transcripts_to_table([make_transcript("call_001")])
    assert table.schema == tables.TRANSCRIPT_SCHEMA
    rows = table.to_pylist()
    assert len(rows) == 9
    assert [r["dropped"] for r in rows] == [False] * 8 + [True]
    assert rows[-1]["drop_reason"] == "known_hallucination"
    assert all(r["drop_reason"] is None for r in rows[:-1])
    assert rows[0]["words"][0] == {"word": "您", "start": 0.4, "end": rows[0]["words"][0]["end"], "prob": 0.9}


def test_parquet_file_schema_is_the_declared_one(tmp_path: Path):
    tables.write_transcripts(tmp_path, _transcripts())
    tables.write_scores(tmp_path, [make_score(), make_failed_score()])
    for rel, schema in (
        ("transcripts/transcripts.parquet", tables.TRANSCRIPT_SCHEMA),
        ("recordings/recordings.parquet", tables.TRANSCRIPT_CALLS_SCHEMA),
        ("scores/calls.parquet", tables.CALLS_SCHEMA),
        ("scores/items.parquet", tables.ITEMS_SCHEMA),
    ):
        on_disk = pq.read_schema(tmp_path / rel)
        assert on_disk.names == schema.names
        # nested list fields may be renamed by the Parquet writer (item -> element); types match.
        assert pq.read_table(tmp_path / rel).cast(schema).schema == schema


def test_scores_round_trip_with_failed_call(tmp_path: Path):
    written = [make_score("call_001"), make_failed_score("call_bad"), make_score("call_002", score=55.0, passed=False)]
    tables.write_scores(tmp_path, written)
    assert tables.read_scores(tmp_path) == written


def test_failed_call_row_has_null_score_and_no_items():
    calls, items = tables.scores_to_tables([make_failed_score("call_bad")], today=date(2025, 3, 9))
    (row,) = calls.to_pylist()
    assert row["status"] == "failed"
    assert row["score"] is None and row["passed"] is None and row["critical_failed"] is None
    assert row["error"] == "decode failed: file is empty (0 bytes)"
    assert row["n_review"] == 0
    assert row["call_date"] == date(2025, 3, 4)  # processing date when started_at is missing
    assert items.num_rows == 0


def test_calls_and_items_derived_columns():
    calls, items = tables.scores_to_tables([make_score("call_001")])
    (row,) = calls.to_pylist()
    assert row["call_date"] == date(2025, 3, 3)
    assert row["n_review"] == 1
    assert items.num_rows == 6
    assert set(items.column("call_date").to_pylist()) == {date(2025, 3, 3)}
    assert set(items.column("agent_id").to_pylist()) == {"A1001"}
    na = [r for r in items.to_pylist() if r["result"] == "na"][0]
    assert na["evidence_text"] is None and na["evidence_start"] is None


@pytest.mark.parametrize(
    ("started_at", "processed_at", "expected"),
    [
        ("2025-03-03T23:59:00+08:00", None, date(2025, 3, 3)),  # local day, not UTC
        ("2025-03-03T01:00:00Z", None, date(2025, 3, 3)),
        ("20250305", None, date(2025, 3, 5)),
        ("2025/03/06 10:00", None, date(2025, 3, 6)),
        ("not a date", "2025-03-07T02:00:00+08:00", date(2025, 3, 7)),
        (None, None, date(2025, 3, 9)),
    ],
)
def test_call_date(started_at, processed_at, expected):
    assert tables.call_date(started_at, processed_at, today=date(2025, 3, 9)) == expected


def test_non_nullable_column_refuses_null():
    bad = make_score("call_001")
    bad = type(bad)(**{**bad.__dict__, "status": None})
    with pytest.raises(ValueError, match="status"):
        tables.scores_to_tables([bad])


def test_atomic_write_leaves_no_temp_files(tmp_path: Path):
    tables.write_scores(tmp_path, [make_score()])
    tables.write_scores(tmp_path, [make_score(), make_failed_score()])  # overwrite
    tables.write_transcripts(tmp_path, _transcripts())
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == [
        os.path.join("recordings", "recordings.parquet"),
        os.path.join("scores", "calls.parquet"),
        os.path.join("scores", "items.parquet"),
        os.path.join("transcripts", "transcripts.parquet"),
    ]
    assert len(tables.read_scores(tmp_path)) == 2


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path: Path, monkeypatch):
    target = tmp_path / "t.parquet"
    tables.atomic_write_table(pa.table({"a": [1]}), target)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tables.pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        tables.atomic_write_table(pa.table({"a": [2]}), target)
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]
    assert pq.read_table(target).column("a").to_pylist() == [1]


def test_read_missing_output_is_input_error(tmp_path: Path):
    with pytest.raises(InputError, match="transcripts.parquet: not found"):
        tables.read_transcripts(tmp_path)
    with pytest.raises(InputError, match="calls.parquet: not found"):
        tables.read_scores(tmp_path)


def test_read_wrong_columns_is_input_error(tmp_path: Path):
    tables.atomic_write_table(pa.table({"call_id": ["x"]}), tmp_path / "scores" / "calls.parquet")
    tables.atomic_write_table(pa.table({"call_id": ["x"]}), tmp_path / "scores" / "items.parquet")
    with pytest.raises(InputError, match="missing columns agent_id"):
        tables.read_scores(tmp_path)


def test_duckdb_reads_tables_if_installed(tmp_path: Path):
    duckdb = pytest.importorskip("duckdb")
    tables.write_scores(tmp_path, [make_score("call_001"), make_failed_score("call_bad")])
    got = duckdb.sql(
        f"select status, count(*), avg(score) from '{tmp_path / 'scores' / 'calls.parquet'}' group by status order by status"
    ).fetchall()
    assert got == [("failed", 1, None), ("ok", 1, 85.0)]
