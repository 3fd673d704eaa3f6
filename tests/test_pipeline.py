"""The batch's resume machinery on its own: parts, fingerprints, the ETA, the lock, temp files."""

from __future__ import annotations

from dataclasses import replace

import pytest

from factories import make_failed_score, make_meta, make_score, make_transcript
from qa_pipeline.errors import AudioMissing, CallFailed, DecodeError, NoSpeech, OutputLocked
from qa_pipeline.batch.plan import Eta, call_inputs, changed_inputs, fingerprint
from qa_pipeline.batch.store import output_lock, part_path, read_part, remove_temp_files, write_part
from qa_pipeline.records import CallPart, Todo


def test_part_round_trips_exactly(tmp_path):
    part = CallPart("call_001", "f" * 64, make_score(), make_transcript(), inputs={"audio": "a", "rubric": "r"})
    write_part(tmp_path, part)
    assert read_part(tmp_path, "call_001") == part
    failed = CallPart("call_bad", "", make_failed_score(), None, retry=True, error_kind="AudioMissing")
    write_part(tmp_path, failed)
    assert read_part(tmp_path, "call_bad") == failed
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_unusable_part_is_ignored(tmp_path):
    assert read_part(tmp_path, "nothing") is None
    (tmp_path / "half.json").write_text('{"format": 1, "call_id": "half", "score": {')
    assert read_part(tmp_path, "half") is None
    write_part(tmp_path, CallPart("x", "f", make_score("x"), None))
    (tmp_path / "x.json").rename(tmp_path / "y.json")  # another call's part under this name
    assert read_part(tmp_path, "y") is None


def test_part_names_are_safe_and_distinct(tmp_path):
    assert part_path(tmp_path, "dev_07").name == "dev_07.json"
    odd = [part_path(tmp_path, c) for c in ("../x", "a b", "a_b", "..", "通话1")]
    assert all(p.parent == tmp_path and not p.name.startswith(".") for p in odd)
    assert len({p.name for p in odd}) == len(odd)


def test_fingerprint_follows_what_the_result_depends_on():
    meta = make_meta()
    base = fingerprint("audio", meta, {"model": "base"}, "rubric")
    assert fingerprint("audio", replace(meta, line=7), {"model": "base"}, "rubric") == base  # rows moved
    for changed in (
        fingerprint("other audio", meta, {"model": "base"}, "rubric"),
        fingerprint("audio", replace(meta, hangup_by="agent"), {"model": "base"}, "rubric"),
        fingerprint("audio", meta, {"model": "small"}, "rubric"),
        fingerprint("audio", meta, {"model": "base"}, "new rubric"),
    ):
        assert changed != base


def test_a_redone_part_says_what_changed():
    meta = make_meta()
    part = CallPart("call_001", "f", make_score(), None, inputs=call_inputs("audio", meta, {"model": "base"}, "r1"))
    assert changed_inputs(part, call_inputs("audio", meta, {"model": "base"}, "r2")) == ["rubric"]
    assert changed_inputs(part, call_inputs("new", meta, {"model": "small"}, "r1")) == ["audio", "settings"]


def test_which_failures_are_tried_again():
    assert CallFailed("model").retry and AudioMissing("gone").retry
    assert not DecodeError("corrupt").retry and not NoSpeech("silence").retry


def todo(cached: bool) -> Todo:
    return Todo(make_meta(), "d", "f", 0.0, cached)


def test_eta_ignores_quick_calls():
    eta = Eta([todo(True), todo(True), todo(False), todo(False), todo(False)])
    eta.finished(True, 0.1)
    assert eta.seconds_left() is None  # no call transcribed yet
    eta.finished(True, 0.1)
    eta.finished(False, 10.0)
    assert eta.seconds_left() == pytest.approx(20.0)  # two more at 10 s, not at the 3.4 s mean
    eta.finished(False, 20.0)
    eta.finished(False, 15.0)
    assert eta.seconds_left() == 0.0


def test_lock_refuses_a_second_holder(tmp_path):
    with output_lock(tmp_path, "qa run"):
        with pytest.raises(OutputLocked, match=r"is being written by `qa run` \(pid \d+ on .*, since "):
            with output_lock(tmp_path, "qa score"):
                pass
    with output_lock(tmp_path, "qa score"):  # free again once released
        pass


def test_temp_files_of_a_killed_run_are_removed(tmp_path):
    leftovers = [tmp_path / "parts" / ".qa-tmp-1a2b3c4d-a.json",
                 tmp_path / "scores" / "calls" / "call_date=2025-03-03" / ".qa-tmp-00000000-part-0.parquet",
                 tmp_path / "reports" / "calls" / ".qa-tmp-ffffffff-a.html", tmp_path / ".qa-tmp-12345678-run.json"]
    kept = [tmp_path / "parts" / "a.json", tmp_path / "reports" / "index.html",
            # another tool's files in OUT, whatever they look like, and ours only where we write
            tmp_path / ".notes.tmp", tmp_path / ".config.yaml.tmp", tmp_path / "other-tool" / "deep" / ".tmp-upload-123",
            tmp_path / "other-tool" / ".qa-tmp-1a2b3c4d-x.json", tmp_path / "parts" / ".a.json.x1.tmp"]
    for path in leftovers + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    remove_temp_files(tmp_path)
    assert [p.exists() for p in leftovers] == [False] * len(leftovers)
    assert [p for p in kept if not p.exists()] == []
