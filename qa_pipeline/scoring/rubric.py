"""The rubric: a written service standard as typed, validated records.

`load_rubric` reads YAML and refuses anything it does not understand with a one-line
`FILE:LINE: what is wrong (allowed: …)`, before any audio is touched.  The YAML format is
documented in rubrics/default.zh.yaml and in the README.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
from pathlib import Path

import yaml

from qa_pipeline.meaning.encoder import encoder_version
from qa_pipeline.messages import LANGUAGES
from qa_pipeline.scoring.checks import KINDS, kind_of
from qa_pipeline.scoring.checks.confirmation import ConfirmationCheck
from qa_pipeline.scoring.checks.forbidden import ForbiddenCheck, ForbiddenPhrase
from qa_pipeline.scoring.checks.hangup import HangupCheck
from qa_pipeline.scoring.checks.hold import HoldCheck
from qa_pipeline.scoring.checks.interruption import InterruptionCheck
from qa_pipeline.scoring.checks.introduction import IntroductionCheck
from qa_pipeline.scoring.checks.phrase import PhraseCheck
from qa_pipeline.scoring.checks.silence import SilenceCheck
from qa_pipeline.scoring.checks.speech_rate import SpeechRateCheck
from qa_pipeline.scoring.matching import LITERAL
from qa_pipeline.scoring.rubric_reader import MAX_COUNT, MAX_NUMBER, RubricError, RubricReader
from qa_pipeline.scoring.rubric_records import (DEFAULT_MARGIN, DEFAULT_THRESHOLD, Centre, CheckOptions, Company, Example,
                                                Item, Meaning, Rubric, When, Window)
from qa_pipeline.yaml_nodes import Unreadable, compose_text, read_limited, read_text

log = logging.getLogger("qa_pipeline")

ITEM_SPEAKERS = ("agent", "customer", "any")
MAX_EXTENDS = 16  # rubric files extending one another

# The records and the built-in kinds' options, importable from here as before the kinds had modules.
__all__ = [
    "ITEM_SPEAKERS", "MAX_COUNT", "MAX_NUMBER", "Centre", "CheckOptions", "Company",
    "ConfirmationCheck", "Example", "ForbiddenCheck", "Meaning", "ForbiddenPhrase", "HangupCheck", "HoldCheck", "InterruptionCheck",
    "IntroductionCheck", "Item", "PhraseCheck", "Rubric", "RubricError", "SilenceCheck", "SpeechRateCheck", "When",
    "Window", "load_rubric", "parse_rubric", "rubric_hotwords", "rubric_path_default",
]


def rubric_hotwords(rubric: Rubric, max_chars: int = 120) -> str:
    """The phrases an agent is expected to say (greeting, self-introduction, hold and closing
    lines), as a Whisper hotword prompt. Forbidden phrases are left out: priming the model with
    them would invent violations.  At most `per_item` phrases of each item, so that every item has
    a say within the prompt's length."""
    seen: dict[str, None] = {}
    per_item = 4
    for item in rubric.items:
        phrases = kind_of(item.check).hotwords(item.check, rubric.centre)
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


_TOP_KEYS = ("id", "name", "version", "language", "pass_score", "items", "description", "centre", "extends",
             "min_agreement", "encoder")
_REQUIRED_TOP = ("id", "name", "version", "language", "pass_score", "items")
_MEANING_KEYS = ("examples", "near_misses", "threshold", "margin")
_ITEM_KEYS = ("id", "name", "weight", "speaker", "critical", "check", "when", "source", "description",
              "min_agreement") + _MEANING_KEYS
_WHEN_KEYS = ("customer_says", "agent_says", "customer_intent", "wait_over_s", "reason") + _MEANING_KEYS
_EXAMPLE_KEYS = ("text", "source", "critical")
MEANING_CHECKS = ("phrase", "forbidden")  # the check kinds whose items may carry examples
MAX_EXAMPLE_CHARS = 200
_CENTRE_KEYS = ("companies", "prompts", "description")
_COMPANY_KEYS = ("name", "aliases", "teams")


def _check(c: RubricReader, node: yaml.Node, where: str, weight: float) -> CheckOptions:
    if not isinstance(node, yaml.MappingNode):
        raise c.error(node, f"{where}: check must be a mapping")
    type_node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "type"), None)
    if type_node is None:
        raise c.error(node, f"{where}: check: missing 'type' (allowed: {', '.join(KINDS)})")
    name = c.scalar(type_node)
    if name not in KINDS:
        raise c.error(type_node, f"{where}: unknown check type {name!r} (allowed: {', '.join(KINDS)})")
    kind = KINDS[name]
    w = f"{where}: {name} check"
    return kind.parse(c, node, c.mapping(node, w, kind.keys), w, weight)


def _when(c: RubricReader, node: yaml.Node, where: str) -> When:
    m = c.mapping(node, f"{where}: when", _WHEN_KEYS)
    triggers = [k for k in ("customer_says", "agent_says", "customer_intent", "wait_over_s", "examples") if k in m]
    if not triggers:
        raise c.error(node, f"{where}: when needs a trigger (allowed: customer_says, agent_says, customer_intent, "
                            "wait_over_s, examples)")
    return When(
        customer_says=c.phrases(m["customer_says"], f"{where}: when customer_says") if "customer_says" in m else (),
        agent_says=c.phrases(m["agent_says"], f"{where}: when agent_says") if "agent_says" in m else (),
        customer_intent=_intents(c, m["customer_intent"], f"{where}: when customer_intent") if "customer_intent" in m else (),
        wait_over_s=c.number(m["wait_over_s"], f"{where}: when wait_over_s", above=True) if "wait_over_s" in m else None,
        reason=c.string(m["reason"], f"{where}: when reason") if "reason" in m else None,
        meaning=_meaning(c, node, m, f"{where}: when"),
    )


def _examples(c: RubricReader, node: yaml.Node, what: str, *, critical_ok: bool) -> tuple[Example, ...]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise c.error(node, f"{what} must be a non-empty list of {{text, source}}")
    out = []
    for entry in node.value:
        e = c.mapping(entry, what, _EXAMPLE_KEYS if critical_ok else _EXAMPLE_KEYS[:2])
        text = c.string(c.require(e, entry, "text", what), f"{what}: text").strip()
        if not text:
            raise c.error(e["text"], f"{what}: text is empty")
        if len(text) > MAX_EXAMPLE_CHARS:
            raise c.error(e["text"], f"{what}: text is longer than {MAX_EXAMPLE_CHARS} characters (one sentence)")
        source = c.string(c.require(e, entry, "source", what), f"{what}: source").strip()
        if not source:
            raise c.error(e["source"], f"{what}: source is empty (say which seed or decision it comes from)")
        critical = c.boolean(e["critical"], f"{what}: critical") if "critical" in e else False
        out.append(Example(text, source, critical, entry.start_mark.line + 1))
    return tuple(out)


def _meaning(c: RubricReader, node: yaml.Node, m: dict[str, yaml.Node], where: str, *,
             critical_ok: bool = False) -> Meaning | None:
    given = [k for k in _MEANING_KEYS if k in m]
    if not given:
        return None
    if "examples" not in m:
        raise c.error(m[given[0]], f"{where}: {given[0]} needs examples")
    threshold = _fraction(c, m["threshold"], f"{where}: threshold") if "threshold" in m else DEFAULT_THRESHOLD
    if threshold <= 0:
        raise c.error(m["threshold"], f"{where}: threshold must be above 0")
    return Meaning(
        examples=_examples(c, m["examples"], f"{where}: examples", critical_ok=critical_ok),
        near_misses=(_examples(c, m["near_misses"], f"{where}: near_misses", critical_ok=False)
                     if "near_misses" in m else ()),
        threshold=threshold,
        margin=_fraction(c, m["margin"], f"{where}: margin") if "margin" in m else DEFAULT_MARGIN,
    )


def _intents(c: RubricReader, node: yaml.Node, what: str) -> tuple[str, ...]:
    from qa_pipeline.scoring.intents import labels_of

    labels = labels_of("customer")
    values = node.value if isinstance(node, yaml.SequenceNode) else [node]
    if not values:
        raise c.error(node, f"{what} must name one label or more (allowed: {', '.join(labels)})")
    return tuple(c.choice(v, what, labels) for v in values)


def _centre(c: RubricReader, node: yaml.Node) -> Centre:
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


def _item(c: RubricReader, node: yaml.Node, n: int) -> Item:
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
    meaning = _meaning(c, node, m, where, critical_ok=check.type == "forbidden")
    if meaning is not None and check.type not in MEANING_CHECKS:
        first = next(k for k in _MEANING_KEYS if k in m)
        raise c.error(m[first], f"{where}: {first}: a {check.type} check does not use examples "
                                f"(allowed on: {', '.join(MEANING_CHECKS)} checks, and in when)")
    if meaning is not None and isinstance(check, PhraseCheck) and not check.any:
        raise c.error(m["examples"], f"{where}: examples stand for a phrase check's `any` list, and this one has none")
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
        meaning=meaning,
    )


def _fraction(c: RubricReader, node: yaml.Node, what: str) -> float:
    value = c.number(node, what)
    if value > 1:
        raise c.error(node, f"{what} must be a share between 0 and 1 (0.9 = 90%)")
    return value


def parse_rubric(text: str, path: str = "<rubric>", *, _seen: tuple[str, ...] = ()) -> Rubric:
    """A Rubric from YAML text; RubricError naming `path` and the line if anything is wrong.

    `extends: FILE` (relative to this file, or `default` for the bundled default rubric) takes
    every top-level field of FILE that this one does not give: a centre file can be just
    `extends: default` and `centre: {companies: …}`."""
    return _rubric(compose_text(text, path, RubricError), text, path, _seen)


def _rubric(root: yaml.Node | None, text: str, path: str, _seen: tuple[str, ...]) -> Rubric:
    c = RubricReader(path)
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
    encoder = _encoder_name(c, top["encoder"]) if "encoder" in top else (base.encoder if base else "use-m3")
    uses_meaning = any(i.meaning is not None or (i.when is not None and i.when.meaning is not None) for i in items)
    # Verdicts decided by meaning depend on the encoder's release: it is part of what a stored result depends on.
    model = encoder_version(encoder) if uses_meaning else ""
    return Rubric(
        id=c.string(top["id"], "id") if "id" in top else base.id,
        name=c.string(top["name"], "name") if "name" in top else base.name,
        version=c.string(top["version"], "version") if "version" in top else base.version,
        language=language,
        pass_score=pass_score,
        items=items,
        path=path,
        centre=_centre(c, top["centre"]) if "centre" in top else (base.centre if base else Centre()),
        digest=hashlib.sha256(f"{own}:{base.digest if base else ''}{':' + model if model else ''}".encode()).hexdigest(),
        min_agreement=(_fraction(c, top["min_agreement"], "min_agreement") if "min_agreement" in top
                       else (base.min_agreement if base else None)),
        encoder=encoder,
    )


def _encoder_name(c: RubricReader, node: yaml.Node) -> str:
    from qa_pipeline.meaning.encoder import ENCODERS

    return c.choice(node, "encoder", tuple(sorted(ENCODERS)))


def _base(c: RubricReader, node: yaml.Node, path: str, seen: tuple[str, ...]) -> Rubric:
    """The rubric `node` extends. What it names is checked to be a rubric before anything of it is
    shown: a regular file of at most MAX_BYTES, a mapping of rubric keys at its top (`extends:
    /etc/shadow` is refused without a word of the file), at most MAX_EXTENDS files down."""
    name = c.string(node, "extends")
    target = rubric_path_default() if name == "default" else (Path(path).parent / name)
    key = str(Path(target).resolve())
    if key in seen or key == str(Path(path).resolve()):
        raise c.error(node, f"extends: {name} extends this file again (a cycle)")
    if len(seen) >= MAX_EXTENDS:
        raise c.error(node, f"extends: more than {MAX_EXTENDS} rubric files extend one another")
    try:
        text = read_limited(target)
    except Unreadable as e:
        raise c.error(node, f"extends: {target} {e}" if e.opened else f"extends: cannot read {target}: {e}") from e
    try:
        root = compose_text(text, str(target), RubricError)
    except RubricError as e:  # its line, not its words
        raise c.error(node, f"extends: {target} is not a rubric file (not valid YAML at line {e.line})") from None
    if not (isinstance(root, yaml.MappingNode) and root.value and all(
            isinstance(k, yaml.ScalarNode) and k.value in _TOP_KEYS for k, _v in root.value)):
        raise c.error(node, f"extends: {target} is not a rubric file (valid YAML whose top level holds only "
                            f"{', '.join(_TOP_KEYS)})")
    return _rubric(root, text, str(target), seen + (str(Path(path).resolve()),))


def load_rubric(path: Path) -> Rubric:
    """Read and validate a rubric file; RubricError (one line, FILE:LINE: …) if it is unusable."""
    return parse_rubric(read_text(path, RubricError, "rubric"), str(path))
