"""The mood model: a logistic combination of the word and voice features of a customer turn.

    frustration = 1 / (1 + exp(-(bias + Σ weight_i · feature_i)))

Weights, the example sentences of the word side and the threshold ship in ``data/mood.json``,
written by ``tools/train_mood.py`` from ``training/mood/`` (turns of TTS calls made for training,
with their voice features measured, and hand-written example sentences); nothing is fitted at run
time. A call's peak is its most frustrated customer turn, its end the customer's last substantive
turn (4+ characters: a bare 再见 says nothing of the mood); the customer ended calmer
(de-escalation) when the peak came before the end, reached the threshold, the end did not, and the
end is at least DEESCALATION_DROP lower.
"""

from __future__ import annotations

import importlib.resources
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa_pipeline.mood.features import SUBSTANTIVE_CHARS, VoiceFeatures, customer_turns, spoken_chars, voice_features
from qa_pipeline.mood.words import ExampleSimilarity, complaint_probability
from qa_pipeline.records import CUSTOMER, CallMood, CallTranscript, TurnMood

MODEL_FILE = "mood.json"
FEATURES = ("complaint", "similar", "pitch_st", "level_db", "rate", "overlap")
CLIP = {"pitch_st": (-6.0, 12.0), "level_db": (-10.0, 15.0), "rate": (-1.0, 1.0)}
DEESCALATION_DROP = 0.2


@dataclass(frozen=True)
class MoodModel:
    id: str
    weights: dict[str, float]
    bias: float
    threshold: float
    frustrated_examples: tuple[str, ...]
    calm_examples: tuple[str, ...]
    trained_on: str = ""

    def frustration(self, values: dict[str, float]) -> float:
        z = self.bias + sum(self.weights.get(k, 0.0) * v for k, v in values.items())
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def feature_values(complaint: float, similar: float, voice: VoiceFeatures) -> dict[str, float]:
    """The model's inputs, in FEATURES order: a voice feature not measured counts as the caller's usual."""

    def clipped(name: str, value: float | None) -> float:
        low, high = CLIP[name]
        return 0.0 if value is None else max(low, min(high, value))

    return {"complaint": complaint, "similar": similar, "pitch_st": clipped("pitch_st", voice.pitch_st),
            "level_db": clipped("level_db", voice.level_db), "rate": clipped("rate", voice.rate),
            "overlap": float(voice.overlap)}


def model_from_dict(data: dict) -> MoodModel:
    try:
        return MoodModel(id=str(data["id"]), weights={k: float(data["weights"][k]) for k in FEATURES},
                         bias=float(data["bias"]), threshold=float(data["threshold"]),
                         frustrated_examples=tuple(str(t) for t in data["examples"]["frustrated"]),
                         calm_examples=tuple(str(t) for t in data["examples"]["calm"]),
                         trained_on=str(data.get("trained_on", "")))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not a mood model: {e}") from e


@lru_cache(maxsize=4)
def load_mood_model(path: str | None = None) -> MoodModel:
    """The bundled model, or the one at `path`; loaded once per process."""
    if path is None:
        text = (importlib.resources.files("qa_pipeline.mood") / "data" / MODEL_FILE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return model_from_dict(json.loads(text))


def call_mood(transcript: CallTranscript, model: MoodModel, similar: Sequence[float] | None = None) -> CallMood:
    """Every customer turn's frustration, the peak and the end. `similar`: the word side's example
    margin per customer turn (:class:`ExampleSimilarity`), None without the encoder."""
    turns = customer_turns(transcript)
    voices = voice_features(transcript)
    margins = list(similar) if similar is not None else [0.0] * len(turns)
    moods = []
    for u, voice, margin in zip(turns, voices, margins):
        complaint = complaint_probability(u.text)
        values = feature_values(complaint, float(margin), voice)
        moods.append(TurnMood(u.utterance_id, u.start, u.end, round(model.frustration(values), 4), round(complaint, 4),
                              round(float(margin), 4), _round(voice.pitch_st), _round(voice.level_db),
                              _round(voice.rate), voice.overlap))
    return summarise(transcript.call_id, model, moods, [spoken_chars(u.text) >= SUBSTANTIVE_CHARS for u in turns])


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def summarise(call_id: str, model: MoodModel, turns: Sequence[TurnMood], substantive: Sequence[bool]) -> CallMood:
    """`substantive`: per turn, whether it says enough to tell the mood at the end."""
    if not turns:
        return CallMood(call_id, model.id, (), None, None, None, False)
    top = max(range(len(turns)), key=lambda k: (turns[k].frustration, -k))
    last = max((k for k, t in enumerate(turns) if substantive[k]), default=len(turns) - 1)
    peak, end = turns[top].frustration, turns[last].frustration
    calmer = top < last and peak >= model.threshold > end and peak - end >= DEESCALATION_DROP
    return CallMood(call_id, model.id, tuple(turns), peak, turns[top].start, end, calmer)


def customer_margins(transcript: CallTranscript, call_vectors: np.ndarray, similarity: ExampleSimilarity) -> list[float]:
    """The example margin of each customer turn, from the call's utterance vectors (one row per
    kept utterance, in order)."""
    rows = [k for k, u in enumerate(transcript.utterances) if u.speaker == CUSTOMER]
    return [float(m) for m in similarity.margins(call_vectors[rows])] if rows else []
