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
