"""The rubric as typed records: Rubric, Item, When, Window, Centre, Company.

rubric.py reads them from YAML; each item's check is the options record of its kind (checks/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from qa_pipeline.scoring.matching import Phrase


class CheckOptions(Protocol):
    """What every check kind's options record has: its kind's name, as the rubric's `type:`."""

    @property
    def type(self) -> str: ...


@dataclass(frozen=True)
class Window:
    """Where to look.  Seconds: first = from the recording's start; last = before the end of the
    last speech.  Turns count the item speaker's utterances.  Given both, both must hold."""

    first_seconds: float | None = None
    last_seconds: float | None = None
    first_turns: int | None = None
    last_turns: int | None = None


@dataclass(frozen=True)
class When:
    """The item applies only if one of these happened; otherwise it is n/a with `reason`."""

    customer_says: tuple[Phrase, ...] = ()
    agent_says: tuple[Phrase, ...] = ()
    customer_intent: tuple[str, ...] = ()  # labels of the bundled intent model (intents.py), e.g. complaint
    wait_over_s: float | None = None
    reason: str | None = None  # shown when n/a; None: the catalogue's "not triggered"


@dataclass(frozen=True)
class Item:
    id: str
    name: str
    weight: float
    check: CheckOptions  # the options record of its kind (checks/<kind>.py)
    speaker: str = "agent"
    critical: bool = False
    when: When | None = None
    source: str | None = None
    min_agreement: float | None = None  # `qa rubric test` floor for this item (0-1); None: the rubric's


@dataclass(frozen=True)
class Company:
    name: str
    aliases: tuple[Phrase, ...]  # the name first, then brand names, hotline names (matched by text or sound)
    teams: tuple[str, ...] = ()  # manifest teams whose calls are for this company

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.source for p in self.aliases)


@dataclass(frozen=True)
class Centre:
    """Who the centre is: its companies (one for an in-house centre, several for an outsourcer)."""

    companies: tuple[Company, ...] = ()


@dataclass(frozen=True)
class Rubric:
    id: str
    name: str
    version: str
    language: str
    pass_score: float
    items: tuple[Item, ...]
    path: str | None = None
    centre: Centre = Centre()
    digest: str = ""  # of the file and of every file it extends (what a stored result depends on)
    min_agreement: float | None = None  # `qa rubric test` floor for every item (0-1) unless the item sets one
