"""What a check kind's module gives the rubric reader and the scorer: one `Kind`.

A kind is one module in checks/: its options record (what the rubric says, a frozen dataclass
with `type`), `parse` (YAML → options, errors FILE:LINE) and `judge` (a call → a Verdict), named
in the table in checks/__init__.py.  Neither rubric.py nor score.py knows any kind by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import yaml

from qa_pipeline.scoring.checks.context import Call, Verdict
from qa_pipeline.scoring.matching import Phrase
from qa_pipeline.scoring.rubric_reader import RubricReader
from qa_pipeline.scoring.rubric_records import Centre, Item

# (reader, the check's node, its keys → nodes, "item 'x': <kind> check", the item's weight) → options
Parse = Callable[[RubricReader, yaml.Node, dict[str, yaml.Node], str, float], Any]
# (call, item, the item's options, when the item's `when` was triggered or None) → verdict
Judge = Callable[[Call, Item, Any, "float | None"], Verdict]
# (options, the rubric's centre) → the phrases an agent is expected to say (Whisper's hotword prompt)
Hotwords = Callable[[Any, Centre], "tuple[Phrase, ...]"]


def no_hotwords(_options: Any, _centre: Centre) -> tuple[Phrase, ...]:
    return ()


@dataclass(frozen=True)
class Kind:
    name: str  # the rubric's `type:`
    options: type  # the options record; Item.check is one of these
    keys: tuple[str, ...]  # the keys its YAML mapping may have
    parse: Parse
    judge: Judge
    hotwords: Hotwords = no_hotwords
