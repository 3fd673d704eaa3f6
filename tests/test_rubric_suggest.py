"""The desk teaches the rubric (issue 23): `qa rubric suggest OUT` turns inspectors' overrides into
candidate examples and near-misses; the live rubric is never changed; `qa calibrate --rubric
CANDIDATE` compares before → after.  On a real output folder (tests/review_out.py) with a real review.db."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from qa_pipeline.output.tables import read_scores
from qa_pipeline.review.actions import Request, act
from qa_pipeline.review.auth import Actor
from qa_pipeline.review.db import ReviewDB
from qa_pipeline.final_verdicts import OVERRIDE, final_call
from qa_pipeline.review.policy import Policy
from qa_pipeline.scoring.rubric import load_rubric, rubric_path_default
from review_out import build_out

LINA = Actor("lina", "inspector")


def override(out: Path, call_id: str, item_id: str, result: str, reason: str) -> None:
    score = next(s for s in read_scores(out) if s.call_id == call_id)
    db = ReviewDB.open(out)
    try:
        db.record_machine(read_scores(out))
        version = final_call(score, db.events(call_id)).item(item_id).version
        act(db, LINA, score, Request(OVERRIDE, item_id, result=result, reason=reason, version=version),
            policy=Policy(), today=date(2025, 3, 8))
    finally:
        db.close()


def test_overrides_become_examples_and_near_misses_of_a_candidate(tmp_path):
    out = build_out(tmp_path / "out")
    machine = {(s.call_id, r.item_id): r.result for s in read_scores(out) for r in s.items}
    assert machine[("dev_07", "forbidden_phrases")] == "fail" and machine[("dev_03", "apology")] == "na"
    assert machine[("dev_06", "ask_need")] == "fail"
    override(out, "dev_07", "forbidden_phrases", "pass", "听了录音，坐席是在解释操作步骤，语气平和")
    override(out, "dev_03", "apology", "fail", "客户说“这周六上午可以吗”时其实在抱怨，应当致歉")
    override(out, "dev_06", "ask_need", "pass", "坐席问了“您这边遇到什么情况了”，是询问需求")
    live = rubric_path_default().read_text(encoding="utf-8")
    candidate = tmp_path / "candidate.yaml"

    result = CliRunner().invoke(app, ["rubric", "suggest", str(out), "--write", str(candidate)])
    assert result.exit_code == 0, result.output
    assert "3 new examples / near-misses" in result.output
    assert rubric_path_default().read_text(encoding="utf-8") == live  # nothing changes the live rubric

    rubric = load_rubric(candidate)
    items = {i.id: i for i in rubric.items}
    near = [e for e in items["forbidden_phrases"].meaning.near_misses if e.source.startswith("复核改判")]
    assert len(near) == 1 and "你没听明白" in near[0].text and "dev_07" in near[0].source and "lina" in near[0].source
    assert [e.text for e in items["apology"].when.meaning.examples if "dev_03" in e.source] == ["这周六上午可以吗？"]
    assert [e.text for e in items["ask_need"].meaning.examples if "dev_06" in e.source] == ["您这边遇到什么情况了"]
    assert candidate.read_text(encoding="utf-8").startswith(live.split("\n", 1)[0])  # comments kept

    compared = CliRunner().invoke(app, ["calibrate", str(out), "--rubric", str(candidate)])
    assert compared.exit_code == 0, compared.output
    assert "verdicts change" in compared.output

    labels = tmp_path / "labels.csv"
    labels.write_text("call_id,item_id,result\ndev_07,forbidden_phrases,pass\ndev_06,ask_need,pass\n", encoding="utf-8")
    tested = CliRunner().invoke(app, ["rubric", "test", str(candidate), "--labels", str(labels), "--transcripts",
                                      str(out), "--min-agreement", "0", "--before", str(rubric_path_default())])
    assert tested.exit_code == 0, tested.output
    assert "before (" in tested.output and "forbidden_phrases" in tested.output
    assert "overall                    0/2 →" in tested.output


def test_an_override_that_names_no_words_is_listed_and_skipped(tmp_path):
    out = build_out(tmp_path / "out")
    override(out, "dev_06", "ask_need", "pass", "听了录音，有询问")
    result = CliRunner().invoke(app, ["rubric", "suggest", str(out), "--write", str(tmp_path / "c.yaml")])
    assert result.exit_code == 0, result.output
    assert "skipped dev_06 ask_need" in result.output and "quote the words" in result.output
    assert "0 new examples" in result.output
