"""Find the calls to process: audio files under a folder, joined with a manifest or a file-name pattern."""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import logging
import os
import re
from pathlib import Path

from qa_pipeline.errors import InputError
from qa_pipeline.files import readable
from qa_pipeline.linear_re import compile_regex
from qa_pipeline.records import CallMeta
from qa_pipeline.timestamps import ALLOWED as TIME_FORMS
from qa_pipeline.timestamps import parse_started_at

logger = logging.getLogger("qa_pipeline")

AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg", ".opus", ".amr", ".awb", ".3gp", ".3ga", ".wma",
                            ".webm"})
MANIFEST_COLUMNS = ("call_id", "path")
KNOWN_COLUMNS = ("call_id", "path", "agent_id", "agent_name", "team", "started_at", "direction", "hangup_by",
                 "agent_channel", "company")
HANGUP_VALUES = ("agent", "customer", "unknown", "")
CHANNEL_VALUES = ("0", "1", "")
DIRECTIONS = {"inbound": "inbound", "outbound": "outbound", "呼入": "inbound", "呼出": "outbound", "": None}
PATTERN_FIELDS = ("call_id", "agent_id", "team", "date", "time", "direction", "any")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def discover(audio_dir: Path, *, manifest: Path | None = None, name_pattern: str | None = None) -> list[CallMeta]:
    """Every call to process, sorted by call_id. Raises InputError for an unusable folder or manifest."""
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise InputError(f"audio folder not found: {readable(str(audio_dir))}")
    if manifest is not None:
        return read_manifest(manifest, audio_dir)
    parse = compile_name_pattern(name_pattern) if name_pattern else None
    calls: dict[str, CallMeta] = {}
    for path in audio_files(audio_dir):
        name = readable(path.name)  # a name that is not UTF-8 (GBK) with U+FFFD where it cannot be read
        fields = parse(name) if parse else {}
        if parse and fields is None:
            raise InputError(f"{readable(str(path))}: file name does not match --name-pattern {name_pattern!r}")
        call_id = (fields or {}).get("call_id") or call_id_of(path.stem)
        if call_id in calls:
            raise InputError(f"two files give call_id {call_id!r}: {readable(str(calls[call_id].path))} and "
                             f"{readable(str(path))}")
        started_at = None
        if fields and fields.get("date"):
            written = _iso_date(fields["date"]) + (f"T{_iso_time(fields['time'])}" if fields.get("time") else "")
            started_at = parse_started_at(written)
            if started_at is None:
                raise InputError(f"{readable(str(path))}: {{date}}/{{time}} {written!r} is not a date and time")
        direction = (fields or {}).get("direction")
        if direction is not None:
            direction = _direction(direction, f"{readable(str(path))}: {{direction}}")
        calls[call_id] = CallMeta(
            call_id=call_id,
            path=_resolved(path),  # run.json keeps it: `qa review` and a re-run started elsewhere find the audio
            agent_id=(fields or {}).get("agent_id"),
            team=(fields or {}).get("team"),
            started_at=started_at,
            direction=direction,
        )
    if not calls:
        raise InputError(f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) under {readable(str(audio_dir))}")
    return sorted(calls.values(), key=lambda c: c.call_id)


def audio_files(audio_dir: Path) -> list[Path]:
    """Every file named like audio under ``audio_dir``, sorted; anything so named but a folder
    (a broken link, a file that cannot be read) too, so that it becomes a failed call rather than
    being left out silently.

    One rule for symbolic links, to files and to folders alike: a link that leads out of the audio
    folder is refused (InputError, naming the link and where it leads), as a manifest's paths are;
    one that leads inside is not followed, as what it leads to is found where it is (a recording
    reached by two paths is one call)."""
    root = audio_dir.resolve()
    found: list[Path] = []
    stack = [audio_dir]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            raise InputError(f"cannot read the folder {readable(str(folder))}: {e.strerror or e}") from e
        for entry in entries:
            path = Path(entry.path)
            named_audio = path.suffix.lower() in AUDIO_SUFFIXES
            if entry.is_symlink():
                is_dir = _is_dir(entry)
                if not (is_dir or named_audio):
                    continue
                target = _resolved(path)
                if not target.is_relative_to(root):
                    what = "folder" if is_dir else "file"
                    raise InputError(f"{readable(str(path))}: links to {readable(str(target))}, outside the audio "
                                     f"folder {readable(str(audio_dir))} (a linked {what} must stay inside it)")
                if is_dir or (target.suffix.lower() in AUDIO_SUFFIXES and target.exists()):
                    continue  # found where it is
                found.append(path)  # broken, or to a file not named like audio: a call of its own
            elif _is_dir(entry):
                stack.append(path)
            elif named_audio:
                found.append(path)
    return sorted(found, key=str)


def _resolved(path: Path) -> Path:
    """``path`` absolute, every link followed; a loop of links as far as it goes (it fails as a call)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return path.absolute()


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows a link
    except OSError:
        return False


def call_id_of(stem: str) -> str:
    """A file's call_id: its stem, read from its bytes as UTF-8 whatever the locale; a stem that is
    not UTF-8 (a GBK name from a Windows recorder) is shown with U+FFFD where it cannot be read,
    plus a hash of its bytes, so that two such names never give the same id."""
    raw = os.fsencode(stem)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"{raw.decode('utf-8', 'replace')}-{hashlib.sha1(raw).hexdigest()[:8]}"


def _direction(value: str, where: str) -> str | None:
    found = DIRECTIONS.get(value.strip().lower(), "?")
    if found == "?":
        raise InputError(f"{where} {value!r} (allowed: inbound, outbound, 呼入, 呼出 or blank)")
    return found


def read_manifest(manifest: Path, audio_dir: Path | None = None) -> list[CallMeta]:
    """Read and check a manifest CSV; paths are relative to the manifest's folder.

    Every problem is reported as `FILE:LINE: what is wrong`, before any audio is touched.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise InputError(f"manifest not found: {manifest}")
    base = manifest.resolve().parent
    allowed_roots = [base] + ([Path(audio_dir).resolve()] if audio_dir else [])
    rows = _manifest_rows(manifest)
    if not rows:
        raise InputError(f"{manifest}:1: empty manifest; expected a header with {', '.join(MANIFEST_COLUMNS)}")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in MANIFEST_COLUMNS if c not in header]
    if missing:
        raise InputError(f"{manifest}:1: missing column(s) {', '.join(missing)} (have: {', '.join(header)})")
    for n, name in enumerate(header):
        if name and name in header[:n]:  # csv.DictReader-like tools would keep the last one silently
            raise InputError(f"{manifest}:1: column {name!r} appears twice (columns {header.index(name) + 1} and "
                             f"{n + 1}); a column may appear once")
    for name in header:
        if name and name not in KNOWN_COLUMNS:
            close = difflib.get_close_matches(name.lower(), KNOWN_COLUMNS, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            logger.warning("%s:1: unknown column %r is ignored (%sknown: %s)", manifest, name, hint,
                           ", ".join(KNOWN_COLUMNS))
    calls: list[CallMeta] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(f"{manifest}:{line}: {len(row)} fields, the header has {len(header)}")
        record = {key: value.strip() for key, value in zip(header, row)}
        call_id = record["call_id"]
        where = f"{manifest}:{line}"
        bad = next((key for key, value in record.items() if _CONTROL.search(value)), None)
        if bad is not None:
            raise InputError(f"{where}: {bad} holds a control character (such as NUL); only printable text is allowed")
        if not call_id:
            raise InputError(f"{where}: empty call_id")
        if not re.fullmatch(r"[\w.\-]+", call_id):
            raise InputError(f"{where}: call_id {call_id!r} may hold only letters, digits, '_', '-' and '.'")
        if call_id in seen:
            raise InputError(f"{where}: duplicate call_id {call_id!r} (first on line {seen[call_id]})")
        seen[call_id] = line
        if not record["path"]:
            raise InputError(f"{where}: empty path")
        path = (base / record["path"]).resolve()
        if not any(path.is_relative_to(root) for root in allowed_roots):
            raise InputError(f"{where}: path {record['path']!r} points outside the manifest's and the audio folder")
        hangup = record.get("hangup_by", "").lower()
        if hangup not in HANGUP_VALUES:
            raise InputError(f"{where}: hangup_by {record['hangup_by']!r} (allowed: agent, customer, unknown or blank)")
        channel = record.get("agent_channel", "")
        if channel not in CHANNEL_VALUES:
            raise InputError(f"{where}: agent_channel {channel!r} (allowed: 0, 1 or blank)")
        direction = _direction(record.get("direction", ""), f"{where}: direction")
        started_at = parse_started_at(record.get("started_at", ""))
        if record.get("started_at") and started_at is None:
            raise InputError(f"{where}: started_at {record['started_at']!r} is not a date and time "
                             f"(allowed: {TIME_FORMS})")
        calls.append(
            CallMeta(
                call_id=call_id,
                path=path,
                agent_id=record.get("agent_id") or None,
                agent_name=record.get("agent_name") or None,
                team=record.get("team") or None,
                started_at=started_at,
                direction=direction,
                hangup_by=hangup if hangup in ("agent", "customer") else None,
                agent_channel=int(channel) if channel else None,
                line=line,
                company=record.get("company") or None,
            )
        )
    if not calls:
        raise InputError(f"{manifest}: no calls listed")
    return calls


def _manifest_rows(manifest: Path) -> list[list[str]]:
    """The CSV's rows; a file that is not UTF-8 (a GBK export from Excel) is refused naming its line."""
    try:
        data = manifest.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read the manifest {manifest}: {e.strerror or e}") from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise InputError(f"{manifest}:{line}: not UTF-8 text (a GBK file from Excel or WPS?); "
                         "save the manifest as UTF-8 (\"CSV UTF-8\")") from e
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise InputError(f"{manifest}: not a readable CSV file ({e})") from e


def compile_name_pattern(pattern: str):
    """`{date}_{agent_id}_{call_id}.wav` → a function from a file name to its fields (or None).

    The pattern runs on RE2, in time linear in the file name: seven fields side by side on a long
    name that does not match say so at once instead of backtracking for hours."""
    parts = re.split(r"(\{\w+\})", pattern)
    regex = ""
    seen: set[str] = set()
    for part in parts:
        field = re.fullmatch(r"\{(\w+)\}", part)
        if field:
            name = field.group(1)
            if name not in PATTERN_FIELDS:
                raise InputError(f"--name-pattern: unknown field {{{name}}} (allowed: {', '.join(PATTERN_FIELDS)})")
            if name in seen and name != "any":
                raise InputError(f"--name-pattern: field {{{name}}} appears twice in {pattern!r}")
            seen.add(name)
            regex += f"(?P<{name}>.+?)" if name != "any" else ".+?"
        else:
            regex += re.escape(part)
    regex += ("" if "." in pattern.rsplit("}", 1)[-1] else r"\.\w+") + "$"
    try:
        compiled = compile_regex(regex)
    except ValueError as e:
        raise InputError(f"--name-pattern {pattern!r} cannot be used: {e}") from None

    def parse(name: str) -> dict[str, str] | None:
        match = compiled.match(name)
        return match.groupdict() if match else None

    return parse


def _iso_date(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    if len(digits) == 8:
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
    return text


def _iso_time(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    if len(digits) == 6:
        return f"{digits[:2]}:{digits[2:4]}:{digits[4:]}"
    return text
