"""Where people's verdicts come from: the review desk's decisions, or a labels file.

A :class:`LabelSource` has a ``name`` (shown to the user) and ``read() -> list[Label]``.  Files:

- CSV ``call_id,item_id,result[,inspector]``, with or without that header line; ``result`` is
  pass / fail / na (also n/a, 通过, 未通过, 不适用).
- JSON in the ``labels.json`` layout of the dev corpora: ``{call_id: {"items": {item_id: result},
  …}, …}`` (other keys ignored).

A bad file is refused with one line naming the file and the line (CSV) or the call and item (JSON).
The same (call, item) judged twice by the same inspector in one file is refused too: a label file
says one thing per person.

The review desk (``OUT/review.db``, :class:`ReviewLabels`) gives one label per decided (call, item):
the person's final verdict, who (inspector or supervisor), when, the machine verdict they judged
and whether the machine has said otherwise since (stale).

``qa calibrate OUT`` without ``--labels`` reads :func:`sources_in` OUT: the review desk's
decisions, ``OUT/labels.csv`` and ``OUT/labels.json``, where present.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from qa_pipeline.errors import InputError
from qa_pipeline.records import FAIL, NA, PASS, Label
from qa_pipeline.review.db import DB_FILE
from qa_pipeline.review.labels import read_labels

RESULTS = {
    PASS: PASS, FAIL: FAIL, NA: NA, "n/a": NA, "n.a.": NA,
    "通过": PASS, "未通过": FAIL, "不通过": FAIL, "不适用": NA,
}
CSV_COLUMNS = ("call_id", "item_id", "result", "inspector")
LABEL_FILES = ("labels.csv", "labels.json")  # looked for in OUT when no --labels is given


class LabelError(InputError):
    """A labels file that cannot be used; str() is one line naming the file and where in it."""


class LabelSource(Protocol):
    name: str

    def read(self) -> list[Label]: ...


def result_of(value: object) -> str | None:
    """pass | fail | na for a verdict as people write it; None if it is not one."""
    return RESULTS.get(str(value).strip().lower()) if isinstance(value, str) else None


def _check_duplicates(labels: list[Label]) -> list[Label]:
    first: dict[tuple[str, str, str | None], Label] = {}
    for label in labels:
        key = (label.call_id, label.item_id, label.inspector)
        if key in first:
            who = f" by {label.inspector}" if label.inspector else ""
            raise LabelError(f"{label.where}: {label.call_id} {label.item_id} judged twice{who} "
                             f"(first at {first[key].where})")
        first[key] = label
    return labels


def parse_csv(text: str, path: str = "<labels>") -> list[Label]:
    rows = list(csv.reader(io.StringIO(text)))
    labels: list[Label] = []
    start = 0
    if rows and [c.strip().lower() for c in rows[0][:3]] == list(CSV_COLUMNS[:3]):
        header = [c.strip().lower() for c in rows[0]]
        if header not in (list(CSV_COLUMNS[:3]), list(CSV_COLUMNS)):
            raise LabelError(f"{path}:1: columns must be {','.join(CSV_COLUMNS[:3])}[,inspector], got {','.join(rows[0])}")
        start = 1
    for n, row in enumerate(rows[start:], start=start + 1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if len(cells) not in (3, 4):
            raise LabelError(f"{path}:{n}: expected call_id,item_id,result[,inspector], got {len(cells)} fields")
        call_id, item_id, raw = cells[:3]
        if not call_id or not item_id:
            raise LabelError(f"{path}:{n}: call_id and item_id must not be empty")
        result = result_of(raw)
        if result is None:
            raise LabelError(f"{path}:{n}: result {raw!r} is not pass, fail or na")
        inspector = cells[3] if len(cells) == 4 and cells[3] else None
        labels.append(Label(call_id, item_id, result, inspector=inspector, where=f"{path}:{n}"))
    return _check_duplicates(labels)


def parse_json(text: str, path: str = "<labels>") -> list[Label]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LabelError(f"{path}:{e.lineno}: not valid JSON: {e.msg}") from e
    except RecursionError as e:  # [[[[… 100,000 deep: Python's parser gives up, and so do we, in one line
        raise LabelError(f"{path}: JSON nested too deep (labels are {{call_id: {{\"items\": {{item_id: result}}}}}})") from e
    if not isinstance(data, dict):
        raise LabelError(f"{path}: expected an object of calls ({{call_id: {{\"items\": {{item_id: result}}}}}})")
    labels: list[Label] = []
    for call_id, call in data.items():
        items = call.get("items") if isinstance(call, dict) else None
        if not isinstance(items, dict):
            raise LabelError(f"{path}: call {call_id}: \"items\" must be an object of item_id: result")
        for item_id, raw in items.items():
            result = result_of(raw)
            if result is None:
                raise LabelError(f"{path}: call {call_id} item {item_id}: result {raw!r} is not pass, fail or na")
            labels.append(Label(str(call_id), str(item_id), result, where=f"{path}: {call_id}/{item_id}"))
    return labels


@dataclass(frozen=True)
class FileLabels:
    """Labels from a CSV or JSON file (by its extension; .json is JSON, anything else CSV)."""

    path: Path

    @property
    def name(self) -> str:
        return str(self.path)

    def read(self) -> list[Label]:
        try:
            text = Path(self.path).read_text(encoding="utf-8-sig")
        except OSError as e:
            raise LabelError(f"{self.path}: cannot read labels: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise LabelError(f"{self.path}: labels are not UTF-8 text") from e
        parse = parse_json if Path(self.path).suffix.lower() == ".json" else parse_csv
        return parse(text, str(self.path))


@dataclass(frozen=True)
class ReviewLabels:
    """The review desk's decisions in OUT/review.db (none when the desk was never opened there)."""

    out: Path

    @property
    def name(self) -> str:
        return str(Path(self.out) / DB_FILE)

    def read(self) -> list[Label]:
        return [Label(d.call_id, d.item_id, d.result, inspector=d.user, role=d.role, decided_at=d.decided_at,
                      judged=d.machine_result, stale=d.stale, where=DB_FILE)
                for d in read_labels(Path(self.out))]


@dataclass(frozen=True)
class CombinedLabels:
    """Several sources read one after the other."""

    sources: tuple[LabelSource, ...]

    @property
    def name(self) -> str:
        return " + ".join(s.name for s in self.sources)

    def read(self) -> list[Label]:
        return [label for source in self.sources for label in source.read()]


def sources_in(out: Path) -> list[LabelSource]:
    """The label sources an output folder holds (empty when it holds none)."""
    found: list[LabelSource] = [ReviewLabels(Path(out))] if (Path(out) / DB_FILE).is_file() else []
    return found + [FileLabels(Path(out) / name) for name in LABEL_FILES if (Path(out) / name).is_file()]


def label_source(out: Path, labels: Path | None = None) -> LabelSource:
    """`labels` when given, else every source in OUT; InputError when there is none."""
    if labels is not None:
        return FileLabels(Path(labels))
    found = sources_in(out)
    if not found:
        raise InputError(f"{out}: no labels found (no review decisions, no {' or '.join(LABEL_FILES)}); "
                         "give --labels FILE")
    return found[0] if len(found) == 1 else CombinedLabels(tuple(found))
