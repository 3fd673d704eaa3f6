"""The review desk's decisions as labels, and items whose automatic verdict is not trusted: their
fails held for a person (review queue, not counted in the final score) — on a real output folder
(tests/review_out.py: the 12 dev calls' reference transcripts, the real scoring, a real review.db)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli import app
from factories import make_score
from qa_pipeline.batch.rescore import rescore
from qa_pipeline.review.export import DESK_REVIEWS
from qa_pipeline.calibration.labels import ReviewLabels, label_source
from qa_pipeline.output.tables import read_scores
from qa_pipeline.calibration.compare import calibrate
from qa_pipeline.calibration.trust import TrustRule, item_trust
from qa_pipeline.records import FAIL, NA, PASS, ItemResult, Label
from qa_pipeline.review.actions import Request, act
from qa_pipeline.review.app import make_desk
from qa_pipeline.review.auth import Actor
from qa_pipeline.review.db import ReviewDB
from qa_pipeline.final_verdicts import CONFIRM, OVERRIDE, final_call
from qa_pipeline.review.policy import Policy, parse_policy, policy_for
from qa_pipeline.review.queue import UNTRUSTED, build_queue
from qa_pipeline.scoring.rubric import rubric_path_default
from qa_pipeline.scoring.score import call_outcome
from review_out import build_out

LINA = Actor("lina", "inspector")
TODAY = date(2025, 3, 8)


def decide(out: Path, call_id: str, item_id: str, action: str, result: str | None = None, who: Actor = LINA) -> None:
    score = next(s for s in read_scores(out) if s.call_id == call_id)
    db = ReviewDB.open(out)
    try:
        db.record_machine(read_scores(out))
        version = final_call(score, db.events(call_id)).item(item_id).version
        act(db, who, score, Request(action, item_id, result=result, reason="听了录音", version=version),
            policy=Policy(), today=TODAY)
    finally:
        db.close()


def items_of(out: Path) -> dict[tuple[str, str], dict]:
    return {(r["call_id"], r["item_id"]): r for r in pq.read_table(out / "scores" / "items").to_pylist()}


def calls_of(out: Path) -> dict[str, dict]:
    return {r["call_id"]: r for r in pq.read_table(out / "scores" / "calls").to_pylist()}


@pytest.fixture()
def reviewed_out(tmp_path) -> Path:
    """The machine fails dead_air on dev_06, dev_10 and dev_12; an inspector heard dev_10 and dev_12
    and overrode both to pass: the machine agrees with people on 0 of 2 dead_air labels."""
    out = build_out(tmp_path / "out")
    machine = items_of(out)
    assert [c for c in ("dev_06", "dev_10", "dev_12") if machine[(c, "dead_air")]["result"] == FAIL] == [
        "dev_06", "dev_10", "dev_12"]
    for call_id in ("dev_10", "dev_12"):
        decide(out, call_id, "dead_air", OVERRIDE, PASS)
    (out / "review-policy.yaml").write_text("trust:\n  min_labelled: 2\n", encoding="utf-8")  # 2 labelled calls judge
    return out


def test_decisions_are_labels_for_qa_calibrate(reviewed_out):
    labels = ReviewLabels(reviewed_out).read()
    assert [(x.call_id, x.item_id, x.result, x.inspector, x.role, x.judged, x.stale) for x in labels] == [
        ("dev_10", "dead_air", PASS, "lina", "inspector", FAIL, False),
        ("dev_12", "dead_air", PASS, "lina", "inspector", FAIL, False)]
    assert isinstance(label_source(reviewed_out), ReviewLabels)  # no --labels: the desk's decisions
    result = CliRunner().invoke(app, ["calibrate", str(reviewed_out)])
    assert result.exit_code == 0, result.output
    rows = {r["item_id"]: r for r in pq.read_table(reviewed_out / "calibration" / "items.parquet").to_pylist()}
    assert (rows["dead_air"]["n"], rows["dead_air"]["agree"], rows["dead_air"]["human_pass_machine_fail"]) == (2, 0, 2)
    assert rows["dead_air"]["labels_source"].endswith("review.db")
    versus = pq.read_table(reviewed_out / "calibration" / "inspectors.parquet").to_pylist()
    assert [(r["first"], r["second"], r["n"], r["agree"]) for r in versus] == [("lina", "machine", 2, 0)]


def test_an_untrusted_items_fails_wait_for_a_person_and_do_not_count(reviewed_out):
    result = CliRunner().invoke(app, ["score", str(reviewed_out)])  # the night again: trust from the decisions so far
    assert result.exit_code == 0, result.output
    items, calls = items_of(reviewed_out), calls_of(reviewed_out)
    held = {k for k, r in items.items() if r["held"]}
    assert held == {("dev_06", "dead_air")}  # the one dead_air fail nobody decided yet
    machine = next(s for s in read_scores(reviewed_out) if s.call_id == "dev_06")
    without = call_outcome([i for i in machine.items if i.item_id != "dead_air"], machine.pass_score)
    assert calls["dev_06"]["final_score"] == without[0] != calls["dev_06"]["score"]
    assert items[("dev_06", "dead_air")]["final_result"] == FAIL  # the machine's verdict stays on record
    index = (reviewed_out / "reports" / "index.html").read_text(encoding="utf-8")
    assert "自动判定不可信" in index
    # the rule's hit rate is the machine's: 3 dead_air fails in 12 calls, overrides notwithstanding
    assert re.search(r"<td>冷场</td>\s*<td class=\"num\">25%</td>", index)
    card = (reviewed_out / "reports" / "calls" / "dev_06.html").read_text(encoding="utf-8")
    assert "暂不计分" in card and "待人工复核" in card

    desk = make_desk(reviewed_out, policy_for(reviewed_out))
    try:
        entries = [e for e in build_queue(desk.finals(), desk.policy) if e.kind == UNTRUSTED]
        assert [(e.call_id, e.item_id, e.state) for e in entries] == [
            ("dev_10", "dead_air", "done"), ("dev_12", "dead_air", "done"), ("dev_06", "dead_air", "open")]
        assert desk.final("dev_06").score == calls["dev_06"]["final_score"]
    finally:
        desk.db.close()

    # the inspector confirms it: the fail counts again, and it is one more label
    decide(reviewed_out, "dev_06", "dead_air", CONFIRM)
    rescore(reviewed_out, rubric_path_default(), reviews=DESK_REVIEWS)
    items, calls = items_of(reviewed_out), calls_of(reviewed_out)
    assert not any(r["held"] for r in items.values())
    assert calls["dev_06"]["final_score"] == calls["dev_06"]["score"]


def test_the_policy_sets_n_and_the_floor(reviewed_out):
    decide(reviewed_out, "dev_06", "dead_air", CONFIRM)  # dead_air: 1 of 3 labels agree (33%)
    (reviewed_out / "review-policy.yaml").write_text("trust:\n  min_agreement: 0.3\n  min_labelled: 3\n", encoding="utf-8")
    rescore(reviewed_out, rubric_path_default(), reviews=DESK_REVIEWS)
    assert "自动判定不可信" not in (reviewed_out / "reports" / "index.html").read_text(encoding="utf-8")
    # the last call only (by call time: dev_06 on 03-07 13:00 after dev_10, dev_12 on 03-06): agrees
    (reviewed_out / "review-policy.yaml").write_text("trust:\n  last_n: 1\n  min_agreement: 0.9\n", encoding="utf-8")
    rescore(reviewed_out, rubric_path_default(), reviews=DESK_REVIEWS)
    assert "自动判定不可信" not in (reviewed_out / "reports" / "index.html").read_text(encoding="utf-8")
    (reviewed_out / "review-policy.yaml").write_text("trust:\n  last_n: 3\n  min_agreement: 0.9\n", encoding="utf-8")
    rescore(reviewed_out, rubric_path_default(), reviews=DESK_REVIEWS)
    assert "自动判定不可信" in (reviewed_out / "reports" / "index.html").read_text(encoding="utf-8")


def test_a_bad_policy_file_leaves_the_night_on_the_default_rule(reviewed_out, caplog):
    (reviewed_out / "review-policy.yaml").write_text("trust:\n  min_agreement: high\n", encoding="utf-8")
    rescore(reviewed_out, rubric_path_default(), reviews=DESK_REVIEWS)
    assert "review policy not used for trust" in caplog.text
    assert {k for k, r in items_of(reviewed_out).items() if r["held"]} == set()  # the default: 20 labelled calls


def test_policy_trust_defaults_and_values():
    assert (Policy().trust.last_n, Policy().trust.min_agreement) == (50, 0.8)
    p = parse_policy("trust:\n  last_n: 20\n  min_agreement: 0.95\n")
    assert (p.trust.last_n, p.trust.min_agreement) == (20, 0.95)


def test_final_call_holds_only_undecided_fails_of_untrusted_items():
    its = (
        ItemResult("c", "greeting", "开头问候", FAIL, 0, 10, "没有说您好"),
        ItemResult("c", "closing", "结束语", PASS, 10, 10, "说了再见"),
        ItemResult("c", "apology", "致歉", NA, 0, 10, "没有投诉"),
        ItemResult("c", "forbidden", "禁用语", FAIL, 0, 20, "这是规定", critical=True),
    )
    total, passed, critical = call_outcome(its, 80.0)
    s = replace(make_score("c", items=its), score=total, passed=passed, critical_failed=critical, pass_score=80.0)
    assert final_call(s, [], untrusted={"closing"}).score == s.score  # a pass is never held
    held = final_call(s, [], untrusted={"greeting", "forbidden"})
    assert [i.held for i in held.items] == [True, False, False, True]
    assert (held.score, held.passed, held.critical_failed) == (100.0, True, False)  # only closing counts
    assert held.as_score().items[0].result == FAIL  # shown as the machine said, with the hold beside it


def test_one_label_is_no_measure_of_trust(tmp_path):
    """Issue 22: a single override made self_introduction "not trusted", held dev_04's fail of it and
    moved dev_04's final score 70.0 → 77.8. The rule now waits for min_labelled labelled calls."""
    out = build_out(tmp_path / "out")
    decide(out, "dev_07", "self_introduction", OVERRIDE, PASS)  # the one label: the machine was wrong once
    assert CliRunner().invoke(app, ["score", str(out)]).exit_code == 0
    calls, items = calls_of(out), items_of(out)
    assert (calls["dev_04"]["score"], calls["dev_04"]["final_score"]) == (70.0, 70.0)
    assert not any(r["held"] for r in items.values())
    assert "自动判定不可信" not in (out / "reports" / "index.html").read_text(encoding="utf-8")
    (out / "review-policy.yaml").write_text("trust:\n  min_labelled: 1\n", encoding="utf-8")  # the old rule
    assert CliRunner().invoke(app, ["score", str(out)]).exit_code == 0
    calls, items = calls_of(out), items_of(out)
    assert (calls["dev_04"]["score"], calls["dev_04"]["final_score"]) == (70.0, 77.8)
    assert {k for k, r in items.items() if r["held"]} == {("dev_04", "self_introduction"), ("dev_12", "self_introduction")}


def test_trust_is_judged_from_min_labelled_calls_on():
    scores = [make_score(f"c{k:02d}", started_at=f"2025-03-{1 + k % 28:02d}T10:00:00+08:00") for k in range(25)]
    greeting = next(i for i in scores[0].items if i.item_id == "greeting")
    labels = [Label(s.call_id, "greeting", PASS if greeting.result == FAIL else FAIL) for s in scores]  # always disagree
    judged = calibrate(labels, scores).judged
    rule = TrustRule(last_n=50, min_agreement=0.8, min_labelled=20)
    assert item_trust(judged[:19], ["greeting"], rule)["greeting"].trusted  # 19 labelled calls: not judged yet
    at_20 = item_trust(judged[:20], ["greeting"], rule)["greeting"]
    assert (at_20.recent_calls, at_20.recent_rate, at_20.trusted) == (20, 0.0, False)
    assert not item_trust(judged[:5], ["greeting"], TrustRule(last_n=5, min_labelled=20))["greeting"].trusted  # at most last_n
