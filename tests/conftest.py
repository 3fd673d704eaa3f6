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
