"""`qa calibrate`, `qa rubric test` and the index's rule hit rates, on hand-built output folders
(factories; the scoring is the real one). The real-audio counterpart is test_calibrate_dev.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli import app
from factories import make_failed_score, make_items, make_meta, make_score, make_transcript
from qa_pipeline.batch.rescore import rescore
from qa_pipeline.review.export import DESK_REVIEWS
from qa_pipeline.batch.store import RUN_FILE
from qa_pipeline.calibration.candidate import compare_candidate
from qa_pipeline.calibration.compare import calibrate
from qa_pipeline.calibration.labels import LabelError, label_source, parse_csv, parse_json
from qa_pipeline.calibration.stats import agreement, cohen_kappa
from qa_pipeline.calibration.tables import ITEM_STATS_SCHEMA, LABELS_SCHEMA, RATERS_SCHEMA
from qa_pipeline.calibration.trust import TrustRule, item_trust
from qa_pipeline.errors import InputError
from qa_pipeline.output.report import item_health, sparkline
from qa_pipeline.output.tables import read_scores, write_scores, write_transcripts
from qa_pipeline.records import FAIL, NA, PASS, ItemResult, Label
from qa_pipeline.scoring.rubric import RubricError, load_rubric, parse_rubric, rubric_path_default

ROOT = Path(__file__).resolve().parent.parent


# --- statistics ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        # Wikipedia, "Cohen's kappa": 50 grant proposals, two readers; p_o = 0.7, p_e = 0.5
        ([[20, 5], [10, 15]], 0.4),
        # Wikipedia, "same percentage agreement, different kappa"
        ([[45, 15], [25, 15]], 0.1304),
        ([[25, 35], [5, 35]], 0.2593),
        ([[4, 4], [4, 4]], 0.0),  # chance agreement only
        ([[0, 5], [5, 0]], -1.0),  # always opposite
        ([[3, 0, 0], [0, 4, 0], [0, 0, 5]], 1.0),
    ],
)
def test_cohen_kappa_known_examples(matrix, expected):
    assert cohen_kappa(matrix) == pytest.approx(expected, abs=5e-5)


def test_kappa_undefined_when_both_raters_never_vary():
    assert cohen_kappa([[7, 0], [0, 0]]) is None
    assert cohen_kappa([[0, 0], [0, 0]]) is None


def test_agreement_precision_and_recall_of_fail():
    # (person, machine): 3 both fail, 1 machine-only fail, 2 person-only fails, 4 agree on pass/na
    pairs = [(FAIL, FAIL)] * 3 + [(PASS, FAIL)] + [(FAIL, PASS), (FAIL, NA)] + [(PASS, PASS)] * 3 + [(NA, NA)]
    a = agreement(pairs)
    assert (a.n, a.agree, a.rate) == (10, 7, 0.7)
    assert a.fail_precision == pytest.approx(3 / 4)
    assert a.fail_recall == pytest.approx(3 / 5)
    assert a.confusion == ((3, 1, 0), (1, 3, 1), (0, 0, 1))  # rows: person pass/fail/na
    assert agreement([(PASS, PASS)]).fail_precision is None  # the machine never said fail


# --- label files -----------------------------------------------------------------------------


def test_csv_labels_with_and_without_header():
    with_header = parse_csv("call_id,item_id,result,inspector\nc1,greeting,pass,张三\nc1,apology,n/a,\n", "l.csv")
    assert [(x.call_id, x.item_id, x.result, x.inspector, x.where) for x in with_header] == [
        ("c1", "greeting", PASS, "张三", "l.csv:2"), ("c1", "apology", NA, None, "l.csv:3")]
    bare = parse_csv("c1,greeting,未通过\n\nc2,greeting,不适用\n", "l.csv")
    assert [(x.result, x.where) for x in bare] == [(FAIL, "l.csv:1"), (NA, "l.csv:3")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("call_id,item_id,result\nc1,greeting,good\n", "l.csv:2: result 'good' is not pass, fail or na"),
        ("c1,greeting\n", "l.csv:1: expected call_id,item_id,result[,inspector], got 2 fields"),
        ("c1,greeting,pass,a\nc2,greeting,pass,a\nc1,greeting,fail,a\n",
         "l.csv:3: c1 greeting judged twice by a (first at l.csv:1)"),
        ("call_id,item_id,result,who\n", "l.csv:1: columns must be call_id,item_id,result[,inspector]"),
        (",greeting,pass\n", "l.csv:1: call_id and item_id must not be empty"),
    ],
)
def test_bad_csv_labels_name_the_line(text, message):
    with pytest.raises(LabelError) as e:
        parse_csv(text, "l.csv")
    assert str(e.value).startswith(message)


def test_two_inspectors_may_judge_the_same_item():
    labels = parse_csv("c1,greeting,pass,a\nc1,greeting,fail,b\n", "l.csv")
    assert [x.inspector for x in labels] == ["a", "b"]


def test_json_labels_in_the_dev_corpus_layout(data_dir):
    labels = parse_json((data_dir / "dev_labels.json").read_text(encoding="utf-8"), "dev_labels.json")
    raw = json.loads((data_dir / "dev_labels.json").read_text(encoding="utf-8"))
    assert len(labels) == sum(len(c["items"]) for c in raw.values())
    assert {(x.call_id, x.item_id): x.result for x in labels} == {
        (c, i): r for c, call in raw.items() for i, r in call["items"].items()}
    with pytest.raises(LabelError, match=r"l.json: call c1 item greeting: result 'ok'"):
        parse_json('{"c1": {"items": {"greeting": "ok"}}}', "l.json")
    with pytest.raises(LabelError, match=r"l.json:1: not valid JSON"):
        parse_json("{", "l.json")


def test_label_source_defaults_to_the_files_in_out(tmp_path):
    with pytest.raises(InputError, match="no labels found"):
        label_source(tmp_path)
    (tmp_path / "labels.csv").write_text("c1,greeting,pass\n", encoding="utf-8")
    assert [x.call_id for x in label_source(tmp_path).read()] == ["c1"]


# --- matching labels to verdicts -------------------------------------------------------------


def items_with(call_id: str, **results: str) -> tuple[ItemResult, ...]:
    return tuple(replace(i, result=results.get(i.item_id, i.result)) for i in make_items(call_id))


def scores_three_days():
    return [
        make_score("c1", started_at="2025-03-03T09:00:00+08:00"),
        make_score("c2", started_at="2025-03-04T09:00:00+08:00", items=items_with("c2", greeting=FAIL)),
        make_score("c3", started_at="2025-03-05T09:00:00+08:00"),
        make_failed_score("bad", started_at="2025-03-05T10:00:00+08:00"),
    ]


def test_every_label_is_compared_or_listed():
    labels = [
        Label("c1", "greeting", PASS), Label("c2", "greeting", PASS), Label("c3", "greeting", PASS),
        Label("c1", "hold_etiquette", PASS),  # the machine said fail (make_items)
        Label("nope", "greeting", PASS), Label("bad", "greeting", PASS), Label("c1", "no_such_item", FAIL),
    ]
    c = calibrate(labels, scores_three_days())
    assert [(u.label.call_id, u.why) for u in c.unmatched] == [
        ("nope", "unknown_call"), ("bad", "call_failed"), ("c1", "unknown_item")]
    assert len(c.judged) + len(c.unmatched) == len(labels)
    by_item = {i.item_id: i for i in c.items}
    assert [i.item_id for i in c.items] == [i.item_id for i in make_items("x")]  # rubric order, unlabelled items too
    assert (by_item["greeting"].stats.n, by_item["greeting"].stats.agree) == (3, 2)
    assert by_item["apology"].stats.n == 0 and by_item["apology"].stats.rate is None
    assert by_item["hold_etiquette"].n_review == 1  # make_items flags hold_etiquette needs_review
    assert (c.overall.stats.n, c.overall.stats.agree) == (4, 2)


def test_since_leaves_out_earlier_calls_and_says_how_many():
    from datetime import date

    labels = [Label(c, "greeting", PASS) for c in ("c1", "c2", "c3")]
    c = calibrate(labels, scores_three_days(), since=date(2025, 3, 4))
    assert c.left_out == 1 and {j.label.call_id for j in c.judged} == {"c2", "c3"}


def test_between_inspectors_and_each_against_the_machine():
    labels = [
        Label("c1", "greeting", PASS, inspector="a"), Label("c1", "greeting", PASS, inspector="b"),
        Label("c2", "greeting", PASS, inspector="a"), Label("c2", "greeting", FAIL, inspector="b"),
        Label("c3", "greeting", PASS, inspector="a"),  # judged by a alone: not in the pair
    ]
    c = calibrate(labels, scores_three_days())
    [pair] = c.inspectors
    assert (pair.first, pair.second, pair.stats.n, pair.stats.agree) == ("a", "b", 2, 1)
    machine = {r.first: (r.stats.n, r.stats.agree) for r in c.versus_machine}
    assert machine == {"a": (3, 2), "b": (2, 2)}  # the machine said fail on c2's greeting


# --- a candidate rubric ----------------------------------------------------------------------


def transcribed_out(tmp_path: Path, n: int = 3) -> Path:
    """An OUT as `qa run` leaves it, with the factories' transcript for each call, scored by the default rubric."""
    out = tmp_path / "out"
    metas = [make_meta(f"c{k}", started_at=f"2025-03-0{k + 1}T09:00:00+08:00") for k in range(n)]
    write_transcripts(out, [make_transcript(m.call_id) for m in metas])
    (out / RUN_FILE).write_text(json.dumps({"audio_dir": "/nonexistent", "model": "base", "calls": [
        {**asdict(m), "path": str(m.path)} for m in metas]}), encoding="utf-8")
    rescore(out, rubric_path_default(), reviews=DESK_REVIEWS)
    return out


def without_phrases(item_id: str, field: str, *texts: str):
    """The default rubric with phrases taken out of one item's check."""
    rubric = load_rubric(rubric_path_default())
    items = []
    for item in rubric.items:
        if item.id == item_id:
            phrases = getattr(item.check, field)
            assert set(texts) <= {p.text for p in phrases}
            item = replace(item, check=replace(item.check, **{field: tuple(p for p in phrases if p.text not in texts)}))
        items.append(item)
    return replace(rubric, items=tuple(items), path="candidate.yaml")


def test_candidate_without_a_phrase_changes_exactly_the_calls_that_relied_on_it(tmp_path):
    out = transcribed_out(tmp_path)
    # Every call's agent thanks the customer after the hold with '感谢您的耐心等待' and says nothing
    # else from the `after` list: without 耐心等待 (and 耐心等候, which sounds the same but for one
    # syllable and matches by pinyin, and 耐心 alone) each hold is unthanked and the item fails.
    before = {(s.call_id, i.item_id): i for s in read_scores(out) for i in s.items}
    assert all(before[(c, "hold_etiquette")].result == PASS for c in ("c0", "c1", "c2"))
    labels = [Label(c, "hold_etiquette", PASS) for c in ("c0", "c1", "c2")] + [Label("c0", "greeting", PASS)]
    cand = compare_candidate(out, labels, without_phrases("hold_etiquette", "after", "耐心等待", "耐心等候", "耐心"))
    assert [(ch.call_id, ch.item_id, ch.before, ch.after, ch.human) for ch in cand.changes] == [
        (c, "hold_etiquette", PASS, FAIL, (PASS,)) for c in ("c0", "c1", "c2")]
    agreement_of = lambda cal: {i.item_id: i.stats.rate for i in cal.items}  # noqa: E731
    assert agreement_of(cand.before)["hold_etiquette"] == 1.0 and agreement_of(cand.after)["hold_etiquette"] == 0.0
    assert agreement_of(cand.after)["greeting"] == 1.0
    assert cand.n_calls == 3 and cand.no_transcript == ()
    # OUT untouched: still the default rubric's verdicts
    assert {(s.call_id, i.item_id): i.result for s in read_scores(out) for i in s.items} == {
        k: v.result for k, v in before.items()}


def test_the_same_rubric_as_a_candidate_changes_nothing(tmp_path):
    out = transcribed_out(tmp_path, n=2)
    cand = compare_candidate(out, [Label("c0", "greeting", PASS)], load_rubric(rubric_path_default()))
    assert cand.changes == () and cand.n_calls == 1  # only the labelled call is re-scored


# --- the command line: tables, page, agreement.py --------------------------------------------


def scored_out(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    items_c2 = tuple(replace(i, reason="客户号码13905728846未复述", evidence_text="号码是13905728846吗")
                     if i.item_id == "confirm_details" else i for i in items_with("c2", confirm_details=FAIL))
    write_scores(out, [
        make_score("c1", started_at="2025-03-03T09:00:00+08:00"),
        make_score("c2", started_at="2025-03-04T09:00:00+08:00", items=items_c2),
        make_failed_score("bad", started_at="2025-03-04T10:00:00+08:00"),
    ])
    return out


LABELS_JSON = {
    "c1": {"items": {"greeting": "pass", "confirm_details": "pass", "hold_etiquette": "pass", "apology": "na"}},
    "c2": {"items": {"greeting": "pass", "confirm_details": "pass", "hold_etiquette": "fail", "apology": "fail"}},
    "bad": {"items": {"greeting": "pass"}},
    "gone": {"items": {"greeting": "fail"}},
}


def test_calibrate_and_agreement_py_give_the_same_figures(tmp_path):
    out = scored_out(tmp_path)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(LABELS_JSON), encoding="utf-8")
    result = CliRunner().invoke(app, ["calibrate", str(out), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    rows = {r["item_id"]: r for r in pq.read_table(out / "calibration" / "items.parquet").to_pylist()}

    # counted here from the tables and the labels, independently of the library
    machine = {(r["call_id"], r["item_id"]): r["result"] for r in pq.read_table(out / "scores" / "items").to_pylist()}
    pairs = [(c, i, h) for c, call in LABELS_JSON.items() for i, h in call["items"].items() if (c, i) in machine]
    assert (rows["*"]["n"], rows["*"]["agree"]) == (len(pairs), sum(machine[(c, i)] == h for c, i, h in pairs)) == (8, 5)

    bench = subprocess.run([sys.executable, str(ROOT / "bench" / "agreement.py"), "--labels", str(labels),
                            "--out", str(out), "--no-run"], capture_output=True, text=True, check=True).stdout
    per_item = dict(re.findall(r"^(\w+)\s+(\d+\s+\d+)\s", bench, flags=re.M))
    for item_id, row in rows.items():
        if item_id != "*" and row["n"]:
            assert per_item[item_id].split() == [str(row["agree"]), str(row["n"])]
    assert f"overall agreement: {rows['*']['agree']}/{rows['*']['n']} = {rows['*']['agreement']:.1%}" in bench

    # unknown calls and failed calls are listed, by the command and in the tables
    assert "2 labels not compared:" in result.output
    assert "gone greeting: unknown_call" in result.output and "bad greeting: call_failed" in result.output
    statuses = {(r["call_id"], r["status"]) for r in pq.read_table(out / "calibration" / "labels.parquet").to_pylist()}
    assert ("gone", "unknown_call") in statuses and ("bad", "call_failed") in statuses


def test_calibration_tables_have_their_documented_schemas(tmp_path):
    out = scored_out(tmp_path)
    (out / "labels.csv").write_text("c1,greeting,pass,a\nc1,greeting,fail,b\nc2,greeting,pass,a\n", encoding="utf-8")
    assert CliRunner().invoke(app, ["calibrate", str(out)]).exit_code == 0
    folder = out / "calibration"
    assert pq.read_schema(folder / "items.parquet").remove_metadata() == ITEM_STATS_SCHEMA
    assert pq.read_schema(folder / "labels.parquet").remove_metadata() == LABELS_SCHEMA
    assert pq.read_schema(folder / "inspectors.parquet").remove_metadata() == RATERS_SCHEMA
    raters = {(r["first"], r["second"]): (r["n"], r["agree"]) for r in pq.read_table(folder / "inspectors.parquet").to_pylist()}
    assert raters == {("a", "b"): (1, 0), ("a", "machine"): (2, 2), ("b", "machine"): (1, 0)}
    greeting = next(r for r in pq.read_table(folder / "items.parquet").to_pylist() if r["item_id"] == "greeting")
    assert (greeting["n"], greeting["human_fail_machine_pass"], greeting["human_pass_machine_pass"]) == (3, 1, 2)
    assert not (folder / "candidate_items.parquet").exists()


def test_calibration_page_links_disagreements_to_the_evidence_and_masks_numbers(tmp_path):
    out = scored_out(tmp_path)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(LABELS_JSON), encoding="utf-8")
    assert CliRunner().invoke(app, ["calibrate", str(out), "--labels", str(labels)]).exit_code == 0
    page = (out / "reports" / "calibration.html").read_text(encoding="utf-8")
    assert "机器评分与人工标注一致性" in page and "不一致明细（3）" in page
    for call_id, item_id in (("c2", "confirm_details"), ("c2", "apology"), ("c1", "hold_etiquette")):
        assert f'href="calls/{call_id}.html#item-{item_id}"' in page
    assert "13905728846" not in page and "［手机号］" in page
    assert "输出目录中没有这通通话" in page and "该通话处理失败，没有评分" in page


def test_calibrate_refuses_bad_input_with_one_line(tmp_path):
    out = scored_out(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("c1,greeting,maybe\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["calibrate", str(out), "--labels", str(bad)])
    assert result.exit_code == 2 and f"error: {bad}:1: result 'maybe' is not pass, fail or na" in result.output
    result = CliRunner().invoke(app, ["calibrate", str(out), "--labels", str(bad), "--since", "March"])
    assert result.exit_code == 2 and "--since 'March': expected a day as YYYY-MM-DD" in result.output
    result = CliRunner().invoke(app, ["calibrate", str(tmp_path / "nothing"), "--labels", str(bad)])
    assert result.exit_code == 2 and "no scores" in result.output


def test_calibrate_takes_the_output_lock_like_run_and_score(tmp_path):
    """A `qa run` or `qa score` rewriting OUT's scores while calibrate reads them would mix two nights."""
    out = scored_out(tmp_path)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(LABELS_JSON), encoding="utf-8")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from qa_pipeline.batch.store import output_lock\n"
         "with output_lock(Path(sys.argv[1]), 'qa run'):\n    print('held', flush=True); time.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = CliRunner().invoke(app, ["calibrate", str(out), "--labels", str(labels)])
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"error: {out} is being written by `qa run` (pid {holder.pid} on ")
        assert not (out / "calibration").exists()
    finally:
        holder.kill()
        holder.wait()
    assert CliRunner().invoke(app, ["calibrate", str(out), "--labels", str(labels)]).exit_code == 0


def test_calibrate_with_a_candidate_rubric_from_the_command_line(tmp_path):
    out = transcribed_out(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text("".join(f"c{k},hold_etiquette,pass\n" for k in range(3)), encoding="utf-8")
    text = rubric_path_default().read_text(encoding="utf-8")
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(re.sub(r"(after: \[[^\]]*?), 耐心等待, 耐心等候([^\]]*?), 耐心,", r"\1\2,", text), encoding="utf-8")
    assert candidate.read_text(encoding="utf-8") != text
    result = CliRunner().invoke(app, ["calibrate", str(out), "--labels", str(labels), "--rubric", str(candidate)])
    assert result.exit_code == 0, result.output
    assert "3 verdicts change on 3 re-scored calls" in result.output
    assert "c1 hold_etiquette: pass → fail (labelled pass)" in result.output
    changes = pq.read_table(out / "calibration" / "candidate_changes.parquet").to_pylist()
    assert sorted((c["call_id"], c["before"], c["after"]) for c in changes) == [(f"c{k}", PASS, FAIL) for k in range(3)]
    page = (out / "reports" / "calibration.html").read_text(encoding="utf-8")
    assert "判定改变的通话（3）" in page and "偏离人工" in page


# --- qa rubric test --------------------------------------------------------------------------


def test_rubric_test_exits_1_under_the_floor(tmp_path):
    out = transcribed_out(tmp_path)
    labels = tmp_path / "labels.csv"
    # the machine passes greeting on all three; the labels agree on two of them (66.7%)
    labels.write_text("c0,greeting,pass\nc1,greeting,pass\nc2,greeting,fail\nc0,apology,fail\n", encoding="utf-8")
    rubric = str(rubric_path_default())
    run = lambda *extra: CliRunner().invoke(app, ["rubric", "test", rubric, "--labels", str(labels),  # noqa: E731
                                                  "--transcripts", str(out), *extra])
    low = run("--min-agreement", "0.6")
    assert low.exit_code == 0, low.output
    assert "ok: every labelled item at or above its floor (4 labels)" in low.output
    high = run("--min-agreement", "0.7")
    assert high.exit_code == 1 and "FAILED: agreement under the floor on greeting" in high.output
    none = run()
    assert none.exit_code == 2 and "no agreement floor" in none.output


def test_rubric_test_takes_the_floor_from_the_rubric(tmp_path):
    out = transcribed_out(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text("c0,greeting,pass\nc1,greeting,pass\nc2,greeting,fail\n", encoding="utf-8")
    text = rubric_path_default().read_text(encoding="utf-8")
    rubric = tmp_path / "floors.yaml"
    rubric.write_text(text.replace("pass_score: 80\n", "pass_score: 80\nmin_agreement: 0.5\n", 1)
                      .replace("  - id: greeting\n", "  - id: greeting\n    min_agreement: 0.9\n", 1), encoding="utf-8")
    loaded = load_rubric(rubric)
    assert loaded.min_agreement == 0.5 and loaded.items[0].min_agreement == 0.9
    result = CliRunner().invoke(app, ["rubric", "test", str(rubric), "--labels", str(labels), "--transcripts", str(out)])
    assert result.exit_code == 1 and "greeting" in result.output.split("FAILED:")[1]


def test_rubric_floor_must_be_a_share():
    text = rubric_path_default().read_text(encoding="utf-8").replace("pass_score: 80\n", "pass_score: 80\nmin_agreement: 90\n", 1)
    with pytest.raises(RubricError, match=r"r.yaml:\d+: min_agreement must be a share between 0 and 1"):
        parse_rubric(text, "r.yaml")


def test_rubric_test_refuses_labels_that_match_nothing(tmp_path):
    out = transcribed_out(tmp_path, n=1)
    labels = tmp_path / "labels.csv"
    labels.write_text("zz,greeting,pass\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["rubric", "test", str(rubric_path_default()), "--labels", str(labels),
                                      "--transcripts", str(out), "--min-agreement", "0.8"])
    assert result.exit_code == 2 and "none of the 1 labels matches" in result.output


# --- trust and the nightly index -------------------------------------------------------------


def test_trust_looks_at_the_last_n_labelled_calls_only():
    scores = [make_score(f"c{d}", started_at=f"2025-03-{d:02d}T09:00:00+08:00") for d in range(1, 11)]
    # greeting: the machine passes every call; people said fail on the five oldest, pass on the five newest
    labels = [Label(f"c{d}", "greeting", FAIL if d <= 5 else PASS) for d in range(1, 11)]
    judged = calibrate(labels, scores).judged
    recent = item_trust(judged, ["greeting", "apology"], TrustRule(last_n=5, min_agreement=0.8))
    assert (recent["greeting"].n, recent["greeting"].rate) == (10, 0.5)
    assert (recent["greeting"].recent_n, recent["greeting"].recent_rate, recent["greeting"].trusted) == (5, 1.0, True)
    assert recent["apology"].n == 0 and recent["apology"].trusted  # nobody judged it: nothing to distrust
    longer = item_trust(judged, ["greeting"], TrustRule(last_n=10, min_agreement=0.8))
    assert not longer["greeting"].trusted


def test_item_health_fail_rate_per_day():
    scores = scores_three_days()  # c2 (day 2) fails greeting; hold_etiquette fails every day
    rows = {r["item_id"]: r for r in item_health(scores)}
    assert rows["greeting"]["fail_rate"] == "33%" and rows["hold_etiquette"]["fail_rate"] == "100%"
    assert rows["greeting"]["days_title"] == "03-03 0%；03-04 100%；03-05 0%"
    ys = [float(p.split(",")[1]) for p in rows["greeting"]["spark"]["polyline"].split()]
    assert ys[1] < ys[0] == ys[2]  # the failing day drawn higher
    assert rows["apology"]["spark"]["polyline"] == ""  # n/a every day: nothing to draw
    assert sparkline([None, 0.5])["polyline"].count(",") == 1


def test_nightly_index_shows_agreement_and_untrusted_items(tmp_path):
    out = transcribed_out(tmp_path)
    index = (out / "reports" / "index.html").read_text(encoding="utf-8")
    assert "评分项命中率" in index and "<svg class=\"spark\"" in index and "与人工一致率" not in index
    (out / "labels.csv").write_text("".join(f"c{k},greeting,pass\nc{k},hold_etiquette,fail\n" for k in range(3)),
                                    encoding="utf-8")
    (out / "review-policy.yaml").write_text("trust:\n  min_labelled: 3\n", encoding="utf-8")  # 3 labelled calls judge
    rescore(out, rubric_path_default(), reviews=DESK_REVIEWS)
    index = (out / "reports" / "index.html").read_text(encoding="utf-8")
    assert "与人工一致率" in index
    untrusted = re.findall(r'<tr class="not-trusted">\s*<td>([^<]+)</td>', index)
    assert untrusted == ["等待礼仪"]  # the machine passed every hold the inspectors failed
    assert "自动判定不可信" in index


def test_a_bad_labels_file_never_breaks_the_night(tmp_path, caplog):
    out = transcribed_out(tmp_path, n=1)
    (out / "labels.csv").write_text("c0,greeting,maybe\n", encoding="utf-8")
    rescore(out, rubric_path_default(), reviews=DESK_REVIEWS)
    assert "labels not used in the report" in caplog.text
    assert "与人工一致率" not in (out / "reports" / "index.html").read_text(encoding="utf-8")
