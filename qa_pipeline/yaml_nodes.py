"""Typed values out of a YAML file people write (a rubric, a review policy), every error naming the line.

The text is composed to nodes (:func:`compose_text`), never loaded to plain values, so that each
value keeps its line; a :class:`NodeReader` turns nodes into typed values and refuses what it
cannot use with one line ``FILE:LINE: what is wrong``, raised as the caller's :class:`LineError`.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from qa_pipeline.errors import InputError


class LineError(InputError):
    """A file that cannot be used; str() is one line: FILE:LINE: what is wrong."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


MAX_BYTES = 4 << 20  # a rubric of 10,000 items is about 1.5 MB
MAX_DEPTH = 64  # lists and mappings inside each other; a rubric needs 6


class Unreadable(ValueError):
    """A file that cannot be taken as YAML text; str() says why, never what the file holds.
    `opened`: False when the system refused to open or read it (str() is then its reason)."""

    def __init__(self, why: str, line: int = 0, *, opened: bool = True) -> None:
        super().__init__(why)
        self.line = line
        self.opened = opened


def read_limited(path: Path) -> str:
    """The UTF-8 text of a regular file of at most MAX_BYTES; Unreadable otherwise (a folder, a
    device such as /dev/zero, a pipe, a file too large or not UTF-8), read no further than needed."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise Unreadable("is not a regular file")
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise Unreadable(str(e.strerror or e), opened=False) from e
    if len(data) > MAX_BYTES:
        raise Unreadable(f"is larger than {MAX_BYTES >> 20} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Unreadable("is not UTF-8 text", 1) from e


def read_text(path: Path, error: type[LineError], what: str) -> str:
    """The file's text; `error` (line 0: cannot read, line 1: not UTF-8) naming it as `what`."""
    try:
        return read_limited(path)
    except Unreadable as e:
        raise error(str(path), e.line, f"{what} {e}" if e.opened else f"cannot read {what}: {e}") from e


def compose_text(text: str, path: str, error: type[LineError]) -> yaml.Node | None:
    """The YAML text's root node (None: empty); `error` at the line YAML stumbled on, or where it
    nests deeper than MAX_DEPTH (PyYAML composes nodes recursively: 100,000 nested lists would end
    in a RecursionError)."""
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):  # events: no recursion
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise error(path, event.start_mark.line + 1, f"nested more than {MAX_DEPTH} levels deep")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise error(path, mark.line + 1 if mark is not None else 1, f"not valid YAML: {e.problem or e.context}") from e
    except yaml.YAMLError as e:
        raise error(path, 1, f"not valid YAML: {e}") from e


class NodeReader:
    """Typed values out of the nodes of the file at `path`; errors are `error_type` naming the node's line."""

    def __init__(self, path: str, error_type: type[LineError]) -> None:
        self.path = path
        self.error_type = error_type
        self._loader = yaml.SafeLoader("")

    def error(self, node: yaml.Node, message: str) -> LineError:
        return self.error_type(self.path, node.start_mark.line + 1, message)

    def scalar(self, node: yaml.Node) -> Any:
        """The value of a scalar node (None for a list or mapping); a tagged value that does not
        parse (!!float abc, !!int 0xZZ, !!binary "…", !!timestamp x) is an error, not a traceback."""
        if not isinstance(node, yaml.ScalarNode):
            return None
        try:
            return self._loader.construct_object(node, deep=True)
        # binascii.Error (!!binary) is a ValueError
        except (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError) as e:
            tag = node.tag.rsplit(":", 1)[-1] if node.tag.startswith("tag:yaml.org,2002:") else node.tag
            raise self.error(node, f"{node.value!r} is not a valid !!{tag}" if isinstance(node.value, str)
                             else f"cannot read this value ({e})") from None

    def mapping(self, node: yaml.Node, what: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping (allowed keys: {', '.join(allowed)})")
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            key = self.scalar(k)
            if not isinstance(key, str):
                raise self.error(k, f"{what}: keys must be strings")
            if key in out:
                raise self.error(k, f"{what}: duplicate key '{key}'")
            if key not in allowed:
                raise self.error(k, f"{what}: unknown key '{key}' (allowed: {', '.join(allowed)})")
            out[key] = v
        return out

    def string(self, node: yaml.Node, what: str) -> str:
        v = self.scalar(node)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)  # version: 1.2 is fine
        if not isinstance(v, str) or not v.strip():
            raise self.error(node, f"{what} must be a non-empty string")
        return v

    def boolean(self, node: yaml.Node, what: str) -> bool:
        v = self.scalar(node)
        if not isinstance(v, bool):
            raise self.error(node, f"{what} must be true or false")
        return v

    def integer(self, node: yaml.Node, what: str, *, minimum: int = 0, maximum: int | None = None) -> int:
        v = self.scalar(node)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(node, f"{what} must be an integer")
        if v < minimum:
            raise self.error(node, f"{what} must be >= {minimum}")
        if maximum is not None and v > maximum:
            raise self.error(node, f"{what} must be <= {maximum}")
        return v

    def finite(self, node: yaml.Node, what: str) -> float:
        """A number that is one: not a string or bool, not .nan or .inf."""
        v = self.scalar(node)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(node, f"{what} must be a number")
        try:
            v = float(v)
        except OverflowError:  # an integer of hundreds of digits
            raise self.error(node, f"{what} must be a finite number") from None
        if not math.isfinite(v):
            raise self.error(node, f"{what} must be a finite number, not {v}")
        return v

    def number(self, node: yaml.Node, what: str, *, minimum: float = 0.0, above: bool = False,
               maximum: float | None = None) -> float:
        v = self.finite(node, what)
        if v < minimum or (above and v == minimum):
            op = ">" if above else ">="
            raise self.error(node, f"{what} must be {op} {minimum:g}")
        if maximum is not None and v > maximum:
            raise self.error(node, f"{what} must be <= {maximum:g}")
        return v
