"""Everything the batch keeps on disk: parts, the transcript cache, the lock, the run log, run.json,
failed.csv, and the outputs written from the parts.

- ``OUT/parts/<call>.json``: each finished call's CallScore, CallTranscript (when it has one) and the
  fingerprint of everything its result depends on (batch.plan); written the moment the call is done,
  so that a killed run loses at most the calls in flight. A later run reuses a part whose
  fingerprint still matches; a part whose failure may be passing (``retry``) is never reused.
- the transcript cache (``<cache root>/transcripts/``): Whisper's expensive output per (audio
  content, model, options), shared by every OUT. The audio content is the digest of the bytes the
  decoder read (DecodedAudio.digest), not of an earlier look at the file.
- ``OUT/.lock`` (flock): one writer per output folder. The kernel drops a flock when its process
  dies, however it dies, so a crash never leaves a stale lock; the file's text (pid, host, since,
  command) only tells a second command who holds the folder.
- ``OUT/logs/run-<UTC time>-<pid>.jsonl``: the run log, one JSON object per line, flushed as written:
  ``start`` (settings, number of calls), one ``call`` per call (``call_id, status, error, error_kind,
  retry, reused, from_cache, audio_s, stages, seconds, processed_at, redo``) in the order they
  finished, then ``end`` (``total, ok, failed, reused, audio_s, wall_s, failed_list``) or ``abort``
  (``error``). Every object has ``time`` (UTC, ISO 8601).
- ``OUT/run.json``: every call ever run into OUT, for `qa score`; ``OUT/failed.csv``: the failures.

Every file is written with files.write_atomic; :func:`remove_temp_files` clears what a killed run
left, in these folders only.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import re
import signal
import socket
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from qa_pipeline.errors import InputError, OutputError, OutputLocked
from qa_pipeline.final_verdicts import MACHINE_ONLY, Reviews, untrusted
from qa_pipeline.files import remove_temp_files as remove_temp_files_in
from qa_pipeline.morning import Morning
from qa_pipeline.files import fit_stem, json_bytes, readable, write_atomic
from qa_pipeline.output.report import render_reports, start_call_cards
from qa_pipeline.output.tables import read_scores, write_scores, write_transcripts
from qa_pipeline.reasons.assign import CallRequest
from qa_pipeline.records import (AudioEvent, CachedAudio, CallMeta, CallMood, CallPart, CallScore, CallTranscript,
                                 ItemResult, RawSegment, RawWord, Utterance, VoiceTracks, Word)

PART_FORMAT = 2  # 2: items carry reason_code
PARTS_DIR = "parts"
LOGS_DIR = "logs"
LOCK_FILE = ".lock"
RUN_FILE = "run.json"
FAILED_FILE = "failed.csv"
CACHE_FORMAT = 1
# OUT's folders that the pipeline writes (the tables', the reports' and its own); temp files are
# cleared in these only, and at OUT's top level (run.json, failed.csv)
OWN_FOLDERS = (PARTS_DIR, LOGS_DIR, "transcripts", "recordings", "scores", "reports", "reviews", "calibration",
               "mood", "reasons", "alerts")


def make_output_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the output folder {out}: {e.strerror or e}") from e


def remove_temp_files(out: Path) -> None:
    """Delete the temp files of atomic writes that a killed run left in OUT (call it holding the
    lock: nobody else of ours writes OUT then); another tool's files in OUT are left alone."""
    out = Path(out)
    remove_temp_files_in([out], recursive=False)
    remove_temp_files_in(out / name for name in OWN_FOLDERS)


# --- parts ---------------------------------------------------------------------------------------


def part_path(parts_dir: Path, call_id: str) -> Path:
    """``parts/<call_id>.json`` for a plain id; other ids (odd characters, too long for a file
    name) are made safe and kept apart by a hash."""
    plain = re.fullmatch(r"[\w\-][\w.\-]*", call_id) is not None
    safe = call_id if plain else re.sub(r"[^\w\-]", "_", call_id)
    return Path(parts_dir) / f"{fit_stem(safe, call_id)}.json"


def write_part(parts_dir: Path, part: CallPart, *, before_rename=None) -> Path:
    """Write `part` atomically; `before_rename` (tests' fault hook) runs with the temp file complete."""
    path = part_path(parts_dir, part.call_id)
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


# --- the transcript cache -----------------------------------------------------------------------


def cache_key(audio_digest: str, model: str, options: dict) -> str:
    spec = json.dumps({"format": CACHE_FORMAT, "audio": audio_digest, "model": model, "options": options}, sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:32]


class TranscriptCache:
    """CachedAudio on disk, keyed by cache_key(audio content, model, options)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def contains(self, key: str) -> bool:
        return self._path(key).is_file()

    def get(self, key: str) -> CachedAudio | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable entry: transcribe again and overwrite it
        return CachedAudio(
            duration_s=data["duration_s"],
            n_channels=data["n_channels"],
            segments=tuple(
                RawSegment(**{**s, "words": tuple(RawWord(**w) for w in s["words"])}) for s in data["segments"]
            ),
            events=tuple(AudioEvent(**e) for e in data["events"]),
            speaker_turns=(
                tuple((float(a), float(b), int(c)) for a, b, c in data["speaker_turns"])
                if data.get("speaker_turns") is not None else None
            ),
            levels=tuple(tuple(int(v) for v in ch) for ch in data["levels"]) if data.get("levels") is not None else None,
            diarizer=data.get("diarizer"),
            loops_redecoded=bool(data.get("loops_redecoded", False)),
            voice=_voice(data.get("voice")),
            decoded_s=data.get("decoded_s"),
            container_s=data.get("container_s"),
            lost_s=float(data.get("lost_s", 0.0)),
            decode_errors=int(data.get("decode_errors", 0)),
            audio_note=data.get("audio_note"),
        )

    def put(self, key: str, entry: CachedAudio) -> None:
        write_atomic(self._path(key), json.dumps(asdict(entry), ensure_ascii=False))


def _voice(data: dict | None) -> VoiceTracks | None:
    """The voice tracks of a cache entry; None (measured again) when absent or unreadable."""
    try:
        return VoiceTracks(str(data["version"]), tuple(tuple(int(v) for v in ch) for ch in data["pitch"]),
                           tuple(tuple(int(v) for v in ch) for ch in data["level"])) if data else None
    except (KeyError, TypeError, ValueError):
        return None


# --- the lock ------------------------------------------------------------------------------------


@contextmanager
def output_lock(out: Path, command: str) -> Iterator[Path]:
    """Hold OUT/.lock for the duration; raise OutputLocked at once if another process holds it."""
    path = Path(out) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise OutputError(f"cannot write in {out}: {e.strerror or e}") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 400, 0).decode("utf-8", "replace").strip() or "another process"
            raise OutputLocked(
                f"{out} is being written by {holder}; wait for it to finish or choose another --out"
            ) from None
        since = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"`{command}` (pid {os.getpid()} on {socket.gethostname()}, since {since})\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock


# --- the run log ---------------------------------------------------------------------------------


class RunLog:
    def __init__(self, out: Path) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.path = Path(out) / LOGS_DIR / f"run-{stamp}-{os.getpid()}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8", errors="backslashreplace")  # a GBK file name: \udcXX

    def write(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **fields}
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a run log (a line cut short by a crash is skipped)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


# --- the outputs, run.json, failed.csv -----------------------------------------------------------


def write_outputs(out: Path, calls: list[CallMeta], transcripts: dict[str, CallTranscript], scores: list[CallScore],
                  reviews: Reviews = MACHINE_ONLY, *, new_transcripts: bool = True,
                  moods: Mapping[str, tuple[CallMood, CallRequest]] | None = None) -> Path:
    """Add this batch to OUT's tables (replacing earlier rows of the same calls) and render its
    call cards; the index and agent pages cover every night in OUT. Final verdicts (what
    ``reviews`` says people decided, e.g. the desk's decisions in OUT/review.db) go into the
    tables and pages beside the machine's. ``new_transcripts=False``: the transcripts are OUT's own
    (a re-score), and its transcript tables stay as they are. ``moods``: the mood and request of
    calls already read (morning.MoodReader), found again otherwise."""
    if new_transcripts:
        write_transcripts(out, [transcripts[c.call_id] for c in calls if c.call_id in transcripts],
                          replaces=[c.call_id for c in calls])
    fault("outputs")
    trust = reviews.trust(out, scores)  # labels vs every call in OUT, this night's verdicts included
    held = untrusted(trust)
    morning = Morning.of_night(out, transcripts, scores, found=moods)  # the customer's mood, each call's request
    batch_finals = reviews.finals(out, scores, export=False, untrusted=held)
    # the call cards need nothing written below: workers write them while this process writes the tables
    with start_call_cards(out, scores, transcripts, {c.call_id: c for c in calls}, finals=batch_finals,
                          moods=morning.cards(transcripts)) as cards:
        write_scores(out, scores, finals=batch_finals, moods=morning.moods)
        everything = read_scores(out)
        morning.write(out, scores)  # mood turns, reasons of the days this batch touched
        pages = morning.pages(out, transcripts)
        finals = reviews.finals(out, everything, untrusted=held)
        render_reports(out, scores, transcripts, {c.call_id: c for c in calls}, all_scores=everything,
                       finals=finals, item_trust=trust, morning=pages, cards=cards)
    morning.notify(out, scores, transcripts, finals)  # finals: every call in OUT, whose disputes may be overdue
    return out / "reports" / "index.html"


def write_run_file(out: Path, audio_dir: Path, model: str, calls: list[CallMeta]) -> None:
    """OUT/run.json: every call ever run into OUT (the latest run's metadata wins), for `qa score`.
    Paths are absolute, so `qa review` or a re-run started in another folder finds the audio."""
    latest = {c.call_id for c in calls}
    earlier = read_run_file(out) if (out / RUN_FILE).is_file() else []
    merged = [c for c in earlier if c.call_id not in latest] + list(calls)
    payload = {
        "audio_dir": str(Path(audio_dir).resolve()),
        "model": model,
        "calls": [{**asdict(c), "path": str(c.path)} for c in merged],
    }
    write_atomic(out / RUN_FILE, json_bytes(json.dumps(payload, ensure_ascii=False, indent=1)))


def read_run_file(out: Path) -> list[CallMeta]:
    path = Path(out) / RUN_FILE
    if not path.is_file():
        raise InputError(f"{out} holds no earlier run ({RUN_FILE} missing); run `qa run` first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [CallMeta(**{**c, "path": Path(c["path"])}) for c in data["calls"]]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:  # cut short, edited, another version
        why = e.strerror if isinstance(e, OSError) else f"{type(e).__name__}: {e}"
        raise InputError(f"{path}: not a readable run file ({why}); run `qa run` into {out} again") from e


def earlier_paths(out: Path) -> dict[str, Path]:
    """The recording of each call already run into OUT (run.json), by call_id; none when OUT has
    no readable run file (a run file that cannot be read is written again at the end)."""
    try:
        return {c.call_id: c.path for c in read_run_file(out)} if (Path(out) / RUN_FILE).is_file() else {}
    except InputError:
        return {}


def write_failed_list(out: Path, calls: list[CallMeta], results: dict[str, CallPart]) -> Path:
    """OUT/failed.csv: call_id, path, error, retry (whether the next run tries it again); header only if none."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["call_id", "path", "error", "retry"])
    for meta in calls:
        part = results[meta.call_id]
        if part.score.status != "ok":
            writer.writerow([csv_cell(meta.call_id), csv_cell(readable(str(meta.path))), csv_cell(part.score.error or ""),
                             "yes" if part.retry else "no"])
    path = out / FAILED_FILE
    write_atomic(path, buffer.getvalue())
    return path


_FORMULA_START = tuple("=+-@\t\r＝＋－＠")


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one that Excel or WPS would run as a formula (it starts
    with = + - @, a tab or a carriage return, or their full-width forms) gets a leading ' (OWASP's
    advice against CSV injection)."""
    return f"'{value}" if value.lstrip(" ").startswith(_FORMULA_START) else value


def fault(point: str, count: int | str | None = None) -> None:
    """Fault injection for tests/test_faults.py: with QA_FAULT_KILL=POINT or POINT:N, the process
    SIGKILLs itself there. Points: `part-tmp:N` (N-th part of this run written, not yet renamed),
    `part:N` (N-th part stored), `outputs` (transcript tables written, scores and reports not),
    `end` (every output written, the run log's end record not), `transcribe:CALL_ID` (Whisper
    about to hear that call, alone or in its group: as an out-of-memory kill would)."""
    spec = os.environ.get("QA_FAULT_KILL")
    if spec and spec == (point if count is None else f"{point}:{count}"):
        os.kill(os.getpid(), signal.SIGKILL)


def now() -> str:
    """The time a call is processed, as stored (UTC, ISO 8601, seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
