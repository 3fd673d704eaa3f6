"""What the pipeline leaves in OUT: every file whole (atomic writes), with the mode the process umask
gives a new file, and nothing of another tool's touched by the clean-up of temp files."""

from __future__ import annotations

import os
import stat

import pytest
from typer.testing import CliRunner

from cli import app
from qa_pipeline.files import TEMP_PREFIX, write_atomic

FOREIGN = [".notes.tmp", ".config.yaml.tmp", "other-tool/deep/.tmp-upload-123"]


@pytest.mark.parametrize("umask,expected", [(0o022, 0o644), (0o077, 0o600)])
def test_write_atomic_gives_the_mode_of_a_new_file(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "a.txt", "文本")
        write_atomic(tmp_path / "b.bin", b"\x00\x01")
        write_atomic(tmp_path / "c.bin", lambda f: f.write(b"written by a function"))
    finally:
        os.umask(old)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == dict.fromkeys(
        ["a.txt", "b.bin", "c.bin"], expected)
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "文本"
    assert (tmp_path / "c.bin").read_bytes() == b"written by a function"


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "keep.txt"
    write_atomic(target, "old")

    def broken(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, broken)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.slow
@pytest.mark.parametrize("umask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_every_output_follows_the_umask_and_other_tools_files_survive(tmp_path, calls_dir, transcript_cache, umask,
                                                                        file_mode, dir_mode):
    out = tmp_path / "out"
    for name in FOREIGN:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("another tool's")
    leftover = out / "parts" / f"{TEMP_PREFIX}1a2b3c4d-dev_07.json"  # what a killed run of ours leaves
    leftover.parent.mkdir()
    leftover.write_text("{")
    old = os.umask(umask)
    try:
        run = CliRunner().invoke(app, ["run", str(calls_dir), "--out", str(out), "--manifest",
                                       str(calls_dir / "manifest.csv"), "--cache-dir", str(transcript_cache)])
        assert run.exit_code == 0, run.output
        assert not leftover.exists()
        score = CliRunner().invoke(app, ["score", str(out)])
        assert score.exit_code == 0, score.output
    finally:
        os.umask(old)
    assert [name for name in FOREIGN if (out / name).read_text() != "another tool's"] == []
    ours = [p for p in out.rglob("*") if not str(p.relative_to(out)).startswith(("other-tool", ".notes", ".config"))
            and p != out / "parts"]  # parts/ was made above, before the umask
    files = {str(p.relative_to(out)): oct(stat.S_IMODE(p.stat().st_mode)) for p in ours if p.is_file()}
    folders = {str(p.relative_to(out)): oct(stat.S_IMODE(p.stat().st_mode)) for p in ours if p.is_dir()}
    assert {"run.json", "failed.csv", ".lock", "reports/index.html", "parts/dev_07.json",
            "transcripts/transcripts.parquet", "recordings/recordings.parquet"} <= set(files)
    assert any(name.startswith("scores/calls/call_date=") for name in files)
    assert {k: v for k, v in files.items() if v != oct(file_mode)} == {}
    assert {k: v for k, v in folders.items() if v != oct(dir_mode)} == {}
    assert [p for p in out.rglob(f"{TEMP_PREFIX}*")] == []
