from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factories import make_failed_score, make_score, make_transcript
from qa_pipeline.output import tables
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
        ("decoded_s", "double", False),
        ("container_s", "double", True),
        ("lost_s", "double", False),
        ("decode_errors", "int32", False),
        ("audio_note", "string", True),
    ]


CALLS_FILE_COLUMNS = [
    ("call_id", "string", False),
    ("agent_id", "string", True),
    ("agent_name", "string", True),
    ("team", "string", True),
    ("started_at", "string", True),
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
    ("pass_score", "double", True),
    ("final_score", "double", True),
    ("final_passed", "bool", True),
    ("final_critical_failed", "bool", True),
    ("review_state", "string", False),
    ("reviewed_by", "string", True),
    ("reviewed_at", "string", True),
    ("n_changed", "int32", False),
    ("held_reason", "string", True),
]

ITEMS_FILE_COLUMNS = [
    ("call_id", "string", False),
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
    ("reason_code", "string", True),
    ("final_result", "string", False),
    ("final_points", "double", False),
    ("decision", "string", True),
    ("decided_by", "string", True),
    ("decided_role", "string", True),
    ("decided_at", "string", True),
    ("decision_reason", "string", True),
    ("decision_stale", "bool", False),
    ("dispute", "string", True),
    ("held", "bool", False),
]

CALL_DATE = ("call_date", "date32[day]", False)


def test_calls_schema_exact():
    assert _names_types(tables.CALLS_FILE_SCHEMA) == CALLS_FILE_COLUMNS
    assert _names_types(tables.CALLS_SCHEMA) == CALLS_FILE_COLUMNS + [CALL_DATE]  # the partition column last


def test_items_schema_exact():
    assert _names_types(tables.ITEMS_FILE_SCHEMA) == ITEMS_FILE_COLUMNS
    assert _names_types(tables.ITEMS_SCHEMA) == ITEMS_FILE_COLUMNS + [CALL_DATE]


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
    files = [
        ("transcripts/transcripts.parquet", tables.TRANSCRIPT_SCHEMA),
        ("recordings/recordings.parquet", tables.TRANSCRIPT_CALLS_SCHEMA),
        ("scores/calls/call_date=2025-03-03/part-0.parquet", tables.CALLS_FILE_SCHEMA),
        ("scores/calls/call_date=2025-03-04/part-0.parquet", tables.CALLS_FILE_SCHEMA),
        ("scores/items/call_date=2025-03-03/part-0.parquet", tables.ITEMS_FILE_SCHEMA),
    ]
    for rel, schema in files:
        on_disk = pq.read_schema(tmp_path / rel)
        assert on_disk.names == schema.names
        # nested list fields may be renamed by the Parquet writer (item -> element); types match.
        assert pq.read_table(tmp_path / rel).cast(schema).schema == schema


def test_scores_round_trip_with_failed_call(tmp_path: Path):
    written = [make_score("call_001"), make_failed_score("call_bad"), make_score("call_002", score=55.0, passed=False)]
    tables.write_scores(tmp_path, written)
    # by call date (call_bad has no started_at: the day it was processed, 03-04), then written order
    assert tables.read_scores(tmp_path) == [written[0], written[2], written[1]]


def test_score_tables_read_back_with_call_date(tmp_path: Path):
    tables.write_scores(tmp_path, [make_score("call_001"), make_failed_score("call_bad")])
    calls, items = tables.read_score_tables(tmp_path)
    assert calls.schema == tables.CALLS_SCHEMA and items.schema == tables.ITEMS_SCHEMA
    assert calls.column("call_date").to_pylist() == [date(2025, 3, 3), date(2025, 3, 4)]
    assert set(items.column("call_date").to_pylist()) == {date(2025, 3, 3)}


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


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_atomic_write_leaves_no_temp_files(tmp_path: Path):
    tables.write_scores(tmp_path, [make_score()])
    tables.write_scores(tmp_path, [make_score(), make_failed_score()])  # rewrite
    tables.write_transcripts(tmp_path, _transcripts())
    tables.write_transcripts(tmp_path, _transcripts())
    assert _files(tmp_path) == [
        "recordings/recordings.parquet",
        "scores/calls/call_date=2025-03-03/part-0.parquet",
        "scores/calls/call_date=2025-03-04/part-0.parquet",
        "scores/items/call_date=2025-03-03/part-0.parquet",
        "scores/items/call_date=2025-03-04/part-0.parquet",  # the failed call's day: no items, the schema
        "transcripts/transcripts.parquet",
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
    with pytest.raises(InputError, match="calls: not found"):
        tables.read_scores(tmp_path)


def test_read_wrong_columns_is_input_error(tmp_path: Path):
    for name in ("calls", "items"):
        tables.atomic_write_table(
            pa.table({"call_id": ["x"]}), tmp_path / "scores" / name / "call_date=2025-03-03" / "part-0.parquet"
        )
    with pytest.raises(InputError, match="missing columns agent_id"):
        tables.read_scores(tmp_path)


def test_bad_partition_folder_is_input_error(tmp_path: Path):
    tables.write_scores(tmp_path, [make_score()])
    (tmp_path / "scores" / "calls" / "call_date=March").mkdir()
    with pytest.raises(InputError, match="call_date=March: not a call_date=YYYY-MM-DD partition folder"):
        tables.read_scores(tmp_path)


def test_empty_batch_reads_back_empty(tmp_path: Path):
    tables.write_scores(tmp_path, [])
    assert tables.read_scores(tmp_path) == []
    calls, items = tables.read_score_tables(tmp_path)
    assert calls.schema == tables.CALLS_SCHEMA and calls.num_rows == 0 and items.num_rows == 0


# ---------------------------------------------------------------------------------------------
# several nights in one output folder

NIGHT_1 = "2025-03-03T{}:00:00+08:00"
NIGHT_2 = "2025-03-04T{}:00:00+08:00"


def _night_1(score_a: float = 85.0) -> list:
    return [
        make_score("n1_a", score=score_a, started_at=NIGHT_1.format(9)),
        make_score("n1_b", score=60.0, passed=False, started_at=NIGHT_1.format(10)),
        make_failed_score("n1_bad", started_at=NIGHT_1.format(11)),
    ]


def _night_2() -> list:
    return [
        make_score("n2_a", score=70.0, started_at=NIGHT_2.format(9)),
        make_score("n2_b", score=95.0, agent_id="A1002", agent_name="李婷", started_at=NIGHT_2.format(14)),
    ]


@pytest.fixture()
def two_nights(tmp_path: Path) -> Path:
    """Night 1, night 2, then night 1 again with one call scored differently, all into one folder."""
    tables.write_scores(tmp_path, _night_1())
    tables.write_scores(tmp_path, _night_2())
    tables.write_scores(tmp_path, _night_1(score_a=40.0))
    return tmp_path


def test_nights_accumulate_and_a_rerun_replaces(two_nights: Path):
    got = {s.call_id: s for s in tables.read_scores(two_nights)}
    assert sorted(got) == ["n1_a", "n1_b", "n1_bad", "n2_a", "n2_b"]
    assert got["n1_a"].score == 40.0  # the re-run's verdict, not the first one's
    assert len(got["n1_a"].items) == 6
    assert _files(two_nights / "scores") == [
        "calls/call_date=2025-03-03/part-0.parquet",
        "calls/call_date=2025-03-04/part-0.parquet",
        "items/call_date=2025-03-03/part-0.parquet",
        "items/call_date=2025-03-04/part-0.parquet",
    ]


def test_rerun_is_idempotent(tmp_path: Path):
    tables.write_scores(tmp_path, _night_1())
    once = {p: p.read_bytes() for p in (tmp_path / "scores").rglob("*.parquet")}
    tables.write_scores(tmp_path, _night_1())
    assert {p: p.read_bytes() for p in (tmp_path / "scores").rglob("*.parquet")} == once


def test_call_that_now_fails_loses_its_items(tmp_path: Path):
    tables.write_scores(tmp_path, _night_1())
    tables.write_scores(tmp_path, [make_failed_score("n1_a", started_at=NIGHT_1.format(9))])
    calls, items = tables.read_score_tables(tmp_path)
    assert calls.column("call_id").to_pylist().count("n1_a") == 1
    assert "n1_a" not in items.column("call_id").to_pylist()
    assert items.num_rows == 6  # n1_b's


def test_call_whose_date_changed_moves(tmp_path: Path):
    tables.write_scores(tmp_path, [make_score("c1", started_at=NIGHT_1.format(9))])
    tables.write_scores(tmp_path, [make_score("c1", started_at=NIGHT_2.format(9))])
    calls, items = tables.read_score_tables(tmp_path)
    assert calls.column("call_date").to_pylist() == [date(2025, 3, 4)]
    assert set(items.column("call_date").to_pylist()) == {date(2025, 3, 4)}
    assert not (tmp_path / "scores" / "calls" / "call_date=2025-03-03").exists()  # emptied day removed


def test_duckdb_reads_two_nights_as_one_dataset(two_nights: Path):
    duckdb = pytest.importorskip("duckdb")
    calls = f"read_parquet('{two_nights}/scores/calls/**/*.parquet', hive_partitioning=true)"
    items = f"read_parquet('{two_nights}/scores/items/**/*.parquet', hive_partitioning=true)"
    assert duckdb.sql(f"select count(*), count(distinct call_id) from {calls}").fetchall() == [(5, 5)]
    assert duckdb.sql(f"select call_date, count(*) from {calls} group by 1 order by 1").fetchall() == [
        (date(2025, 3, 3), 3),
        (date(2025, 3, 4), 2),
    ]
    assert duckdb.sql(f"select score from {calls} where call_id = 'n1_a'").fetchall() == [(40.0,)]
    assert duckdb.sql(f"select count(*), count(distinct (call_id, item_id)) from {items}").fetchall() == [(24, 24)]
    by_status = duckdb.sql(f"select status, count(*), avg(score) from {calls} group by 1 order by 1").fetchall()
    assert by_status == [("failed", 1, None), ("ok", 4, pytest.approx((40 + 60 + 70 + 95) / 4))]


def test_pyarrow_dataset_reads_two_nights(two_nights: Path):
    import pyarrow.dataset as ds

    calls = ds.dataset(two_nights / "scores" / "calls", format="parquet", partitioning="hive").to_table()
    assert calls.num_rows == 5 and len(set(calls.column("call_id").to_pylist())) == 5
    assert sorted(set(calls.column("call_date").to_pylist())) == ["2025-03-03", "2025-03-04"]
    # with the declared partition type the dates come back as dates
    typed = ds.dataset(
        two_nights / "scores" / "items",
        format="parquet",
        partitioning=ds.partitioning(pa.schema([tables.PARTITION_FIELD]), flavor="hive"),
    ).to_table()
    assert typed.num_rows == 24
    assert set(typed.column("call_date").to_pylist()) == {date(2025, 3, 3), date(2025, 3, 4)}


def test_pandas_reads_two_nights(two_nights: Path):
    pd = pytest.importorskip("pandas")
    calls = pd.read_parquet(two_nights / "scores" / "calls")
    assert len(calls) == 5 and calls["call_id"].is_unique
    assert sorted(calls["call_date"].astype(str).unique()) == ["2025-03-03", "2025-03-04"]
    items = pd.read_parquet(two_nights / "scores" / "items")
    assert len(items) == 24 and not items.duplicated(["call_id", "item_id"]).any()


def test_transcripts_accumulate_and_a_rerun_replaces(tmp_path: Path):
    first = make_transcript("call_001")
    tables.write_transcripts(tmp_path, [first, make_transcript("call_002")])
    silent = CallTranscript(call_id="call_001", duration_s=5.0, n_channels=1, utterances=(), model="base")
    tables.write_transcripts(tmp_path, [silent, make_transcript("call_003")])
    back = tables.read_transcripts(tmp_path)
    assert list(back) == ["call_002", "call_001", "call_003"]
    assert back["call_001"] == silent  # none of the first run's utterances are left
    assert back["call_002"] == make_transcript("call_002")


def test_transcript_of_a_call_that_failed_this_time_is_dropped(tmp_path: Path):
    tables.write_transcripts(tmp_path, [make_transcript("call_001"), make_transcript("call_002")])
    tables.write_transcripts(tmp_path, [make_transcript("call_002")], replaces=["call_001", "call_002"])
    assert list(tables.read_transcripts(tmp_path)) == ["call_002"]


def test_items_written_before_reason_code_read_back_with_nulls(tmp_path: Path):
    """An OUT from before the reason_code column still reads (and merges with) the new files."""
    tables.write_scores(tmp_path, [make_score("call_001")])
    (path,) = (tmp_path / "scores" / "items").rglob("*.parquet")
    old = pq.read_table(path)
    pq.write_table(old.drop(["reason_code"]), path)
    back = tables.read_scores(tmp_path)
    assert back[0].items and all(i.reason_code is None for i in back[0].items)
    tables.write_scores(tmp_path, [make_score("call_002")])  # a new night into the old OUT
    assert {s.call_id for s in tables.read_scores(tmp_path)} == {"call_001", "call_002"}


def test_score_files_written_before_the_final_columns_still_read_and_merge(tmp_path: Path):
    """A night written before the review desk existed reads as unreviewed and takes a new night beside it."""
    tables.write_scores(tmp_path, [make_score("call_old")])
    for folder, added in ((tables.CALLS_DIR, tables._CALL_COLUMNS_ADDED),
                          (tables.ITEMS_DIR, [n for n in tables._ADDED_COLUMNS if n not in tables._CALL_COLUMNS_ADDED])):
        path = tmp_path / folder / "call_date=2025-03-03" / "part-0.parquet"
        old = pq.read_table(path)
        pq.write_table(old.drop_columns(list(added)), path)
    tables.write_scores(tmp_path, [make_score("call_new", started_at="2025-03-04T10:00:00+08:00")])
    calls, items = tables.read_score_tables(tmp_path)
    assert calls.column("call_id").to_pylist() == ["call_old", "call_new"]
    old_call = calls.to_pylist()[0]
    assert (old_call["final_score"], old_call["review_state"], old_call["n_changed"]) == (85.0, "unreviewed", 0)
    old_items = [r for r in items.to_pylist() if r["call_id"] == "call_old"]
    assert [r["final_result"] for r in old_items] == [r["result"] for r in old_items]
    assert not any(r["decision_stale"] or r["decided_by"] for r in old_items)
