"""Typed values out of a rubric's YAML nodes, each error one line: FILE:LINE: what is wrong.

rubric.py reads the rubric's frame with it (items, `when`, centre); each check kind (checks/)
reads its own options with it.
"""

from __future__ import annotations

from typing import Any

import yaml

from qa_pipeline.scoring.matching import Phrase, parse_phrase
from qa_pipeline.scoring.rubric_records import Window
from qa_pipeline.yaml_nodes import LineError, NodeReader

# Weights, points, seconds and rates above this are mistakes, and their sums would overflow.
MAX_NUMBER = 100_000.0
MAX_COUNT = 1000  # turns, digits, syllables

WINDOW_KEYS = ("first_seconds", "last_seconds", "first_turns", "last_turns", "outbound_first_seconds")


class RubricError(LineError):
    """A rubric that cannot be used; str() is one line: FILE:LINE: what is wrong."""


class RubricReader(NodeReader):
    def __init__(self, path: str) -> None:
        super().__init__(path, RubricError)

    def number(self, node: yaml.Node, what: str, *, minimum: float = 0.0, above: bool = False,
               maximum: float = MAX_NUMBER) -> float:
        return super().number(node, what, minimum=minimum, above=above, maximum=maximum)

    def integer(self, node: yaml.Node, what: str, *, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
        return super().integer(node, what, minimum=minimum, maximum=maximum)

    def require(self, m: dict[str, yaml.Node], parent: yaml.Node, key: str, what: str) -> yaml.Node:
        if key not in m:
            raise self.error(parent, f"{what}: missing '{key}'")
        return m[key]

    def choice(self, node: yaml.Node, what: str, allowed: tuple[str, ...]) -> str:
        v = self.scalar(node)
        if v not in allowed:
            raise self.error(node, f"{what}: {v!r} is not allowed (allowed: {', '.join(allowed)})")
        return v

    def phrase(self, node: yaml.Node, what: str) -> Phrase:
        v = self.scalar(node)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            raise self.error(node, f"{what} must be a string")
        try:
            return parse_phrase(v)
        except ValueError as e:
            raise self.error(node, f"{what}: {e}") from e

    def phrases(self, node: yaml.Node, what: str) -> tuple[Phrase, ...]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise self.error(node, f"{what} must be a non-empty list of phrases")
        return tuple(self.phrase(n, what) for n in node.value)

    def number_at(self, m: dict[str, yaml.Node], key: str, where: str, default: float, *,
                  above: bool = True) -> float:
        """`key` of a check's mapping as a number, or `default` when absent."""
        return self.number(m[key], f"{where}: {key}", above=above) if key in m else default

    def phrases_at(self, m: dict[str, yaml.Node], key: str, where: str) -> tuple[Phrase, ...]:
        """`key` of a check's mapping as phrases, or none when absent."""
        return self.phrases(m[key], f"{where}: {key}") if key in m else ()

    def window(self, node: yaml.Node, where: str) -> Window:
        m = self.mapping(node, f"{where}: window", WINDOW_KEYS)
        if not m:
            raise self.error(node, f"{where}: window is empty (allowed: {', '.join(WINDOW_KEYS)})")
        if "first_seconds" in m and "last_seconds" in m:
            raise self.error(node, f"{where}: window takes first_seconds or last_seconds, not both")
        if "first_turns" in m and "last_turns" in m:
            raise self.error(node, f"{where}: window takes first_turns or last_turns, not both")
        if "outbound_first_seconds" in m and "first_seconds" not in m:
            raise self.error(node, f"{where}: window outbound_first_seconds needs first_seconds (for other calls)")
        kw: dict[str, Any] = {}
        for key in ("first_seconds", "last_seconds", "outbound_first_seconds"):
            if key in m:
                kw[key] = self.number(m[key], f"{where}: window {key}", above=True)
        for key in ("first_turns", "last_turns"):
            if key in m:
                kw[key] = self.integer(m[key], f"{where}: window {key}", minimum=1)
        return Window(**kw)
