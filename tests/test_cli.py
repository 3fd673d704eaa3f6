from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()
COMMANDS = [["run"], ["transcribe"], ["demo"], ["score"], ["rubric", "check"], ["review"], ["users", "add"],
            ["users", "list"], ["users", "passwd"], ["users", "disable"], ["users", "enable"], ["policy", "check"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_has_help_with_an_example(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output
    assert "qa " + command[0] in result.output


def test_missing_audio_folder_is_one_line_error(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: audio folder not found: {tmp_path / 'nope'}"


def test_bad_manifest_is_refused_before_any_audio(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("call_id,agent_id\nc1,A1\n")
    result = runner.invoke(app, ["run", str(tmp_path), "--out", str(tmp_path / "o"), "--manifest", str(manifest)])
    assert result.exit_code == 2
    assert f"error: {manifest}:1: missing column(s) path" in result.output
    assert not (tmp_path / "o").exists()


def test_bad_rubric_is_refused_with_file_and_line(tmp_path):
    rubric = tmp_path / "r.yaml"
    rubric.write_text(
        "id: r\nname: r\nversion: 1\nlanguage: zh\npass_score: 80\nitems:\n  - id: x\n    name: x\n    weight: 10\n"
        "    speaker: boss\n    check: {type: phrase, any: [您好]}\n"
    )
    result = runner.invoke(app, ["rubric", "check", str(rubric)])
    assert result.exit_code == 1
    assert f"{rubric}:10:" in result.output and "boss" in result.output and "agent" in result.output
    result = runner.invoke(app, ["run", str(tmp_path), "--out", str(tmp_path / "o"), "--rubric", str(rubric)])
    assert result.exit_code == 2 and f"{rubric}:10:" in result.output


def test_default_rubric_checks_ok():
    result = runner.invoke(app, ["rubric", "check", str(Path(__file__).resolve().parent.parent / "rubrics" / "default.zh.yaml")])
    assert result.exit_code == 0, result.output
    assert "greeting" in result.output and "customer_hangs_up_first" in result.output


def test_score_without_earlier_run(tmp_path):
    result = runner.invoke(app, ["score", str(tmp_path)])
    assert result.exit_code == 2
    assert "holds no earlier run" in result.output


def test_output_folder_that_cannot_be_created_is_one_line_error(tmp_path, calls_dir):
    out = tmp_path / "taken"
    out.write_text("a file, not a folder")
    result = runner.invoke(app, ["run", str(calls_dir), "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: cannot create the output folder {out}: File exists"


def test_centre_file_checks_ok_and_lists_its_companies():
    centre = Path(__file__).resolve().parent.parent / "bench" / "centres" / "dev-calls-2.yaml"
    result = runner.invoke(app, ["rubric", "check", str(centre)])
    assert result.exit_code == 0, result.output
    assert "rubric dev-calls-2.zh v2.0, 12 items" in result.output
    assert "  centre: 明光供电 / 明光电力 / 明光  (teams: 电力服务组)" in result.output
