"""What an utterance means when no listed phrase says it: a small linear classifier.

The model (qa_pipeline/scoring/data/intents.json, a few hundred kB) is trained by tools/train_intents.py
from example utterances written for this project from the seeds' situations (training/intents/),
each also copied with Whisper-style sound-alike errors.  Features are the utterance's character
1–3-grams and toneless-pinyin 1–2-grams (so 投诉 heard as 头速 keeps half its evidence), weighted
tf-idf and L2-normalised exactly as scikit-learn's TfidfVectorizer(binary=True) does, so the
package needs no scikit-learn at run time: a score is a dot product and a logistic.

    >>> from qa_pipeline.scoring.intents import load_model
    >>> load_model().probability("complaint", "你们的服务也太差了，我要投诉")  # doctest: +SKIP
    0.97
"""

from __future__ import annotations

import importlib.resources
import json
import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Sequence

from qa_pipeline.scoring.normalize import normalize_text, to_pinyin

MODEL_FILE = "intents.json"
BOUNDARY = "#"
# whose utterances each bundled label was trained on (training/intents/<label>/): a rubric asks the
# customer's turns for a customer label (`when: customer_intent`) and the agent's for an agent label
# (a forbidden check's `intent`)
SPEAKER_OF_LABEL = {"complaint": "customer", "improper": "agent"}
SEEN_MAX = 100_000  # normal forms remembered per label (a pinyin passed in is the form's own: PreparedText)


def labels_of(speaker: str) -> tuple[str, ...]:
    """The bundled model's labels trained on `speaker`'s utterances, sorted."""
    return tuple(sorted(label for label in load_model().labels if SPEAKER_OF_LABEL.get(label) == speaker))


def features(norm: str, pinyin: Sequence[str] | None = None) -> list[str]:
    """The feature strings of one normalised utterance (duplicates removed, order kept)."""
    if pinyin is None:
        pinyin = to_pinyin(norm)
    padded = BOUNDARY + norm + BOUNDARY
    out: dict[str, None] = {}
    for n in (1, 2, 3):
        for i in range(len(padded) - n + 1):
            gram = padded[i : i + n]
            if gram != BOUNDARY:
                out.setdefault(gram, None)
    syl = [BOUNDARY, *pinyin, BOUNDARY]
    for n in (1, 2):
        for i in range(len(syl) - n + 1):
            gram = syl[i : i + n]
            if gram != [BOUNDARY]:
                out.setdefault("p:" + " ".join(gram), None)
    return list(out)


@dataclass(frozen=True)
class Label:
    bias: float
    threshold: float
    idf: dict[str, float]
    weights: dict[str, float]

    @cached_property
    def terms(self) -> dict[str, tuple[float, float]]:
        """Per feature of the vocabulary: its idf, and its weight times its idf (one lookup per feature)."""
        return {g: (v, self.weights.get(g, 0.0) * v) for g, v in self.idf.items()}

    @cached_property
    def seen(self) -> dict[str, float]:
        """P(label | normal form) of the forms already scored in this process: the scorer and the
        mood stage ask about the same customer turns."""
        return {}


@dataclass(frozen=True)
class IntentModel:
    labels: dict[str, Label]
    trained_on: str  # what the training script read, for the evidence line

    def probability(self, label: str, text: str, *, norm: str | None = None,
                    pinyin: Sequence[str] | None = None) -> float:
        """P(label | utterance).  Pass `norm`/`pinyin` when already computed (PreparedText)."""
        if norm is None:
            norm = normalize_text(text)
        if not norm:
            return 0.0
        lab = self.labels[label]
        seen = lab.seen
        p = seen.get(norm)
        if p is None:
            if len(seen) >= SEEN_MAX:
                seen.clear()
            p = seen[norm] = _probability(lab, features(norm, pinyin))
        return p

    def says(self, label: str, text: str, **kw) -> tuple[bool, float]:
        p = self.probability(label, text, **kw)
        return p >= self.labels[label].threshold, p


def _probability(lab: Label, grams: list[str]) -> float:
    terms = lab.terms
    present = [t for g in grams if (t := terms.get(g)) is not None]
    if not present:
        return 1.0 / (1.0 + math.exp(-lab.bias))
    norm2 = math.sqrt(sum(v * v for v, _ in present))
    z = lab.bias + sum(wv for _, wv in present) / norm2
    return 1.0 / (1.0 + math.exp(-z))


def model_from_dict(data: dict) -> IntentModel:
    try:
        return IntentModel(
            labels={
                name: Label(
                    float(d["bias"]),
                    float(d["threshold"]),
                    {k: float(v) for k, v in d["idf"].items()},
                    {k: float(v) for k, v in d["weights"].items()},
                )
                for name, d in data["labels"].items()
            },
            trained_on=str(data.get("trained_on", "")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not an intent model: {e}") from e


@lru_cache(maxsize=4)
def load_model(path: str | None = None) -> IntentModel:
    """The bundled model, or the one at `path`; loaded once per process."""
    if path is None:
        text = (importlib.resources.files("qa_pipeline.scoring") / "data" / MODEL_FILE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return model_from_dict(json.loads(text))
