"""Train the mood model: a logistic regression over the word and voice features of customer turns.

    .venv/bin/python tools/train_mood.py [--turns training/mood/turns.csv] [--features complaint,similar,...]
                                         [--out qa_pipeline/mood/data/mood.json]

Reads the training turns (tools/mood_training.py: TTS calls made for training, voice measured by the
pipeline's own code) and the example sentences (training/mood/examples.yaml); the word features are
computed here as at run time (qa_pipeline.mood.words: the complaint classifier, and the example
margin with the sentence encoder).
Fits weights by Newton's method with a small L2 penalty (no scikit-learn), on the turns and
AUGMENT copies with their voice features jittered by a caller's ordinary variation (see below), and writes the weights,
the examples and the threshold to the model file the package ships. `--features` trains a model on
some features only (the others get weight 0), for bench/mood.py's comparison.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_pipeline.customer_text import clauses, meaning_text  # noqa: E402
from qa_pipeline.meaning.cache import EmbeddingCache  # noqa: E402
from qa_pipeline.meaning.encoder import load_encoder  # noqa: E402
from qa_pipeline.models import cache_root  # noqa: E402
from qa_pipeline.mood.features import VoiceFeatures  # noqa: E402
from qa_pipeline.mood.model import FEATURES, feature_values  # noqa: E402
from qa_pipeline.mood.words import ExampleSimilarity, complaint_probability  # noqa: E402

L2 = 1.0
THRESHOLD = 0.5
# The TTS renders every plain turn within ±1 dB and ±4 % of pitch and speed; real callers (and the
# dev corpora's plain turns) vary by a few dB and semitones between sentences. Each training turn is
# therefore also seen AUGMENT times with its voice features moved by that much (seeded), so that
# the model learns what is beyond a caller's ordinary variation, not any change at all.
AUGMENT = 4
VOICE_SPREAD = {"pitch_st": 1.5, "level_db": 2.5, "rate": 0.1}


def _num(value: str) -> float | None:
    return float(value) if value not in ("", None) else None


def fit(x: np.ndarray, y: np.ndarray, l2: float = L2, steps: int = 50) -> tuple[np.ndarray, float]:
    """Weights and bias of an L2-penalised logistic regression (bias not penalised), by Newton's method."""
    a = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(a.shape[1])
    penalty = np.full(a.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(a @ w)))
        grad = a.T @ (p - y) + penalty * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=Path, default=ROOT / "training" / "mood" / "turns.csv")
    parser.add_argument("--examples", type=Path, default=ROOT / "training" / "mood" / "examples.yaml")
    parser.add_argument("--features", default=",".join(FEATURES))
    parser.add_argument("--out", type=Path, default=ROOT / "qa_pipeline" / "mood" / "data" / "mood.json")
    parser.add_argument("--augment", type=int, default=AUGMENT, help="noisy copies of each turn's voice features")
    args = parser.parse_args()
    used = [f for f in args.features.split(",") if f]
    unknown = set(used) - set(FEATURES)
    if unknown:
        raise SystemExit(f"unknown features: {', '.join(sorted(unknown))} (allowed: {', '.join(FEATURES)})")
    examples = yaml.safe_load(args.examples.read_text(encoding="utf-8"))
    frustrated, calm = [str(t) for t in examples["frustrated"]], [str(t) for t in examples["calm"]]
    with open(args.turns, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    embeddings = EmbeddingCache(load_encoder(), cache_root() / "embeddings")
    # as at run time (morning.turn_margins): examples in the normal form, each turn's most
    # frustrated clause
    similarity = ExampleSimilarity.from_examples(embeddings, [meaning_text(t) for t in frustrated],
                                                 [meaning_text(t) for t in calm])
    margins = []
    for r in rows:
        parts = clauses(r["text"])
        margins.append(float(similarity.margins(embeddings.vectors(list(parts))).max()) if parts else 0.0)
    x, y = [], []
    for r, margin in zip(rows, margins):
        voice = VoiceFeatures(_num(r["pitch_st"]), _num(r["level_db"]), _num(r["rate"]), r["overlap"] == "1")
        values = feature_values(complaint_probability(r["text"]), float(margin), voice)
        x.append([values[k] if k in used else 0.0 for k in FEATURES])
        y.append(float(r["frustrated"]))
    xa, ya = np.array(x), np.array(y)
    rng = np.random.default_rng(20250)
    spread = np.array([VOICE_SPREAD.get(k, 0.0) if k in used else 0.0 for k in FEATURES])
    measured = np.array([[r[k] != "" if k in VOICE_SPREAD else True for k in FEATURES] for r in rows])
    copies = [xa + rng.normal(0.0, 1.0, xa.shape) * spread * measured for _ in range(args.augment)]
    xt, yt = np.vstack([xa, *copies]), np.concatenate([ya] * (args.augment + 1))
    weights, bias = fit(xt, yt)
    p = 1.0 / (1.0 + np.exp(-(xa @ weights + bias)))
    pred = p >= THRESHOLD
    tp, fp, fn = int((pred & (ya == 1)).sum()), int((pred & (ya == 0)).sum()), int((~pred & (ya == 1)).sum())
    # the id names what decides a score: the weights and the examples
    digest = hashlib.sha256(json.dumps([[round(float(w), 4) for w in weights], round(bias, 4), frustrated, calm],
                                       ensure_ascii=False).encode()).hexdigest()[:10]
    model = {
        "id": f"mood-{digest}",
        "features": list(FEATURES),
        "weights": {k: round(float(w), 4) for k, w in zip(FEATURES, weights)},
        "bias": round(bias, 4),
        "threshold": THRESHOLD,
        "examples": {"frustrated": frustrated, "calm": calm},
        "trained_on": f"{len(rows)} customer turns of TTS training calls ({args.turns.name}), {args.augment} voice-jittered "
                      f"copies each; features {','.join(used)}",
    }
    args.out.write_text(json.dumps(model, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(rows)} turns ({int(ya.sum())} frustrated); training P {tp / max(1, tp + fp):.1%} R {tp / max(1, tp + fn):.1%}")
    print("weights:", model["weights"], "bias", model["bias"], "->", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
