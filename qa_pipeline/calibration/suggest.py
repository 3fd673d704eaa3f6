"""The desk teaches the rubric: inspectors' overrides become candidate examples and near-misses.

    qa rubric suggest OUT [--since DATE] [--rubric LIVE] [--write CANDIDATE]

Every decision on the review desk (OUT/review.db) that overrode the machine is read with the
machine verdict it overrode and the words it was about:

  item checks                     machine → person   the utterance becomes
  forbidden                       fail → pass        a near-miss (the quoted words were not a 禁语)
  forbidden                       pass → fail        an example (the words the person quoted)
  phrase (`any`)                  fail → pass        an example (the words the person quoted)
  phrase (`any`)                  pass → fail        a near-miss (the words the machine quoted)
  when with examples (complaint)  na → pass/fail     a `when` example (the customer's words the person quoted)
  when with examples (complaint)  pass/fail → na     a `when` near-miss (the customer's words the machine quoted)

"The words the person quoted": the first text in quotation marks (“…”, "…", 「…」) of the override's
reason; "the words the machine quoted": the first quote of its reason or evidence; either is widened
to the whole transcript utterance that holds it.  An override whose words cannot be found is listed
and skipped.  The candidate is the live rubric's text with the new entries added below each list
(comments and order kept), each citing its decision as `source`; the live rubric is never changed.
`qa calibrate OUT --rubric CANDIDATE` and `qa rubric test CANDIDATE` then show before → after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from qa_pipeline.errors import InputError
from qa_pipeline.output.tables import read_scores, read_transcripts
from qa_pipeline.records import FAIL, NA, PASS, CallTranscript, ItemResult
from qa_pipeline.review.labels import Label, read_labels
from qa_pipeline.scoring.rubric import ForbiddenCheck, Item, PhraseCheck, Rubric, parse_rubric

_QUOTED = re.compile(r"“([^”]{2,})”|\"([^\"]{2,})\"|「([^」]{2,})」|'([^']{2,})'")
OVERRIDES = ("override", "accept")


@dataclass(frozen=True)
class Suggested:
    item_id: str
    where: str  # "examples" | "near_misses" (of the item) or "when.examples" | "when.near_misses"
    text: str
    source: str
    call_id: str


@dataclass(frozen=True)
class Suggestion:
    added: tuple[Suggested, ...]
    skipped: tuple[str, ...]  # one line per override that gave nothing, and why
    text: str  # the candidate rubric


def _quoted(text: str | None) -> str | None:
    if not text:
        return None
    m = _QUOTED.search(text)
    return next((g for g in m.groups() if g), None) if m else None


def _utterance(t: CallTranscript | None, words: str | None, speaker: str | None) -> str | None:
    """The whole utterance of `t` that holds `words` (ignoring punctuation), else the words themselves."""
    if not words:
        return None
    if t is not None:
        from qa_pipeline.scoring.normalize import normalize_text

        want = normalize_text(words.strip("…"))
        for u in t.utterances:
            if want and want in normalize_text(u.text) and (speaker is None or u.speaker == speaker):
                return u.text.strip()
    return words.strip("… ").strip() or None


def _what(item: Item, machine: str, person: str) -> tuple[str, str] | None:
    """(list to add to, whose words: 'person' | 'machine'), or None when the override teaches no example."""
    if item.when is not None and (item.when.meaning is not None or item.when.customer_intent):
        if machine == NA and person in (PASS, FAIL):
            return "when.examples", "person"
        if machine in (PASS, FAIL) and person == NA:
            return "when.near_misses", "machine"
    if isinstance(item.check, ForbiddenCheck):
        if machine == FAIL and person == PASS:
            return "near_misses", "machine"
        if machine == PASS and person == FAIL:
            return "examples", "person"
    if isinstance(item.check, PhraseCheck) and item.check.any:
        if machine == FAIL and person == PASS:
            return "examples", "person"
        if machine == PASS and person == FAIL:
            return "near_misses", "machine"
    return None


def suggest(out: Path, rubric_path: Path, since: date | None = None) -> Suggestion:
    text = Path(rubric_path).read_text(encoding="utf-8")
    rubric = parse_rubric(text, str(rubric_path))
    items = {i.id: i for i in rubric.items}
    labels = [lab for lab in read_labels(Path(out))
              if lab.action in OVERRIDES and lab.machine_result is not None and lab.result != lab.machine_result
              and (since is None or date.fromisoformat(lab.decided_at[:10]) >= since)]
    machine: dict[tuple[str, str], ItemResult] = {}
    if labels:
        for score in read_scores(out):
            for r in score.items:
                machine[(score.call_id, r.item_id)] = r
    transcripts = read_transcripts(out, call_ids={lab.call_id for lab in labels}) if labels else {}
    added: list[Suggested] = []
    skipped: list[str] = []
    for lab in labels:
        where = f"{lab.call_id} {lab.item_id} ({lab.machine_result} → {lab.result}, {lab.user} {lab.decided_at[:10]})"
        item = items.get(lab.item_id)
        if item is None:
            skipped.append(f"{where}: no item '{lab.item_id}' in {rubric_path}")
            continue
        what = _what(item, lab.machine_result, lab.result)
        if what is None:
            skipped.append(f"{where}: a {item.check.type} item learns no example from this override")
            continue
        target, whose = what
        has = item.when.meaning if target.startswith("when.") else item.meaning
        if target.endswith("near_misses") and has is None and not any(a.item_id == item.id and a.where == target.replace(
                "near_misses", "examples") for a in added):
            skipped.append(f"{where}: item '{item.id}' has no examples yet, so a near-miss would not be used")
            continue
        speaker = "customer" if target.startswith("when.") else "agent"
        if whose == "person":
            words = _quoted(lab.reason)
        else:
            r = machine.get((lab.call_id, lab.item_id))
            words = _quoted(r.reason if r else None) if target.startswith("when.") else (
                (r.evidence_text or "").split(" … ")[0] if r else None)
        sentence = _utterance(transcripts.get(lab.call_id), words, speaker)
        if not sentence:
            skipped.append(f"{where}: no utterance to learn from (quote the words in the reason, “…”)")
            continue
        source = f"复核改判 {lab.decided_at[:10]} {lab.user}：通话 {lab.call_id}（{lab.machine_result} → {lab.result}）"
        added.append(Suggested(item.id, target, sentence[:200], source, lab.call_id))
    unique = list({(a.item_id, a.where, a.text): a for a in added}.values())
    candidate = _insert(text, str(rubric_path), rubric, unique) if unique else text
    parse_rubric(candidate, str(rubric_path))  # the candidate must load as the live one does
    return Suggestion(tuple(unique), tuple(skipped), candidate)


def _flow(text: str) -> str:
    return yaml.safe_dump(text, allow_unicode=True, default_style='"', width=10_000).strip()


def _insert(text: str, path: str, rubric: Rubric, added: list[Suggested]) -> str:
    """`text` with each suggestion added as a new line at the end of its list (created when missing)."""
    root = yaml.compose(text)
    items_node = next((v for k, v in root.value if k.value == "items"), None)
    if items_node is None:
        raise InputError(f"{path}: the candidate needs the rubric's own items (this file takes them from 'extends')")
    lines = text.splitlines(keepends=True)
    inserts: dict[int, list[str]] = {}  # line index → lines to insert before it
    for item_node in items_node.value:
        m = {k.value: v for k, v in item_node.value}
        item_id = m["id"].value
        mine = [a for a in added if a.item_id == item_id]
        if not mine:
            continue
        for prefix, node in (("", item_node), ("when.", m.get("when"))):
            for key in ("examples", "near_misses"):
                wanted = [a for a in mine if a.where == prefix + key]
                if not wanted:
                    continue
                if node is None:
                    raise InputError(f"{path}: item '{item_id}' has no when to add {key} to")
                mm = {k.value: (k, v) for k, v in node.value}
                entries = [f"{{text: {_flow(a.text)}, source: {_flow(a.source)}}}" for a in wanted]
                if key in mm:
                    seq = mm[key][1]
                    if not isinstance(seq, yaml.SequenceNode) or seq.flow_style or not seq.value:
                        raise InputError(f"{path}:{seq.start_mark.line + 1}: {key} must be a block list to add to")
                    indent = seq.value[0].start_mark.column
                    at = seq.value[-1].end_mark.line + (1 if seq.value[-1].end_mark.column > 0 else 0)
                    inserts.setdefault(at, []).extend(" " * (indent - 2) + "- " + e + "\n" for e in entries)
                else:
                    first_key = node.value[0][0]
                    indent = first_key.start_mark.column
                    last = node.value[-1][1]
                    at = last.end_mark.line + (1 if last.end_mark.column > 0 else 0)
                    block = [" " * indent + f"{key}:  # from the review desk\n"]
                    block += [" " * (indent + 2) + "- " + e + "\n" for e in entries]
                    inserts.setdefault(at, []).extend(block)
    out: list[str] = []
    for n, line in enumerate(lines):
        out.extend(inserts.get(n, []))
        out.append(line)
    if not lines or not lines[-1].endswith("\n"):
        out.append("\n")
    out.extend(inserts.get(len(lines), []))
    return "".join(out)
