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
    # first_seconds on an outbound call (manifest direction=outbound), whose opening is longer: the
    # agent confirms who answered, introduces, states the purpose, then asks (003's 回访 opening)
    outbound_first_seconds: float | None = None

    def first_seconds_of(self, direction: str | None) -> float | None:
        if direction == "outbound" and self.outbound_first_seconds is not None:
            return self.outbound_first_seconds
        return self.first_seconds


@dataclass(frozen=True)
class Example:
    """A sentence that counts (an example) or must not count (a near-miss), with where it comes from."""

    text: str
    source: str
    critical: bool = False  # forbidden: a hit decided by this example is critical
    line: int = 0  # where it is written (1-based), for messages


# How close an utterance's clause must come to an item's examples (cosine, USE multilingual v3) and by
# how much its closest example must beat its closest near-miss; a verdict within REVIEW_BAND of either
# bound is held for review.  Per item in the rubric (`threshold`, `margin`), proposed by `qa calibrate`.
DEFAULT_THRESHOLD = 0.75
DEFAULT_MARGIN = 0.05
REVIEW_BAND = 0.03


@dataclass(frozen=True)
class Meaning:
    """Examples and near-misses of what an item looks for, matched by a sentence encoder (meaning/judge.py)."""

    examples: tuple[Example, ...]
    near_misses: tuple[Example, ...] = ()
    threshold: float = DEFAULT_THRESHOLD
    margin: float = DEFAULT_MARGIN
    review_band: float = REVIEW_BAND


@dataclass(frozen=True)
class When:
    """The item applies only if one of these happened; otherwise it is n/a with `reason`."""

    customer_says: tuple[Phrase, ...] = ()
    agent_says: tuple[Phrase, ...] = ()
    customer_intent: tuple[str, ...] = ()  # labels of the bundled intent model (intents.py), e.g. complaint
    wait_over_s: float | None = None
    reason: str | None = None  # shown when n/a; None: the catalogue's "not triggered"
    meaning: Meaning | None = None  # examples of what the customer says (with customer_intent: see when.py)


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
    meaning: Meaning | None = None  # examples / near-misses of what the check looks for (phrase, forbidden)


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
    """Who the centre is: its companies (one for an in-house centre, several for an outsourcer), and
    the texts of the recorded announcements its phone system plays (speakers.prompts)."""

    companies: tuple[Company, ...] = ()
    prompts: tuple[str, ...] = ()


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
    encoder: str = "use-m3"  # the sentence encoder that matches examples (qa_pipeline.meaning.encoder)

    @property
    def uses_meaning(self) -> bool:
        return any(i.meaning is not None or (i.when is not None and i.when.meaning is not None) for i in self.items)
