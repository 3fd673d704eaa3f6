"""Train the intent classifier shipped as qa_pipeline/scoring/data/intents.json.

    .venv/bin/pip install scikit-learn      # training only; the package never imports it
    .venv/bin/python tools/train_intents.py [--out qa_pipeline/scoring/data/intents.json]

Reads training/intents/<label>/yes.txt and no.txt (one utterance a line, '#' comments): example
utterances written for this project from the seeds' situations, never taken from a test call.
Each is also copied with Whisper-style errors: characters swapped for sound-alikes by the confusion
model in qa_pipeline/phonetic.py (same syllable, or one close confusion away), numerals and
particles as Whisper writes them.  A logistic regression over tf-idf character and pinyin n-grams
(those found in at least two different written sentences) is fitted per label, its threshold set to the value that maximises F0.5 (precision counts double:
a false complaint turns an n/a into a fail, while a missed one is often still caught by the
rubric's words or by a wait) on 5-fold out-of-fold predictions, and written as plain JSON (no pickle).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_pipeline.scoring.intents import features  # noqa: E402
from qa_pipeline.scoring.normalize import normalize_text, to_pinyin  # noqa: E402
from qa_pipeline.scoring.phonetic import CLOSE, cost  # noqa: E402

COPIES = 4
SWAP_P = 0.15
SEED = 13


def read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def common_chars() -> list[str]:
    """GB2312 level-1 characters (the 3,755 most common), the pool Whisper's substitutes come from."""
    out = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            try:
                out.append(bytes((hi, lo)).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return out


def sound_alikes(pool: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """syllable -> (homophones, close sound-alikes) from the pool."""
    by_syllable: dict[str, list[str]] = {}
    for ch in pool:
        by_syllable.setdefault(to_pinyin(ch)[0], []).append(ch)
    syllables = list(by_syllable)
    out = {}
    for s in syllables:
        close = [c for t in syllables if t != s and cost(s, t) <= CLOSE for c in by_syllable[t]]
        out[s] = (by_syllable[s], close)
    return out


def noisy(text: str, table, rng: random.Random) -> str:
    norm = normalize_text(text)
    syl = to_pinyin(norm)
    chars = list(norm)
    for i, ch in enumerate(chars):
        if "\u4e00" <= ch <= "\u9fff" and rng.random() < SWAP_P:
            same, close = table.get(syl[i], ([], []))
            choices = same if (rng.random() < 0.6 or not close) else close
            if choices:
                chars[i] = rng.choice(choices)
    return "".join(chars)


def build(label_dir: Path, table, rng: random.Random):
    yes, no = read_lines(label_dir / "yes.txt"), read_lines(label_dir / "no.txt")
    texts, ys, groups = [], [], []
    for g, (line, y) in enumerate([(t, 1) for t in yes] + [(t, 0) for t in no]):
        texts.append(normalize_text(line))
        ys.append(y)
        groups.append(g)
        for _ in range(COPIES):
            texts.append(noisy(line, table, rng))
            ys.append(y)
            groups.append(g)
    return texts, ys, groups, len(yes), len(no)


def train_label(texts, ys, groups):
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    def make(rows):
        # a feature must come from two different written sentences: min_df=2 over the texts would
        # also keep the n-grams one sentence shares only with its own sound-alike copies
        sentences: dict[str, set[int]] = {}
        for i in rows:
            for gram in features(texts[i]):
                sentences.setdefault(gram, set()).add(groups[i])
        vocabulary = sorted(g for g, seen in sentences.items() if len(seen) >= 2)
        vec = TfidfVectorizer(analyzer=features, binary=True, norm="l2", lowercase=False, vocabulary=vocabulary)
        clf = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced")
        return vec, clf

    y = np.array(ys)
    oof = np.zeros(len(ys))
    for tr, te in GroupKFold(n_splits=5).split(texts, y, groups):
        vec, clf = make(tr)
        clf.fit(vec.fit_transform([texts[i] for i in tr]), y[tr])
        oof[te] = clf.predict_proba(vec.transform([texts[i] for i in te]))[:, 1]
    best_t, best_f = 0.5, -1.0
    for t in np.arange(0.2, 0.81, 0.025):
        pred = oof >= t
        tp = int((pred & (y == 1)).sum())
        precision = tp / max(1, int(pred.sum()))
        recall = tp / max(1, int((y == 1).sum()))
        f = 1.25 * precision * recall / max(1e-9, 0.25 * precision + recall)
        if f > best_f + 1e-9:
            best_t, best_f = float(t), f
    vec, clf = make(range(len(texts)))
    clf.fit(vec.fit_transform(texts), y)
    vocab = vec.vocabulary_
    idf = {g: float(vec.idf_[i]) for g, i in vocab.items()}
    weights = {g: float(clf.coef_[0][i]) for g, i in vocab.items()}
    return idf, float(clf.intercept_[0]), weights, round(best_t, 3), best_f


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "training" / "intents")
    parser.add_argument("--out", type=Path, default=ROOT / "qa_pipeline" / "scoring" / "data" / "intents.json")
    args = parser.parse_args()
    table = sound_alikes(common_chars())
    labels = {}
    described = []
    for label_dir in sorted(p for p in args.data.iterdir() if p.is_dir()):
        rng = random.Random(f"{SEED}:{label_dir.name}")  # one label's copies never depend on another's data
        texts, ys, groups, n_yes, n_no = build(label_dir, table, rng)
        idf, bias, weights, threshold, f1 = train_label(texts, ys, groups)
        labels[label_dir.name] = {"bias": round(bias, 5), "threshold": threshold,
                                  "idf": {g: round(v, 4) for g, v in idf.items()},
                                  "weights": {g: round(w, 5) for g, w in weights.items()}}
        described.append(f"{label_dir.name}: {n_yes} yes / {n_no} no sentences ×{COPIES + 1} with sound-alike copies")
        print(f"{label_dir.name}: {n_yes} yes, {n_no} no, {len(weights)} features; "
              f"threshold {threshold} (out-of-fold F0.5 {f1:.3f})")
    model = {"trained_on": "; ".join(described), "labels": labels}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(model, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
