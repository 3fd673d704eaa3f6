"""tools/compare_outputs.py finds every kind of difference between two output folders, and none
where only processed_at differs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("compare_outputs", ROOT / "tools" / "compare_outputs.py")
compare_outputs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_outputs)


def folder(root: Path, *, processed_at: str, score: float = 90.0, page: str = "ok") -> Path:
    day = root / "scores" / "calls" / "call_date=2025-03-03"
    day.mkdir(parents=True)
    pq.write_table(pa.table({"call_id": ["a"], "score": [score], "processed_at": [processed_at]}), day / "part-0.parquet")
    (root / "reports").mkdir()
    (root / "reports" / "a.html").write_text(f"<p>{page}</p>\n<p>处理时间 {processed_at[:10]} {processed_at[11:19]}</p>\n")
    (root / "parts").mkdir()
    (root / "parts" / "a.json").write_text(json.dumps({"call_id": "a", "score": {"processed_at": processed_at}}))
    (root / "logs").mkdir()
    (root / "logs" / f"run-{processed_at}.jsonl").write_text("{}")
    return root


def test_only_processed_at_differs(tmp_path):
    a = folder(tmp_path / "a", processed_at="2026-01-01T10:00:00+00:00")
    b = folder(tmp_path / "b", processed_at="2026-01-01T10:00:07+00:00")
    assert compare_outputs.compare(a, b) == (3, {})


def test_a_cell_a_page_and_a_file_that_differ_are_found(tmp_path):
    a = folder(tmp_path / "a", processed_at="2026-01-01T10:00:00+00:00")
    b = folder(tmp_path / "b", processed_at="2026-01-01T10:00:07+00:00", score=85.0, page="changed")
    (b / "extra.csv").write_text("x")
    n, problems = compare_outputs.compare(a, b)
    assert n == 3 and set(problems) == {"scores/calls/call_date=2025-03-03/part-0.parquet", "reports/a.html",
                                        "extra.csv"}
    assert problems["scores/calls/call_date=2025-03-03/part-0.parquet"] == ["row 0 score: 90.0 vs 85.0"]
    assert problems["extra.csv"] == ["only in head"]
