"""The check kinds, by the name a rubric gives in `type:`.  A new kind is one module here, with a
`KIND`, and one line in this table."""

from __future__ import annotations

from qa_pipeline.scoring.checks import (
    confirmation,
    forbidden,
    hangup,
    hold,
    interruption,
    introduction,
    phrase,
    silence,
    speech_rate,
)
from qa_pipeline.scoring.checks.kind import Kind

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        phrase.KIND,
        introduction.KIND,
        confirmation.KIND,
        hold.KIND,
        silence.KIND,
        interruption.KIND,
        speech_rate.KIND,
        hangup.KIND,
        forbidden.KIND,
    )
}


def kind_of(options: object) -> Kind:
    """The kind whose options record `options` is (an Item's check)."""
    kind = KINDS.get(getattr(options, "type", None))  # type: ignore[arg-type]
    if kind is None or not isinstance(options, kind.options):  # the rubric reader only builds the kinds in KINDS
        raise TypeError(f"unknown check {type(options).__name__}")
    return kind
