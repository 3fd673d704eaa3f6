"""What a batch has to do and what an earlier run of the same command already did.

A call's fingerprint digests everything its result depends on: audio content, model and options,
rubric text, its manifest row, the part format. A stored part (batch.store) whose fingerprint still
matches, and which did not fail for a passing reason, is reused; every other call is to do, the
cached ones first (quick), in groups that the packed decoder transcribes together. Eta estimates
the time left from the calls of the same kind done so far.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qa_pipeline.audio.decode import audio_digest
from qa_pipeline.batch.stages import TranscribeStage
from qa_pipeline.batch.store import PART_FORMAT, read_part
from qa_pipeline.errors import AudioMissing
from qa_pipeline.records import CallMeta, CallPart, Todo

GROUP_SIZE = 4  # calls transcribed together by the packed decoder: fuller batches, at most this many lost to a crash


@dataclass(frozen=True)
class Plan:
    done: list[tuple[CallMeta, CallPart, float]]  # finished by an earlier run: (meta, part, seconds spent hashing)
    todo: list[Todo]  # the rest, cached transcripts first


def make_plan(calls: list[CallMeta], stage: TranscribeStage, settings: dict, rubric_digest: str, parts_dir: Path) -> Plan:
    """Split the calls into those an earlier run of the same command finished and those still to do."""
    done: list[tuple[CallMeta, CallPart, float]] = []
    todo: list[Todo] = []
    for meta in calls:
        t0 = time.monotonic()
        try:
            digest: str | None = audio_digest(meta.path)
        except AudioMissing:
            digest = None  # processing it says why, in the same words as a file that vanishes later
        hash_s = time.monotonic() - t0
        fp = fingerprint(digest, meta, settings, rubric_digest) if digest else ""
        inputs = call_inputs(digest, meta, settings, rubric_digest) if digest else {}
        part = read_part(parts_dir, meta.call_id) if digest else None
        if part is not None and part.fingerprint == fp and not part.retry:
            done.append((meta, part, hash_s))
        else:
            cached = digest is not None and stage.cache.contains(stage.cache_key(digest))
            redo = None
            if part is not None:
                redo = "failed last time" if part.fingerprint == fp else f"{', '.join(changed_inputs(part, inputs))} changed"
            todo.append(Todo(meta, digest, fp, hash_s, cached, inputs, redo))
    # cached transcripts first, so that the ETA soon measures only real transcription
    todo.sort(key=lambda t: not t.cached)
    return Plan(done, todo)


def groups(todo: list[Todo], size: int, alone: frozenset[str] = frozenset()) -> list[list[Todo]]:
    """The calls in groups of `size`, in order; a call in `alone` (one that was in hand when a
    worker died: batch.crashes) in a group of its own, so that it cannot take others down with it."""
    out: list[list[Todo]] = []
    together: list[Todo] = []
    for item in todo:
        if item.meta.call_id in alone:
            out.append([item])
            continue
        together.append(item)
        if len(together) == size:
            out.append(together)
            together = []
    if together:
        out.append(together)
    return out


def call_inputs(audio_digest: str, meta: CallMeta, settings: dict[str, Any], rubric_digest: str) -> dict[str, str]:
    """A digest of each thing a call's result depends on; the manifest line number is left out."""
    row = {**asdict(meta), "path": str(meta.path)}
    row.pop("line", None)
    return {"audio": audio_digest, "meta": _digest(row), "settings": _digest(settings), "rubric": rubric_digest}


def fingerprint(audio_digest: str, meta: CallMeta, settings: dict[str, Any], rubric_digest: str) -> str:
    """One digest of :func:`call_inputs`: a part is reused only while this stays the same."""
    return _digest({"format": PART_FORMAT, **call_inputs(audio_digest, meta, settings, rubric_digest)})


def changed_inputs(part: CallPart, inputs: dict[str, str]) -> list[str]:
    """Which of the call's inputs differ from when `part` was made (for the run log)."""
    return [k for k, v in inputs.items() if part.inputs.get(k) != v] or ["format"]


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class Eta:
    """Seconds left, measured on the calls that needed work of the same kind.

    Reused parts cost nothing and cached transcripts almost nothing; counting them with the calls
    Whisper must hear would make the estimate far too hopeful after a resume.
    """

    def __init__(self, todo: list[Todo]) -> None:
        self.left = {True: sum(t.cached for t in todo), False: sum(not t.cached for t in todo)}
        self.spent = {True: 0.0, False: 0.0}
        self.count = {True: 0, False: 0}

    def finished(self, cached: bool, seconds: float) -> None:
        self.left[cached] -= 1
        self.spent[cached] += seconds
        self.count[cached] += 1

    def seconds_left(self) -> float | None:
        total = 0.0
        for kind in (True, False):
            if not self.left[kind]:
                continue
            if not self.count[kind]:
                if kind:
                    continue  # quick calls not yet measured: count them as nothing
                return None  # no call transcribed yet: unknown
            total += self.left[kind] * self.spent[kind] / self.count[kind]
        return total
