"""`qa calibrate` on real calls: the two dev calls in tests/data/calls through the real model, against
the inspector's labels of the dev corpus (tests/data/dev_labels.json, which labels all 12 dev calls)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli import app
from qa_pipeline.scoring.rubric import rubric_path_default

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_calibrate_gives_the_figures_of_agreement_py(run_out, data_dir):
    labels = data_dir / "dev_labels.json"
    result = CliRunner().invoke(app, ["calibrate", str(run_out), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    rows = {r["item_id"]: r for r in pq.read_table(run_out / "calibration" / "items.parquet").to_pylist()}

    bench = subprocess.run([sys.executable, str(ROOT / "bench" / "agreement.py"), "--labels", str(labels),
                            "--out", str(run_out), "--no-run"], capture_output=True, text=True, check=True).stdout
    per_item = dict(re.findall(r"^(\w+)\s+(\d+\s+\d+)\s", bench, flags=re.M))
    for item_id, row in rows.items():
        if item_id != "*" and row["n"]:
            assert per_item[item_id].split() == [str(row["agree"]), str(row["n"])], item_id
    overall = rows["*"]
    assert f"overall agreement: {overall['agree']}/{overall['n']} = {overall['agreement']:.1%}" in bench

    # the same figures counted here from the items table and the labels file
    raw = json.loads(labels.read_text(encoding="utf-8"))
    machine = {(r["call_id"], r["item_id"]): r["result"] for r in pq.read_table(run_out / "scores" / "items").to_pylist()}
    pairs = [(machine[(c, i)], h) for c, call in raw.items() for i, h in call["items"].items() if (c, i) in machine]
    assert (overall["n"], overall["agree"]) == (len(pairs), sum(m == h for m, h in pairs))
    assert overall["n"] == 18  # 9 labelled items on each of the two calls

    # the ten labelled dev calls that are not in OUT are listed, not dropped
    unknown = {r["call_id"] for r in pq.read_table(run_out / "calibration" / "labels.parquet").to_pylist()
               if r["status"] == "unknown_call"}
    assert unknown == set(raw) - {"dev_07", "dev_11"}
    assert f"{sum(len(raw[c]['items']) for c in unknown)} labels not compared:" in result.output


def test_candidate_without_a_forbidden_phrase_changes_the_call_that_said_it(run_out, data_dir, tmp_path):
    # dev_07's agent says 你没听明白 (test_end_to_end: forbidden_phrases fails on it), and no other
    # forbidden phrase; dev_11 says none. Without that phrase (and its variant 你…没听明白), and with the
    # item's examples out of reach (their meaning would still catch it), exactly dev_07's verdict flips.
    text = rubric_path_default().read_text(encoding="utf-8")
    candidate = tmp_path / "candidate.yaml"
    assert text.count("    threshold: 0.68\n") == 1  # the forbidden item's
    candidate.write_text("".join(line for line in text.replace("    threshold: 0.68\n", "    threshold: 0.99\n")
                                 .splitlines(keepends=True) if "没听明白" not in line), encoding="utf-8")
    assert candidate.read_text(encoding="utf-8") != text
    result = CliRunner().invoke(app, ["calibrate", str(run_out), "--labels", str(data_dir / "dev_labels.json"),
                                      "--rubric", str(candidate)])
    assert result.exit_code == 0, result.output
    changes = pq.read_table(run_out / "calibration" / "candidate_changes.parquet").to_pylist()
    assert [(c["call_id"], c["item_id"], c["before"], c["after"], c["human"]) for c in changes] == [
        ("dev_07", "forbidden_phrases", "fail", "pass", ["fail"])]
    before = {r["item_id"]: r for r in pq.read_table(run_out / "calibration" / "items.parquet").to_pylist()}
    after = {r["item_id"]: r for r in pq.read_table(run_out / "calibration" / "candidate_items.parquet").to_pylist()}
    assert (before["forbidden_phrases"]["agree"], after["forbidden_phrases"]["agree"]) == (2, 1)
    assert "1 verdicts change on 2 re-scored calls" in result.output
