from pathlib import Path

import pytest

from qa_pipeline.audio.discover import compile_name_pattern, discover, read_manifest
from qa_pipeline.errors import InputError

HEADER = "call_id,path,agent_id,agent_name,team,started_at,direction,hangup_by,agent_channel\n"


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    (tmp_path / "a.wav").write_bytes(b"x")
    path = tmp_path / "manifest.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_manifest_rows_become_calls(tmp_path):
    path = write(tmp_path, "c1,a.wav,A1,王,组,2025-03-03T09:00:00+08:00,inbound,customer,1\nc2,a.wav,A2,,,,,,\n")
    calls = read_manifest(path, tmp_path)
    assert [c.call_id for c in calls] == ["c1", "c2"]
    assert calls[0].path == (tmp_path / "a.wav").resolve()
    assert (calls[0].hangup_by, calls[0].agent_channel, calls[0].line) == ("customer", 1, 2)
    assert (calls[1].hangup_by, calls[1].agent_channel, calls[1].agent_name) == (None, None, None)


@pytest.mark.parametrize(
    "body,header,message",
    [
        ("c1,a.wav\n", "call_id,agent_id\n", r"manifest.csv:1: missing column\(s\) path"),
        ("c1,a.wav,,,,,,,\nc1,a.wav,,,,,,,\n", HEADER, r"manifest.csv:3: duplicate call_id 'c1' \(first on line 2\)"),
        ("c1,../outside.wav,,,,,,,\n", HEADER, r"manifest.csv:2: path '../outside.wav' points outside"),
        ("c1,a.wav,,,,,,nobody,\n", HEADER, r"manifest.csv:2: hangup_by 'nobody' \(allowed: agent, customer, unknown or blank\)"),
        ("c1,a.wav,,,,,,,2\n", HEADER, r"manifest.csv:2: agent_channel '2' \(allowed: 0, 1 or blank\)"),
        ("c1,a.wav,,\n", HEADER, r"manifest.csv:2: 4 fields, the header has 9"),
        (",a.wav,,,,,,,\n", HEADER, r"manifest.csv:2: empty call_id"),
        ("c/1,a.wav,,,,,,,\n", HEADER, r"manifest.csv:2: call_id 'c/1' may hold only"),
    ],
    ids=["missing-column", "duplicate", "outside", "hangup", "channel", "short-row", "empty-id", "bad-id"],
)
def test_manifest_errors_name_file_and_line(tmp_path, body, header, message):
    path = write(tmp_path, body, header)
    with pytest.raises(InputError, match=message):
        read_manifest(path, tmp_path)


def test_folder_without_manifest_uses_file_stems(calls_dir):
    calls = discover(calls_dir)
    assert [c.call_id for c in calls] == ["dev_07", "dev_11"]
    assert all(c.agent_id is None and c.agent_channel is None for c in calls)


def test_name_pattern(tmp_path):
    (tmp_path / "20250303_A1001_c42.wav").write_bytes(b"x")
    calls = discover(tmp_path, name_pattern="{date}_{agent_id}_{call_id}.wav")
    assert (calls[0].call_id, calls[0].agent_id, calls[0].started_at) == ("c42", "A1001", "2025-03-03")
    assert compile_name_pattern("{date}_{agent_id}_{call_id}.wav")("other.wav") is None
    with pytest.raises(InputError, match="does not match --name-pattern"):
        discover(tmp_path, name_pattern="{call_id}-{agent_id}.wav")
    with pytest.raises(InputError, match=r"unknown field \{agent\}"):
        compile_name_pattern("{agent}_{call_id}.wav")


def test_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no audio files"):
        discover(tmp_path)


def test_broken_links_and_odd_files_named_like_audio_are_calls(tmp_path):
    """They fail when processed, with a reason, instead of being left out; folders are not calls."""
    import os

    (tmp_path / "ok.wav").write_bytes(b"x")
    (tmp_path / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    os.mkfifo(tmp_path / "pipe.wav")
    (tmp_path / "folder.wav").mkdir()
    assert [c.call_id for c in discover(tmp_path)] == ["gone", "ok", "pipe"]


# --------------------------------------------------------------------------- issue 21: dates, columns, encodings

@pytest.mark.parametrize("written,stored", [
    ("2025-03-07T10:41:55+08:00", "2025-03-07T10:41:55+08:00"),  # ISO 8601: kept as written
    ("2025-03-07T02:41:55Z", "2025-03-07T02:41:55Z"),
    ("2025-03-07 10:41", "2025-03-07 10:41"),
    ("2025/3/7 10:41", "2025-03-07T10:41:00"),  # a wall-clock time without a zone: kept as the centre's
    ("2025/03/07 10:41:55", "2025-03-07T10:41:55"),
    ("2025年3月7日 10:41", "2025-03-07T10:41:00"),
    ("2025年3月7日10时41分", "2025-03-07T10:41:00"),
    ("2025.3.7", "2025-03-07"),
    ("20250307104155", "2025-03-07T10:41:55"),
    ("1741315315", "2025-03-07T10:41:55+08:00"),  # epoch seconds, in the machine's zone (TZ below)
    ("1741315315000", "2025-03-07T10:41:55+08:00"),  # milliseconds
])
def test_started_at_in_the_common_forms_is_read(tmp_path, monkeypatch, written, stored):
    import time

    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        path = write(tmp_path, f"c1,a.wav,,,,{written},,,\n")
        assert read_manifest(path, tmp_path)[0].started_at == stored
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("written", ["not a date", "2025-02-30 10:00", "2025/13/1", "07/03/2025", "10:41", "17413153"])
def test_anything_else_in_started_at_is_refused_with_its_line(tmp_path, written):
    path = write(tmp_path, "c1,a.wav,,,,2025-03-07,,,\n" + f"c2,a.wav,,,,{written},,,\n")
    with pytest.raises(InputError, match=rf"manifest.csv:3: started_at '{written}' is not a date and time \(allowed: "):
        read_manifest(path, tmp_path)


def test_direction_takes_english_and_chinese_and_refuses_the_rest(tmp_path):
    path = write(tmp_path, "c1,a.wav,,,,,呼出,,\nc2,a.wav,,,,,Inbound,,\nc3,a.wav,,,,,呼入,,\nc4,a.wav,,,,,,,\n")
    assert [c.direction for c in read_manifest(path, tmp_path)] == ["outbound", "inbound", "inbound", None]
    path = write(tmp_path, "c1,a.wav,,,,,outbound,,\nc2,a.wav,,,,,转接,,\n")
    with pytest.raises(InputError, match=r"manifest.csv:3: direction '转接' \(allowed: inbound, outbound, 呼入, 呼出 or blank\)"):
        read_manifest(path, tmp_path)


def test_an_unknown_column_is_warned_about_and_a_duplicated_one_refused(tmp_path, caplog):
    path = write(tmp_path, "c1,a.wav,1\n", header="call_id,path,agent_chanel\n")
    with caplog.at_level("WARNING", logger="qa_pipeline"):
        calls = read_manifest(path, tmp_path)
    assert calls[0].agent_channel is None
    assert "manifest.csv:1: unknown column 'agent_chanel' is ignored (did you mean agent_channel?" in caplog.text
    path = write(tmp_path, "c1,a.wav,A1,A2\n", header="call_id,path,agent_id,agent_id\n")
    with pytest.raises(InputError, match=r"manifest.csv:1: column 'agent_id' appears twice \(columns 3 and 4\)"):
        read_manifest(path, tmp_path)


def test_a_gbk_manifest_is_refused_naming_the_line_and_saying_save_as_utf8(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    path = tmp_path / "manifest.csv"
    path.write_bytes((HEADER + "c1,a.wav,A1,,,,,,\nc2,a.wav,A2,王晓雨,宽带服务组,,,,\n").encode("gbk"))
    with pytest.raises(InputError, match=r"manifest.csv:3: not UTF-8 text .*save the manifest as UTF-8"):
        read_manifest(path, tmp_path)


def test_a_date_in_a_file_name_that_is_no_date_is_refused(tmp_path):
    (tmp_path / "20250231_A1_c1.wav").write_bytes(b"x")
    with pytest.raises(InputError, match=r"20250231_A1_c1.wav: \{date\}/\{time\} '2025-02-31' is not a date and time"):
        discover(tmp_path, name_pattern="{date}_{agent_id}_{call_id}.wav")
