"""Real audio through `qa run` and `qa score`: voice measured, mood and reasons written, re-scored
without audio to the same values."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli import app

pytestmark = pytest.mark.slow


def test_customer_voices_are_measured(run_out):
    rows = [r for r in pq.read_table(run_out / "transcripts").to_pylist() if not r["dropped"]]
    customer = [r for r in rows if r["speaker"] == "customer" and len(r["text"]) >= 4]
    assert customer and all(r["level_db"] is not None and -60 < r["level_db"] < 0 for r in customer)
    pitched = [r["pitch_hz"] for r in customer if r["pitch_hz"] is not None]
    assert len(pitched) >= 0.8 * len(customer) and all(70 <= p <= 400 for p in pitched)


def test_mood_and_reasons_are_written_and_rescoring_keeps_them(run_out):
    turns = pq.read_table(run_out / "mood" / "turns.parquet").to_pylist()
    utterances = [r for r in pq.read_table(run_out / "transcripts").to_pylist()
                  if not r["dropped"] and r["speaker"] == "customer"]
    assert sorted(t["utterance_id"] for t in turns) == sorted(u["utterance_id"] for u in utterances)
    assert all(0 <= t["frustration"] <= 1 for t in turns)
    calls = {c["call_id"]: c for c in pq.read_table(run_out / "scores" / "calls").to_pylist()}
    assert all(c["frustration_peak"] == max(t["frustration"] for t in turns if t["call_id"] == cid)
               for cid, c in calls.items())
    reasons = pq.read_table(run_out / "reasons").to_pylist()
    assert sorted(r["call_id"] for r in reasons) == sorted(calls) and all(r["request"] for r in reasons)
    for call_id in calls:
        assert 'id="mood"' in (run_out / "reports" / "calls" / f"{call_id}.html").read_text(encoding="utf-8")
    result = CliRunner().invoke(app, ["score", str(run_out)])
    assert result.exit_code == 0, result.output
    again = pq.read_table(run_out / "mood" / "turns.parquet").to_pylist()
    assert again == turns
