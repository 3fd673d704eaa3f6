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
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qa_pipeline.audio.decode import audio_digest
from qa_pipeline.batch.stages import TranscribeStage
from qa_pipeline.batch.store import PART_FORMAT, read_part
from qa_pipeline.errors import AudioMissing, InputError
from qa_pipeline.files import json_bytes, readable
from qa_pipeline.records import CallMeta, CallPart, Todo

GROUP_SIZE = 4  # calls transcribed together by the packed decoder: fuller batches, at most this many lost to a crash


@dataclass(frozen=True)
class Plan:
    done: list[tuple[CallMeta, CallPart, float]]  # finished by an earlier run: (meta, part, seconds spent hashing)
    todo: list[Todo]  # the rest, cached transcripts first


def make_plan(calls: list[CallMeta], stage: TranscribeStage, settings: dict, rubric_digest: str, parts_dir: Path,
              *, retry_failed: bool = False, earlier_paths: dict[str, Path] | None = None) -> Plan:
    """Split the calls into those an earlier run of the same command finished and those still to do.
    ``retry_failed``: a call that failed for good (retry=no) is to do again too. ``earlier_paths``:
    the recording of each call_id already in OUT (run.json); InputError for a call_id that now
    names another recording (see same_call)."""
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
        earlier = read_part(parts_dir, meta.call_id)
        same_call(meta, digest, (earlier_paths or {}).get(meta.call_id), earlier, parts_dir.parent)
        part = earlier if digest else None
        retried = retry_failed and part is not None and part.score.status != "ok"
        if part is not None and part.fingerprint == fp and not part.retry and not retried:
            done.append((meta, part, hash_s))
        else:
            cached = digest is not None and stage.cache.contains(stage.cache_key(digest))
            redo = None
            if part is not None:
                redo = (("--retry-failed" if retried and not part.retry else "failed last time")
                        if part.fingerprint == fp else f"{', '.join(changed_inputs(part, inputs))} changed")
            todo.append(Todo(meta, digest, fp, hash_s, cached, inputs, redo,
                             earlier.score.processed_at if earlier is not None else None))
    # cached transcripts first, so that the ETA soon measures only real transcription
    todo.sort(key=lambda t: not t.cached)
    return Plan(done, todo)


def same_call(meta: CallMeta, digest: str | None, earlier_path: Path | None, earlier: CallPart | None,
              out: Path) -> None:
    """Refuse (InputError, before any audio is decoded) a call_id that OUT already holds for
    another recording: a later night's n2/0001.wav after n1/0001.flac would otherwise replace the
    earlier call in every table. The same path, or the same audio under another path (a folder
    moved or copied), is the same call."""
    if earlier_path is None or Path(earlier_path) == meta.path:
        return
    if digest is not None and earlier is not None and earlier.inputs.get("audio") == digest:
        return
    raise InputError(
        f"call_id {meta.call_id!r} is already in {out} for another recording: {readable(str(earlier_path))}; "
        f"this run gives it {readable(str(meta.path))}. A call_id names one call: give the calls ids that "
        "differ (a manifest's call_id, or --name-pattern with the date) or run into another --out")


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
    row = {**asdict(meta), "path": os.fsencode(meta.path).decode("utf-8", "surrogateescape")}  # whatever the locale
    row.pop("line", None)
    return {"audio": audio_digest, "meta": _digest(row), "settings": _digest(settings), "rubric": rubric_digest}


def fingerprint(audio_digest: str, meta: CallMeta, settings: dict[str, Any], rubric_digest: str) -> str:
    """One digest of :func:`call_inputs`: a part is reused only while this stays the same."""
    return _digest({"format": PART_FORMAT, **call_inputs(audio_digest, meta, settings, rubric_digest)})


def changed_inputs(part: CallPart, inputs: dict[str, str]) -> list[str]:
    """Which of the call's inputs differ from when `part` was made (for the run log)."""
    return [k for k, v in inputs.items() if part.inputs.get(k) != v] or ["format"]


def _digest(value: Any) -> str:
    return hashlib.sha256(json_bytes(json.dumps(value, sort_keys=True, ensure_ascii=False))).hexdigest()


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
