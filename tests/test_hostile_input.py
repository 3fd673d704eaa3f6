"""A hostile or unlucky night (issue 12): names, links, bytes and options that once leaked, hung, or
stopped the batch. Each must now be refused with one line (exit 2) or cost at most its own call."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from factories import make_meta, make_score, make_transcript
from qa_pipeline.output import report
from qa_pipeline.audio.discover import compile_name_pattern, discover, read_manifest
from qa_pipeline.errors import InputError
from qa_pipeline.files import MAX_STEM_BYTES
from qa_pipeline.output.tables import read_scores

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


# --------------------------------------------------------------------------- --name-pattern


def test_a_long_name_that_does_not_match_a_many_field_pattern_says_so_at_once(tmp_path):
    pattern = "{agent_id}{team}{date}{time}{direction}{any}{call_id}Q.wav"
    name = "A" * 132 + ".wav"  # 136 characters, no Q before .wav: backtracking hung past 45 s
    (tmp_path / name).write_bytes(b"x")
    t0 = time.monotonic()
    assert compile_name_pattern(pattern)(name) is None
    with pytest.raises(InputError, match="does not match --name-pattern"):
        discover(tmp_path, name_pattern=pattern)
    assert time.monotonic() - t0 < 1.0
    assert compile_name_pattern(pattern)("A1TbD2T3inX9c42Q.wav") is not None


def test_a_field_twice_in_the_name_pattern_is_one_line(tmp_path):
    (tmp_path / "a_b.wav").write_bytes(b"x")
    result = runner.invoke(app, ["run", str(tmp_path), "--out", str(tmp_path / "out"),
                                 "--name-pattern", "{call_id}_{call_id}.wav"])
    assert "field {call_id} appears twice" in one_line_error(result)


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--beam-size", "0", "beam size (--beam-size) must be 1 to"),
        ("--batch-size", "-3", "batch size (--batch-size) must be 0 (automatic) to"),
        ("--max-duration", "-1", "(--max-duration) must be a positive number of minutes"),
        ("--max-duration", "nan", "(--max-duration) must be a positive number of minutes"),
    ],
)
@pytest.mark.parametrize("command", ["run", "transcribe"])
def test_impossible_options_are_refused_before_any_model_loads(tmp_path, calls_dir, command, option, value, expected):
    t0 = time.monotonic()
    result = runner.invoke(app, [command, str(calls_dir), "--out", str(tmp_path / "out"), option, value])
    assert expected in one_line_error(result)
    assert not (tmp_path / "out").exists()  # refused before the folder, the audio or the model
    assert time.monotonic() - t0 < 5.0


def test_a_truncated_run_file_under_qa_score_is_one_line(tmp_path):
    (tmp_path / "run.json").write_text('{"audio_dir": "/rec", "calls": [{"call_id": "a", "pa', encoding="utf-8")
    line = one_line_error(runner.invoke(app, ["score", str(tmp_path)]))
    assert "run.json: not a readable run file" in line


@pytest.mark.parametrize("value", ["!!float abc", "!!int 0xZZ", '!!binary "not base64 !!"', ".nan"])
def test_bad_rubric_values_are_one_line_with_file_and_line(tmp_path, value):
    text = (ROOT / "rubrics" / "default.zh.yaml").read_text(encoding="utf-8")
    rubric = tmp_path / "r.yaml"
    rubric.write_text(text.replace("pass_score: 80", f"pass_score: {value}", 1), encoding="utf-8")
    line = text.splitlines().index("pass_score: 80") + 1
    check = runner.invoke(app, ["rubric", "check", str(rubric)])
    assert f"{rubric}:{line}: " in one_line_error(check, code=1)
    (tmp_path / "x.wav").write_bytes(b"x")
    run = runner.invoke(app, ["run", str(tmp_path), "--out", str(tmp_path / "out"), "--rubric", str(rubric)])
    assert f"{rubric}:{line}: " in one_line_error(run)


# --------------------------------------------------------------------------- files and names


def test_links_to_files_and_to_folders_follow_one_rule(tmp_path):
    """Followed while they stay inside the audio folder (a recording reached twice is one call),
    refused with the link and its target when they lead out, as a manifest's paths are."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.wav").write_bytes(b"x")
    audio = tmp_path / "audio"
    (audio / "sub").mkdir(parents=True)
    (audio / "ok.wav").write_bytes(b"x")
    (audio / "sub" / "deep.wav").write_bytes(b"y")
    (audio / "inside.wav").symlink_to(audio / "ok.wav")
    (audio / "again").symlink_to(audio / "sub", target_is_directory=True)
    (audio / "sub" / "loop").symlink_to(audio, target_is_directory=True)
    calls = discover(audio)
    assert [(c.call_id, c.path) for c in calls] == [("deep", audio / "sub" / "deep.wav"), ("ok", audio / "ok.wav")]
    (audio / "leak.wav").symlink_to(outside / "secret.wav")
    with pytest.raises(InputError, match=r"leak.wav: links to .*elsewhere/secret.wav, outside the audio folder"):
        discover(audio)
    (audio / "leak.wav").unlink()
    (audio / "sub" / "leak").symlink_to(outside, target_is_directory=True)  # a linked folder: the same rule
    with pytest.raises(InputError, match=r"sub/leak: links to .*elsewhere, outside the audio folder .*linked folder"):
        discover(audio)
    manifest = audio / "manifest.csv"
    manifest.write_text("call_id,path\nleak,../elsewhere/secret.wav\n", encoding="utf-8")
    with pytest.raises(InputError, match="points outside"):
        read_manifest(manifest, audio)


def test_a_nul_byte_in_a_manifest_is_refused_and_never_reaches_a_page(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("call_id,path,agent_name\nc1,c1.wav,王\x00晓雨\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"manifest.csv:2: agent_name holds a control character"):
        read_manifest(manifest, tmp_path)
    # and whatever reaches the pages by another way (an older OUT, a library caller) is shown as U+FFFD
    score = make_score("c1", agent_name="王\x00晓雨\x1b[31m", team="组\x00")
    report.render_reports(tmp_path, [score], {"c1": make_transcript("c1")}, {"c1": make_meta("c1")})
    for page in (tmp_path / "reports").rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "\x00" not in html and "\x1b" not in html, page
    assert "王\ufffd晓雨" in (tmp_path / "reports" / "calls" / "c1.html").read_text(encoding="utf-8")


LONG_ID = "客户投诉电话录音" * 10 + "甲"  # 81 Chinese characters: 243 bytes of UTF-8
FORMULAS = ['=HYPERLINK("http:__evil.example","x")', "+1+1", "-2+3", "@SUM(A1)"]


@pytest.fixture(scope="module")
def hostile_night(tmp_path_factory):
    """A night of files that are not audio (no model needed): one with an 81-character Chinese
    name, four whose names are spreadsheet formulas, and a plain one."""
    audio = tmp_path_factory.mktemp("hostile")
    for stem in [LONG_ID, "plain", *FORMULAS]:
        (audio / f"{stem}.wav").write_text("not audio\n")
    out = audio.parent / (audio.name + "-out")
    result = runner.invoke(app, ["run", str(audio), "--out", str(out)])
    return audio, out, result


def test_an_id_too_long_for_a_file_name_does_not_stop_the_batch(hostile_night):
    _audio, out, result = hostile_night
    assert result.exit_code == 1, result.output  # every call failed (not audio), none stopped the night
    assert "6 calls: 0 scored, 6 failed" in result.output
    names = [p.name for p in out.rglob("*")]
    assert max(len(n.encode("utf-8")) for n in names) <= MAX_STEM_BYTES + len(".json")
    assert any(n.startswith("客户投诉") for n in (p.name for p in (out / "parts").iterdir()))
    assert any(n.startswith("客户投诉") for n in (p.name for p in (out / "reports" / "calls").iterdir()))
    again = runner.invoke(app, ["run", str(hostile_night[0]), "--out", str(out)])  # and on every rerun
    assert "6 calls: 0 scored, 6 failed" in again.output


def test_failed_csv_cells_never_run_as_formulas(hostile_night):
    _audio, out, _result = hostile_night
    rows = list(csv.reader((out / "failed.csv").open(encoding="utf-8")))
    assert rows[0] == ["call_id", "path", "error", "retry"] and len(rows) == 7
    for row in rows[1:]:
        for cell in row:
            assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")), row
    call_ids = {row[0] for row in rows[1:]}
    assert {f"'{f}" for f in FORMULAS} <= call_ids and "plain" in call_ids  # shown, as text


def test_a_night_where_every_call_failed_still_has_every_table_for_the_readme_queries(hostile_night):
    duckdb = pytest.importorskip("duckdb")
    import pandas

    _audio, out, result = hostile_night
    assert "6 calls: 0 scored, 6 failed" in result.output
    calls = f"read_parquet('{out}/scores/calls/**/*.parquet', hive_partitioning=true)"
    items = f"read_parquet('{out}/scores/items/**/*.parquet', hive_partitioning=true)"
    assert [row[1:] for row in duckdb.sql(f"select call_date, count(*), avg(score) from {calls} group by 1").fetchall()] \
        == [(6, None)]
    assert duckdb.sql(f"select count(*) from {items}").fetchall() == [(0,)]
    assert {"item_id", "result", "evidence_text", "call_date"} <= set(duckdb.sql(f"select * from {items}").columns)
    assert pandas.read_parquet(out / "scores" / "items").empty
    assert pandas.read_parquet(out / "transcripts" / "transcripts.parquet").empty
    assert pandas.read_parquet(out / "recordings" / "recordings.parquet").empty


def test_onnxruntime_writes_nothing_in_home(tmp_path):
    """Silero VAD and the CAM++ embedder both run on onnxruntime; HOME must stay empty."""
    from qa_pipeline.models import cache_root

    home = tmp_path / "home"
    home.mkdir()
    env = {**{k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")},
           "HOME": str(home), "QA_CACHE_DIR": str(cache_root())}
    code = (
        "import numpy as np\n"
        "from qa_pipeline.asr.vad import VadSettings, vad_regions\n"
        "from qa_pipeline.speakers import diarize\n"
        "x = (0.1 * np.sin(np.arange(32000) / 5)).astype(np.float32)\n"
        "vad_regions(x, VadSettings())\n"
        "try:\n"
        "    diarize.default_embedder().embed(x)\n"
        "except diarize.SpeakerModelMissing:\n"
        "    pass\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT, timeout=120)
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == []


# --------------------------------------------------------------------------- issue 21: names of any bytes

GBK_NAME = "客服录音".encode("gbk") + b"_1.wav"  # what a Windows recorder in a Chinese centre writes
ESC_NAME = "客服\x1b[31m_2\u202e.wav"  # an ANSI colour and a right-to-left override


def night_of_odd_names(folder: Path) -> Path:
    folder.mkdir()
    for name in (GBK_NAME, ESC_NAME.encode(), "张三_3.wav".encode(), b"plain.wav"):
        with open(os.path.join(os.fsencode(folder), name), "wb") as f:
            f.write(b"not audio\n")
    return folder


@pytest.mark.parametrize("locale", [{}, {"LC_ALL": "C"}, {"LC_ALL": "C", "PYTHONUTF8": "0"}],
                         ids=["utf-8", "C", "C-without-utf-8-mode"])
@pytest.mark.parametrize("command", ["run", "transcribe"])
def test_file_names_of_any_bytes_are_calls_and_never_reach_the_terminal_raw(tmp_path, command, locale):
    audio, out = night_of_odd_names(tmp_path / "audio"), tmp_path / "out"
    env = {**{k: v for k, v in os.environ.items() if k not in ("LC_ALL", "PYTHONUTF8")}, **locale}
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), command, str(audio), "--out", str(out)],
                            env=env, capture_output=True, timeout=120)
    shown = result.stdout + result.stderr
    assert result.returncode == 1, shown.decode("utf-8", "replace")  # every call failed (not audio), none stopped
    assert b"Traceback" not in shown
    assert f"4 calls: 0 {'scored' if command == 'run' else 'transcribed'}, 4 failed".encode() in shown
    assert b"\x1b" not in shown and "\u202e".encode() not in shown  # never raw, on the progress line or after
    text = shown.decode("utf-8")
    assert "failed 张三_3: " in text and "failed 客服\ufffd[31m_2\ufffd: " in text
    gbk_id = next(line for line in text.splitlines() if line.startswith("  failed ") and "_1-" in line)
    assert "\ufffd" in gbk_id  # the GBK name, with U+FFFD where it is not UTF-8
    if command == "run":
        rows = list(csv.reader((out / "failed.csv").open(encoding="utf-8")))[1:]
        assert len(rows) == 4 and len({row[0] for row in rows}) == 4
        assert [s.status for s in read_scores(out)] == ["failed"] * 4


def test_a_gbk_named_call_is_scored_and_its_audio_found_again(tmp_path):
    """The same night with real (stereo) audio and the fake Whisper: the GBK-named call is scored,
    run.json takes it back to the very file (qa score, the desk), and a second run redoes nothing."""
    import numpy as np

    from audio_factory import encode, tone
    from factories import FakeWhisper
    from qa_pipeline.batch.config import Inputs, RunConfig, TranscribeConfig
    from qa_pipeline.batch.engine import run_batch
    from qa_pipeline.batch.local import LocalEngine
    from qa_pipeline.batch.rescore import rescore
    from qa_pipeline.batch.store import read_run_file
    from qa_pipeline.scoring.rubric import rubric_path_default

    audio = tmp_path / "audio"
    audio.mkdir()
    for n, name in enumerate((GBK_NAME, ESC_NAME.encode(), b"plain.wav")):
        encode(audio / f"tmp{n}.wav", np.stack([tone(300 + 40 * n, 6, 8000, 0.05), tone(600, 6, 8000, 0.05)]), 8000,
               codec="pcm_s16le")
        os.rename(os.fsencode(audio / f"tmp{n}.wav"), os.path.join(os.fsencode(audio), name))
    config = RunConfig(Inputs(audio), tmp_path / "out", TranscribeConfig(cache_dir=tmp_path / "cache"),
                       rubric=rubric_path_default())
    summary = run_batch(config, LocalEngine(FakeWhisper()))
    assert (summary.total, summary.ok, summary.failed) == (3, 3, 0)
    metas = {m.call_id: m for m in read_run_file(tmp_path / "out")}
    gbk = next(call_id for call_id in metas if "\ufffd" in call_id)  # the ESC one keeps its (valid) characters
    assert os.fsencode(metas[gbk].path) == os.path.join(os.fsencode(audio), GBK_NAME)  # the very file
    assert rescore(tmp_path / "out", rubric_path_default()).ok == 3
    assert run_batch(config, LocalEngine(FakeWhisper())).reused == 3


# --------------------------------------------------------------------------- issue 21: rubrics that reach too far

def refused_rubric(tmp_path: Path, rubric: Path) -> str:
    """`qa run` with `rubric`: refused before any audio with one line and exit 2."""
    (tmp_path / "audio").mkdir(exist_ok=True)
    result = runner.invoke(app, ["run", str(tmp_path / "audio"), "--out", str(tmp_path / "out"), "--rubric", str(rubric)])
    assert not (tmp_path / "out").exists()
    return one_line_error(result, 2)


def test_a_rubric_nested_100k_deep_is_one_line(tmp_path):
    rubric = tmp_path / "deep.yaml"
    rubric.write_text("id: deep\nitems: " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    assert refused_rubric(tmp_path, rubric) == f"error: {rubric}:2: nested more than 64 levels deep"


def test_a_600_file_extends_chain_is_one_line(tmp_path):
    for n in range(600):
        (tmp_path / f"r{n}.yaml").write_text(f"extends: r{n + 1}.yaml\n" if n < 599 else "extends: default\n")
    line = refused_rubric(tmp_path, tmp_path / "r0.yaml")
    assert line == f"error: {tmp_path / 'r16.yaml'}:1: extends: more than 16 rubric files extend one another"


def test_extends_of_a_device_or_a_huge_file_is_refused_by_its_size_not_read(tmp_path):
    rubric = tmp_path / "r.yaml"
    rubric.write_text("extends: /dev/zero\nid: x\n", encoding="utf-8")
    assert refused_rubric(tmp_path, rubric).endswith("r.yaml:1: extends: /dev/zero is not a regular file")
    (tmp_path / "big.yaml").write_bytes(b"id: x\n" + b"#" * (5 << 20))
    rubric.write_text("extends: big.yaml\n", encoding="utf-8")
    assert refused_rubric(tmp_path, rubric).endswith("r.yaml:1: extends: " + str(tmp_path / "big.yaml")
                                                     + " is larger than 4 MiB")
    assert refused_rubric(tmp_path, tmp_path / "big.yaml").endswith("big.yaml:0: rubric is larger than 4 MiB")


@pytest.mark.parametrize("secret", ["root:$6$Qx1$c2VjcmV0aGFzaA:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n",
                                    "DB_PASSWORD: hunter2\nAPI_KEY: sk-0123\n", "- hunter2\n", "{{{ hunter2"])
def test_extends_of_a_file_that_is_no_rubric_never_shows_its_content(tmp_path, secret):
    (tmp_path / "shadow").write_text(secret, encoding="utf-8")
    rubric = tmp_path / "r.yaml"
    rubric.write_text(f"extends: {tmp_path / 'shadow'}\nid: x\n", encoding="utf-8")
    line = refused_rubric(tmp_path, rubric)
    assert line.startswith(f"error: {rubric}:1: extends: {tmp_path / 'shadow'} is not a rubric file")
    for word in ("root", "Qx1", "c2VjcmV0aGFzaA", "DB_PASSWORD", "hunter2", "API_KEY", "sk-0123", "bin"):
        assert word not in line.replace(str(tmp_path), ""), line
    if os.access("/etc/shadow", os.R_OK):
        rubric.write_text("extends: /etc/shadow\nid: x\n", encoding="utf-8")
        line = refused_rubric(tmp_path, rubric).replace(str(tmp_path), "")
        assert line.endswith("extends: /etc/shadow is not a rubric file (valid YAML whose top level holds only id, "
                             "name, version, language, pass_score, items, description, centre, extends, min_agreement)")
        shadow = Path("/etc/shadow").read_text(encoding="utf-8", errors="replace")
        hashes = [row.split(":")[1] for row in shadow.splitlines() if row.count(":") > 1]
        assert not any(h in line for h in hashes if len(h) > 3)
