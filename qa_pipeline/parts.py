"""Per-call results of a batch, on disk: what makes `qa run` resumable.

After each call the batch writes ``OUT/parts/<call>.json`` (temp file + fsync + rename): the
call's CallScore, its CallTranscript (when it has one) and a fingerprint of everything the result
depends on — audio content, model and options, rubric text, the call's manifest row, the part
format. A later run of the same command reuses a part whose fingerprint still matches instead of
processing the call again, and the outputs are consolidated from the parts at the end. A part
whose failure may be passing (``retry``) is never reused: the call is tried again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa_pipeline.records import AudioEvent, CallMeta, CallScore, CallTranscript, ItemResult, Utterance, Word

PART_FORMAT = 1
PARTS_DIR = "parts"


@dataclass(frozen=True)
class CallPart:
    """One call's finished result, as the batch stores it between runs."""

    call_id: str
    fingerprint: str  # "" when the audio could not be read: such a part never matches
    score: CallScore
    transcript: CallTranscript | None  # None for a failed call
    retry: bool = False  # failed for a reason that may pass: process it again on the next run
    error_kind: str | None = None  # the exception class of a failure, e.g. DecodeError, NoSpeech
    inputs: dict[str, str] = field(default_factory=dict)  # call_inputs(): says what changed when a part is redone


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


def part_path(parts_dir: Path, call_id: str) -> Path:
    """``parts/<call_id>.json`` for a plain id; other ids are made safe and kept apart by a hash."""
    if re.fullmatch(r"[\w\-][\w.\-]{0,100}", call_id):
        return Path(parts_dir) / f"{call_id}.json"
    safe = re.sub(r"[^\w\-]", "_", call_id)[:80]
    return Path(parts_dir) / f"{safe}-{hashlib.sha1(call_id.encode()).hexdigest()[:10]}.json"


def write_part(parts_dir: Path, part: CallPart, *, before_rename=None) -> Path:
    """Write `part` atomically; `before_rename` (tests' fault hook) runs with the temp file complete."""
    path = part_path(parts_dir, part.call_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": PART_FORMAT,
        "call_id": part.call_id,
        "fingerprint": part.fingerprint,
        "retry": part.retry,
        "error_kind": part.error_kind,
        "inputs": part.inputs,
        "score": asdict(part.score),
        "transcript": asdict(part.transcript) if part.transcript is not None else None,
    }
    write_atomic(path, json.dumps(payload, ensure_ascii=False), before_rename=before_rename)
    return path


def write_atomic(path: Path, text: str, *, before_rename=None) -> None:
    """Write `text` to `path` via a temp file in the same folder, fsync and rename: a reader (or a
    run after a crash) sees the old file or the whole new one, never part of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are for the team to read
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if before_rename is not None:
            before_rename()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_part(parts_dir: Path, call_id: str) -> CallPart | None:
    """The stored part of `call_id`, or None when there is none or it cannot be used."""
    path = part_path(parts_dir, call_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != PART_FORMAT or data.get("call_id") != call_id:
            return None
        return CallPart(
            call_id=call_id,
            fingerprint=data["fingerprint"],
            score=score_from_dict(data["score"]),
            transcript=transcript_from_dict(data["transcript"]) if data["transcript"] is not None else None,
            retry=bool(data["retry"]),
            error_kind=data.get("error_kind"),
            inputs=dict(data.get("inputs") or {}),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable or from another version: the call is processed again


def score_from_dict(d: dict[str, Any]) -> CallScore:
    return CallScore(**{**d, "items": tuple(ItemResult(**i) for i in d["items"])})


def _utterance(d: dict[str, Any]) -> Utterance:
    return Utterance(**{**d, "words": tuple(Word(**w) for w in d["words"])})


def transcript_from_dict(d: dict[str, Any]) -> CallTranscript:
    return CallTranscript(
        **{
            **d,
            "utterances": tuple(_utterance(u) for u in d["utterances"]),
            "events": tuple(AudioEvent(**e) for e in d["events"]),
            "dropped": tuple(_utterance(u) for u in d["dropped"]),
            "drop_reasons": tuple(d["drop_reasons"]),
        }
    )
