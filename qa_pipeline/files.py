"""Files the pipeline writes whole: the one atomic writer, its temp files, content digests.

Every file the pipeline writes (parts, transcript cache entries, Parquet tables, report pages,
run.json, failed.csv) goes through :func:`write_atomic`: a temp file in the same folder, fsync,
rename. A reader, or a run after a crash, sees the old file or the whole new one, never part of
it. The temp file is created with mode 0666 and the process umask applied, as any new file, so the
renamed file has the same mode whether it was written in place or not (0644 under umask 022).

File names made from ids go through :func:`fit_stem`, so that no id is too long for a file name.

Temp files are named ``.qa-tmp-*``: :func:`remove_temp_files` removes only that pattern, so a
clean-up after a killed run never touches another tool's files.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

TEMP_PREFIX = ".qa-tmp-"
# A file name is at most 255 bytes, and an id of 85 Chinese characters is already 255 bytes of
# UTF-8. A stem made from an id is at most this long, which leaves room for the extension and the
# temp file's prefix (".qa-tmp-XXXXXXXX-") in the same 255 bytes.
MAX_STEM_BYTES = 200


def write_atomic(path: Path, content: str | bytes | Callable[[BinaryIO], object], *, sync: bool = True,
                 before_rename: Callable[[], None] | None = None) -> None:
    """Write `content` (text as UTF-8, bytes, or a function that writes into the open binary file)
    to `path` via a temp file in the same folder and a rename. `sync=False` skips the fsync, for
    files rebuilt from others (report pages). `before_rename` (tests' fault hook) runs with the temp
    file complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(4)}-{path.name}"[:255]
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as to any new file
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        if before_rename is not None:
            before_rename()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_temp_files(folders: Iterable[Path], *, recursive: bool = True) -> None:
    """Delete the temp files of atomic writes that a killed run left in `folders` (``.qa-tmp-*``
    only: whatever else lives there is not the pipeline's)."""
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        found = folder.rglob(f"{TEMP_PREFIX}*") if recursive else folder.glob(f"{TEMP_PREFIX}*")
        for path in found:
            if path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)


def file_digest(path: Path) -> str:
    """sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fit_stem(stem: str, original: str, *, digest_chars: int = 10) -> str:
    """``stem`` (``original``, an id, made safe for a file name) cut to at most MAX_STEM_BYTES
    bytes. When ``stem`` had to differ from ``original`` (cleaned or cut), a hash of ``original``
    is appended so that distinct ids never share a file."""
    if stem == original and len(stem.encode("utf-8")) <= MAX_STEM_BYTES:
        return stem
    digest = hashlib.sha1(original.encode("utf-8")).hexdigest()[:digest_chars]
    budget = MAX_STEM_BYTES - len(digest) - 1
    cut = stem.encode("utf-8")[:budget].decode("utf-8", "ignore")  # never half a character
    return f"{cut}-{digest}"


_SURROGATE = re.compile("[\ud800-\udfff]")


def readable(text: str) -> str:
    """``text`` as valid Unicode: the bytes of a file name that are not UTF-8 (a GBK name; Python
    holds them as lone surrogates, see os.fsdecode) shown as U+FFFD, so that any writer of UTF-8
    (Parquet, a page, the terminal) takes it."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a lone surrogate that no file name made
        return _SURROGATE.sub("\ufffd", text)


def json_bytes(text: str) -> bytes:
    """The UTF-8 of JSON text written with ensure_ascii=False, where a path's undecodable bytes
    (lone surrogates, only ever inside a JSON string) are written as \\udcXX escapes, which
    json.loads reads back as the same surrogates: the path still opens the file."""
    return text.encode("utf-8", "backslashreplace")
