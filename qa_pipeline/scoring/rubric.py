"""The rubric: a written service standard as typed, validated records.

`load_rubric` reads YAML and refuses anything it does not understand with a one-line
`FILE:LINE: what is wrong (allowed: …)`, before any audio is touched.  The YAML format is
documented in rubrics/default.zh.yaml and in the README.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from qa_pipeline.scoring.matching import LITERAL, Phrase, parse_phrase
from qa_pipeline.messages import LANGUAGES
from qa_pipeline.yaml_nodes import LineError, NodeReader, compose_text, read_text

log = logging.getLogger("qa_pipeline")

ITEM_SPEAKERS = ("agent", "customer", "any")
CHECK_TYPES = (
    "phrase",
    "introduction",
    "confirmation",
    "hold",
    "silence",
    "interruption",
    "speech_rate",
    "hangup",
    "forbidden",
)


# Weights, points, seconds and rates above this are mistakes, and their sums would overflow.
MAX_NUMBER = 100_000.0
MAX_COUNT = 1000  # turns, digits, syllables


class RubricError(LineError):
    """A rubric that cannot be used; str() is one line: FILE:LINE: what is wrong."""


@dataclass(frozen=True)
class Window:
    """Where to look.  Seconds: first = from the recording's start; last = before the end of the
    last speech.  Turns count the item speaker's utterances.  Given both, both must hold."""

    first_seconds: float | None = None
    last_seconds: float | None = None
    first_turns: int | None = None
    last_turns: int | None = None


@dataclass(frozen=True)
class PhraseCheck:
    any: tuple[Phrase, ...] = ()
    all: tuple[tuple[Phrase, ...], ...] = ()  # each entry: alternatives, one of which must occur
    none: tuple[Phrase, ...] = ()
    window: Window = Window()
    tolerance: float | None = None  # phonetic cost a sound match may have; None = by phrase length
    strict_you: bool = False  # 您 must be heard as 您, not 你 (by text or sound)
    type: str = "phrase"


@dataclass(frozen=True)
class IntroductionCheck:
    """The agent names the company and themselves.  The company: any of the centre's names and
    aliases (rubric `centre:`), a form that names one (欢迎致电 / 这里是 / 客服中心 …, `company`), or a
    word that ends an organisation's name (供电, 物业, 银行 …, `organisations`).  Themselves: `self`
    (工号, 我是, N号客服 …), or the manifest's agent id digits / 小+surname (`use_metadata`).  Both are
    looked for in the agent's opening: their words in `window` before the customer first answers."""

    company: tuple[Phrase, ...] = ()
    organisations: tuple[Phrase, ...] = ()
    self: tuple[Phrase, ...] = ()
    window: Window = Window(first_seconds=20.0)
    use_metadata: bool = True
    type: str = "introduction"


@dataclass(frozen=True)
class ConfirmationCheck:
    phrases: tuple[Phrase, ...] = ()
    min_digits: int = 4  # a repeated digit string must share this many consecutive digits
    na_without_numbers: bool = True  # n/a when the customer gave nothing to confirm and nothing was confirmed
    given: str = "numbers"  # what the customer must have given to need confirming: numbers | details
    min_detail_chars: int = 4  # details: characters left once greetings, yes/no and thanks are taken out
    read_back_syllables: int = 0  # the agent repeating this many syllables of what the customer said confirms
    type: str = "confirmation"


@dataclass(frozen=True)
class HoldCheck:
    max_wait_s: float = 7.0
    before: tuple[Phrase, ...] = ()  # announcement, said within `within_s` before the wait
    after: tuple[Phrase, ...] = ()  # thanks/apology, said within `within_s` after it
    within_s: float = 15.0
    type: str = "hold"


@dataclass(frozen=True)
class SilenceCheck:
    max_s: float = 7.0
    excused_by: tuple[Phrase, ...] = ()  # said by anyone just before the silence: not dead air
    within_s: float = 15.0
    type: str = "silence"


@dataclass(frozen=True)
class InterruptionCheck:
    max_overlap_s: float = 1.0
    type: str = "interruption"


@dataclass(frozen=True)
class SpeechRateCheck:
    min_cpm: float = 150.0
    max_cpm: float = 320.0
    type: str = "speech_rate"


@dataclass(frozen=True)
class HangupCheck:
    expect: str = "customer"  # who should hang up first: customer | agent
    tail_s: float = 1.0  # recording ending within this after the agent's last words = agent hung up
    type: str = "hangup"


@dataclass(frozen=True)
class ForbiddenPhrase:
    phrase: Phrase
    points: float
    critical: bool = False
    unless: tuple[Phrase, ...] = ()  # a hit inside one of these is the polite form, not the forbidden one


@dataclass(frozen=True)
class ForbiddenCheck:
    phrases: tuple[ForbiddenPhrase, ...] = ()
    tolerance: float | None = 0
    type: str = "forbidden"


Check = (
    PhraseCheck
    | IntroductionCheck
    | ConfirmationCheck
    | HoldCheck
    | SilenceCheck
    | InterruptionCheck
    | SpeechRateCheck
    | HangupCheck
    | ForbiddenCheck
)


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
    check: Check
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


def rubric_hotwords(rubric: Rubric, max_chars: int = 120) -> str:
    """The phrases an agent is expected to say (greeting, self-introduction, hold and closing
    lines), as a Whisper hotword prompt. Forbidden phrases are left out: priming the model with
    them would invent violations.  At most `per_item` phrases of each item, so that every item has
    a say within the prompt's length."""
    seen: dict[str, None] = {}
    per_item = 4
    for item in rubric.items:
        check = item.check
        phrases: list[Phrase] = []
        if isinstance(check, PhraseCheck):
            phrases = list(check.any) + [p for alternatives in check.all for p in alternatives]
        elif isinstance(check, HoldCheck):
            phrases = list(check.before) + list(check.after)
        elif isinstance(check, ConfirmationCheck):
            phrases = list(check.phrases)
        elif isinstance(check, IntroductionCheck):
            phrases = [p for c in rubric.centre.companies for p in c.aliases] + list(check.self) + list(check.company)
        literal = [p.text for p in phrases if p.kind == LITERAL and len(p.text) >= 2]
        for text in literal[:per_item]:
            seen.setdefault(text, None)
    words, length = [], 0
    for text in seen:
        if length + len(text) + 1 > max_chars:
            break
        words.append(text)
        length += len(text) + 1
    return "，".join(words)


def rubric_path_default() -> Path:
    """The bundled rubrics/default.zh.yaml (repository checkout first, then the package)."""
    here = Path(__file__).resolve().parents[2] / "rubrics" / "default.zh.yaml"
    if here.exists():
        return here
    return Path(str(importlib.resources.files("qa_pipeline") / "rubrics" / "default.zh.yaml"))


# --- validation over yaml nodes, so every error can name its line ---------------------------


class _Ctx(NodeReader):
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


_TOP_KEYS = ("id", "name", "version", "language", "pass_score", "items", "description", "centre", "extends",
             "min_agreement")
_REQUIRED_TOP = ("id", "name", "version", "language", "pass_score", "items")
_ITEM_KEYS = ("id", "name", "weight", "speaker", "critical", "check", "when", "source", "description",
              "min_agreement")
_WINDOW_KEYS = ("first_seconds", "last_seconds", "first_turns", "last_turns")
_WHEN_KEYS = ("customer_says", "agent_says", "customer_intent", "wait_over_s", "reason")
_CENTRE_KEYS = ("companies", "prompts", "description")
_COMPANY_KEYS = ("name", "aliases", "teams")
_GIVEN = ("numbers", "details")
_CHECK_KEYS = {
    "phrase": ("type", "any", "all", "none", "window", "tolerance", "strict_you"),
    "introduction": ("type", "company", "organisations", "self", "window", "use_metadata"),
    "confirmation": ("type", "phrases", "min_digits", "na_without_numbers", "given", "min_detail_chars",
                     "read_back_syllables"),
    "hold": ("type", "max_wait_s", "before", "after", "within_s"),
    "silence": ("type", "max_s", "excused_by", "within_s"),
    "interruption": ("type", "max_overlap_s"),
    "speech_rate": ("type", "min_cpm", "max_cpm"),
    "hangup": ("type", "expect", "tail_s"),
    "forbidden": ("type", "phrases", "tolerance", "points_per_hit"),
}
_NUMBER = (int, float)


def _window(c: _Ctx, node: yaml.Node, where: str) -> Window:
    m = c.mapping(node, f"{where}: window", _WINDOW_KEYS)
    if not m:
        raise c.error(node, f"{where}: window is empty (allowed: {', '.join(_WINDOW_KEYS)})")
    if "first_seconds" in m and "last_seconds" in m:
        raise c.error(node, f"{where}: window takes first_seconds or last_seconds, not both")
    if "first_turns" in m and "last_turns" in m:
        raise c.error(node, f"{where}: window takes first_turns or last_turns, not both")
    kw: dict[str, Any] = {}
    for key in ("first_seconds", "last_seconds"):
        if key in m:
            kw[key] = c.number(m[key], f"{where}: window {key}", above=True)
    for key in ("first_turns", "last_turns"):
        if key in m:
            kw[key] = c.integer(m[key], f"{where}: window {key}", minimum=1)
    return Window(**kw)


def _phrase_check(c: _Ctx, node: yaml.Node, m: dict[str, yaml.Node], where: str) -> PhraseCheck:
    if not any(k in m for k in ("any", "all", "none")):
        raise c.error(node, f"{where}: a phrase check needs any, all or none")
    groups: list[tuple[Phrase, ...]] = []
    if "all" in m:
        seq = m["all"]
        if not isinstance(seq, yaml.SequenceNode) or not seq.value:
            raise c.error(seq, f"{where}: all must be a non-empty list of phrases or lists of phrases")
        for entry in seq.value:
            if isinstance(entry, yaml.SequenceNode):
                groups.append(c.phrases(entry, f"{where}: all"))
            else:
                groups.append((c.phrase(entry, f"{where}: all"),))
    return PhraseCheck(
        any=c.phrases(m["any"], f"{where}: any") if "any" in m else (),
        all=tuple(groups),
        none=c.phrases(m["none"], f"{where}: none") if "none" in m else (),
        window=_window(c, m["window"], where) if "window" in m else Window(),
        tolerance=c.number(m["tolerance"], f"{where}: tolerance") if "tolerance" in m else None,
        strict_you=c.boolean(m["strict_you"], f"{where}: strict_you") if "strict_you" in m else False,
    )


def _forbidden_check(
    c: _Ctx, node: yaml.Node, m: dict[str, yaml.Node], where: str, default_points: float
) -> ForbiddenCheck:
    per_hit = (
        c.number(m["points_per_hit"], f"{where}: points_per_hit", above=True)
        if "points_per_hit" in m
        else default_points
    )
    seq = c.require(m, node, "phrases", where)
    if not isinstance(seq, yaml.SequenceNode) or not seq.value:
        raise c.error(seq, f"{where}: phrases must be a non-empty list")
    out: list[ForbiddenPhrase] = []
    for entry in seq.value:
        if isinstance(entry, yaml.MappingNode):
            e = c.mapping(entry, f"{where}: forbidden phrase", ("phrase", "points", "critical", "unless"))
            phrase = c.phrase(c.require(e, entry, "phrase", f"{where}: forbidden phrase"), f"{where}: phrase")
            points = c.number(e["points"], f"{where}: points") if "points" in e else per_hit
            critical = c.boolean(e["critical"], f"{where}: critical") if "critical" in e else False
            unless = c.phrases(e["unless"], f"{where}: unless") if "unless" in e else ()
            out.append(ForbiddenPhrase(phrase, points, critical, unless))
        else:
            out.append(ForbiddenPhrase(c.phrase(entry, f"{where}: phrases"), per_hit))
    tolerance = c.number(m["tolerance"], f"{where}: tolerance") if "tolerance" in m else 0
    return ForbiddenCheck(phrases=tuple(out), tolerance=tolerance)


def _check(c: _Ctx, node: yaml.Node, where: str, weight: float) -> Check:
    if not isinstance(node, yaml.MappingNode):
        raise c.error(node, f"{where}: check must be a mapping")
    type_node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "type"), None)
    if type_node is None:
        raise c.error(node, f"{where}: check: missing 'type' (allowed: {', '.join(CHECK_TYPES)})")
    kind = c.scalar(type_node)
    if kind not in CHECK_TYPES:
        raise c.error(type_node, f"{where}: unknown check type {kind!r} (allowed: {', '.join(CHECK_TYPES)})")
    w = f"{where}: {kind} check"
    m = c.mapping(node, w, _CHECK_KEYS[kind])

    def num(key: str, default: float, *, above: bool = True) -> float:
        return c.number(m[key], f"{w}: {key}", above=above) if key in m else default

    def phr(key: str) -> tuple[Phrase, ...]:
        return c.phrases(m[key], f"{w}: {key}") if key in m else ()

    if kind == "phrase":
        return _phrase_check(c, node, m, w)
    if kind == "introduction":
        if not any(k in m for k in ("company", "organisations")) or "self" not in m:
            raise c.error(node, f"{w}: needs self and company or organisations")
        return IntroductionCheck(
            company=phr("company"),
            organisations=phr("organisations"),
            self=phr("self"),
            window=_window(c, m["window"], w) if "window" in m else Window(first_seconds=20.0),
            use_metadata=c.boolean(m["use_metadata"], f"{w}: use_metadata") if "use_metadata" in m else True,
        )
    if kind == "confirmation":
        return ConfirmationCheck(
            phrases=phr("phrases"),
            min_digits=c.integer(m["min_digits"], f"{w}: min_digits", minimum=2) if "min_digits" in m else 4,
            na_without_numbers=(
                c.boolean(m["na_without_numbers"], f"{w}: na_without_numbers")
                if "na_without_numbers" in m
                else True
            ),
            given=c.choice(m["given"], f"{w}: given", _GIVEN) if "given" in m else "numbers",
            min_detail_chars=(
                c.integer(m["min_detail_chars"], f"{w}: min_detail_chars", minimum=1) if "min_detail_chars" in m else 4
            ),
            read_back_syllables=(
                c.integer(m["read_back_syllables"], f"{w}: read_back_syllables", minimum=0)
                if "read_back_syllables" in m
                else 0
            ),
        )
    if kind == "hold":
        return HoldCheck(
            max_wait_s=num("max_wait_s", 7.0),
            before=c.phrases(c.require(m, node, "before", w), f"{w}: before"),
            after=c.phrases(c.require(m, node, "after", w), f"{w}: after"),
            within_s=num("within_s", 15.0),
        )
    if kind == "silence":
        return SilenceCheck(max_s=num("max_s", 7.0), excused_by=phr("excused_by"), within_s=num("within_s", 15.0))
    if kind == "interruption":
        return InterruptionCheck(max_overlap_s=num("max_overlap_s", 1.0, above=False))
    if kind == "speech_rate":
        lo, hi = num("min_cpm", 150.0, above=False), num("max_cpm", 320.0)
        if lo >= hi:
            raise c.error(node, f"{w}: min_cpm must be below max_cpm")
        return SpeechRateCheck(min_cpm=lo, max_cpm=hi)
    if kind == "hangup":
        expect = c.choice(m["expect"], f"{w}: expect", ("customer", "agent")) if "expect" in m else "customer"
        return HangupCheck(expect=expect, tail_s=num("tail_s", 1.0))
    return _forbidden_check(c, node, m, w, default_points=weight)


def _when(c: _Ctx, node: yaml.Node, where: str) -> When:
    m = c.mapping(node, f"{where}: when", _WHEN_KEYS)
    triggers = [k for k in ("customer_says", "agent_says", "customer_intent", "wait_over_s") if k in m]
    if not triggers:
        raise c.error(node, f"{where}: when needs a trigger (allowed: customer_says, agent_says, customer_intent, "
                            "wait_over_s)")
    return When(
        customer_says=c.phrases(m["customer_says"], f"{where}: when customer_says") if "customer_says" in m else (),
        agent_says=c.phrases(m["agent_says"], f"{where}: when agent_says") if "agent_says" in m else (),
        customer_intent=_intents(c, m["customer_intent"], f"{where}: when customer_intent") if "customer_intent" in m else (),
        wait_over_s=c.number(m["wait_over_s"], f"{where}: when wait_over_s", above=True) if "wait_over_s" in m else None,
        reason=c.string(m["reason"], f"{where}: when reason") if "reason" in m else None,
    )


def _intents(c: _Ctx, node: yaml.Node, what: str) -> tuple[str, ...]:
    from qa_pipeline.scoring.intents import load_model

    labels = tuple(sorted(load_model().labels))
    values = node.value if isinstance(node, yaml.SequenceNode) else [node]
    if not values:
        raise c.error(node, f"{what} must name one label or more (allowed: {', '.join(labels)})")
    return tuple(c.choice(v, what, labels) for v in values)


def _centre(c: _Ctx, node: yaml.Node) -> Centre:
    m = c.mapping(node, "centre", _CENTRE_KEYS)
    prompts: tuple[str, ...] = ()
    if "prompts" in m:
        pnode = m["prompts"]
        if not isinstance(pnode, yaml.SequenceNode) or not pnode.value:
            raise c.error(pnode, "centre: prompts must be a non-empty list of announcement texts")
        prompts = tuple(c.string(p, "centre: prompt") for p in pnode.value)
        if "companies" not in m:
            return Centre((), prompts)
    seq = c.require(m, node, "companies", "centre")
    if not isinstance(seq, yaml.SequenceNode) or not seq.value:
        raise c.error(seq, "centre: companies must be a non-empty list")
    companies = []
    for entry in seq.value:
        if isinstance(entry, yaml.ScalarNode):
            name_node, e = entry, {}
        else:
            e = c.mapping(entry, "centre: company", _COMPANY_KEYS)
            name_node = c.require(e, entry, "name", "centre: company")
        name = c.string(name_node, "centre: company name")
        aliases = (c.phrase(name_node, "centre: company name"),)
        if "aliases" in e:
            aliases += c.phrases(e["aliases"], f"centre: company '{name}': aliases")
        teams: tuple[str, ...] = ()
        if "teams" in e:
            tnode = e["teams"]
            if not isinstance(tnode, yaml.SequenceNode) or not tnode.value:
                raise c.error(tnode, f"centre: company '{name}': teams must be a non-empty list of team names")
            teams = tuple(c.string(t, f"centre: company '{name}': team") for t in tnode.value)
        companies.append(Company(name, aliases, teams))
    return Centre(tuple(companies), prompts)


def _item(c: _Ctx, node: yaml.Node, n: int) -> Item:
    id_node = None
    if isinstance(node, yaml.MappingNode):
        id_node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "id"), None)
    label = f"item '{id_node.value}'" if isinstance(id_node, yaml.ScalarNode) else f"item {n}"
    m = c.mapping(node, label, _ITEM_KEYS)
    item_id = c.string(c.require(m, node, "id", label), f"{label}: id")
    where = f"item '{item_id}'"
    name = c.string(c.require(m, node, "name", where), f"{where}: name")
    weight = c.number(c.require(m, node, "weight", where), f"{where}: weight")
    check = _check(c, c.require(m, node, "check", where), where, weight)
    return Item(
        id=item_id,
        name=name,
        weight=weight,
        check=check,
        speaker=c.choice(m["speaker"], f"{where}: speaker", ITEM_SPEAKERS) if "speaker" in m else "agent",
        critical=c.boolean(m["critical"], f"{where}: critical") if "critical" in m else False,
        when=_when(c, m["when"], where) if "when" in m else None,
        source=c.string(m["source"], f"{where}: source") if "source" in m else None,
        min_agreement=_fraction(c, m["min_agreement"], f"{where}: min_agreement") if "min_agreement" in m else None,
    )


def _fraction(c: _Ctx, node: yaml.Node, what: str) -> float:
    value = c.number(node, what)
    if value > 1:
        raise c.error(node, f"{what} must be a share between 0 and 1 (0.9 = 90%)")
    return value


def parse_rubric(text: str, path: str = "<rubric>", *, _seen: tuple[str, ...] = ()) -> Rubric:
    """A Rubric from YAML text; RubricError naming `path` and the line if anything is wrong.

    `extends: FILE` (relative to this file, or `default` for the bundled default rubric) takes
    every top-level field of FILE that this one does not give: a centre file can be just
    `extends: default` and `centre: {companies: …}`."""
    c = _Ctx(path)
    root = compose_text(text, path, RubricError)
    if root is None:
        raise RubricError(path, 1, "empty rubric")
    top = c.mapping(root, "rubric", _TOP_KEYS)
    base = _base(c, top["extends"], path, _seen) if "extends" in top else None
    if base is None:
        for key in _REQUIRED_TOP:
            c.require(top, root, key, "rubric")
    items: tuple[Item, ...] = base.items if base else ()
    if "items" in top:
        items_node = top["items"]
        if not isinstance(items_node, yaml.SequenceNode) or not items_node.value:
            raise c.error(items_node, "items must be a non-empty list")
        parsed: list[Item] = []
        seen: set[str] = set()
        for n, item_node in enumerate(items_node.value, 1):
            item = _item(c, item_node, n)
            if item.id in seen:
                raise c.error(item_node, f"duplicate item id '{item.id}'")
            seen.add(item.id)
            parsed.append(item)
        if sum(i.weight for i in parsed) <= 0:
            raise c.error(items_node, "the items' weights add up to 0")
        items = tuple(parsed)
    pass_score = c.number(top["pass_score"], "pass_score", maximum=100.0) if "pass_score" in top else base.pass_score
    language = c.choice(top["language"], "language", LANGUAGES) if "language" in top else base.language
    own = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Rubric(
        id=c.string(top["id"], "id") if "id" in top else base.id,
        name=c.string(top["name"], "name") if "name" in top else base.name,
        version=c.string(top["version"], "version") if "version" in top else base.version,
        language=language,
        pass_score=pass_score,
        items=items,
        path=path,
        centre=_centre(c, top["centre"]) if "centre" in top else (base.centre if base else Centre()),
        digest=hashlib.sha256(f"{own}:{base.digest if base else ''}".encode()).hexdigest(),
        min_agreement=(_fraction(c, top["min_agreement"], "min_agreement") if "min_agreement" in top
                       else (base.min_agreement if base else None)),
    )


def _base(c: _Ctx, node: yaml.Node, path: str, seen: tuple[str, ...]) -> Rubric:
    name = c.string(node, "extends")
    target = rubric_path_default() if name == "default" else (Path(path).parent / name)
    key = str(Path(target).resolve())
    if key in seen or key == str(Path(path).resolve()):
        raise c.error(node, f"extends: {name} extends this file again (a cycle)")
    try:
        text = Path(target).read_text(encoding="utf-8")
    except OSError as e:
        raise c.error(node, f"extends: cannot read {target}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise c.error(node, f"extends: {target} is not UTF-8 text") from e
    return parse_rubric(text, str(target), _seen=seen + (str(Path(path).resolve()),))


def load_rubric(path: Path) -> Rubric:
    """Read and validate a rubric file; RubricError (one line, FILE:LINE: …) if it is unusable."""
    return parse_rubric(read_text(path, RubricError, "rubric"), str(path))
