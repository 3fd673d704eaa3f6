from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
sys.path.insert(0, str(Path(__file__).resolve().parent))  # audio_factory


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def calls_dir() -> Path:
    """Two real dev calls: dev_07 (stereo 8 kHz µ-law, agent on the right) and dev_11 (mono 8 kHz)."""
    return DATA / "calls"


@pytest.fixture(scope="session")
def transcript_cache(tmp_path_factory) -> Path:
    """One transcript cache for the whole session, so each real call is transcribed once per run."""
    return tmp_path_factory.mktemp("transcript-cache")


@pytest.fixture(scope="module")
def run_out(tmp_path_factory, calls_dir, transcript_cache) -> Path:
    """`qa run` of the two real dev calls into a fresh OUT, once per test module that asks for it."""
    from typer.testing import CliRunner

    from cli import app

    out = tmp_path_factory.mktemp("out")
    result = CliRunner().invoke(app, ["run", str(calls_dir), "--out", str(out), "--manifest",
                                      str(calls_dir / "manifest.csv"), "--cache-dir", str(transcript_cache)])
    assert result.exit_code == 0, result.output
    assert "2 calls: 2 scored, 0 failed" in result.output
    return out
