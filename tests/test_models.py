from pathlib import Path

import pytest

from qa_pipeline.errors import ModelError
from qa_pipeline.models import embedded_model_dir, resolve_model


def test_embedded_model_is_assembled_once(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path))
    first = embedded_model_dir()
    assert {p.name for p in first.iterdir()} == {"model.bin", "config.json", "tokenizer.json", "vocabulary.json"}
    assert (first / "model.bin").stat().st_size > 100_000_000
    mtime = (first / "model.bin").stat().st_mtime_ns
    assert embedded_model_dir() == first
    assert (first / "model.bin").stat().st_mtime_ns == mtime
    assert resolve_model("base") == str(first)


def test_local_folder_and_hub_name(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    assert resolve_model(str(tmp_path)) == str(tmp_path.resolve())
    assert resolve_model("large-v3") == "large-v3"


def test_folder_without_model_is_refused(tmp_path):
    with pytest.raises(ModelError, match="no model.bin"):
        resolve_model(str(tmp_path))


def test_hub_name_offline_says_what_to_do(monkeypatch):
    from qa_pipeline.asr.transcribe import Transcriber

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"cannot load model 'small'.*use --model base"):
        Transcriber("small", device="cpu")
