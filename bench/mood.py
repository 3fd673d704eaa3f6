"""Per-turn frustration: precision and recall on the mood fixtures and the dev corpora's customer turns.

    .venv/bin/python bench/mood.py --fixtures /work/corpora/mood-fixtures=/tmp/i25-mf \\
        --corpus ../shared/dev-calls=/tmp/qa-dev --corpus ../shared/dev-calls-2=/tmp/qa-dev2 \\
        [--model words=/tmp/mood-words.json --model voice=/tmp/mood-voice.json]

Each `DIR=OUT` names a labelled set and the OUT of a `qa run` on it (its mood/turns.parquet and
transcripts). Truth per customer turn: on the fixtures, frustrated unless its `mood` is calm
(mood_labels.json: frustrated in words, in voice, or both); on the dev corpora, a complaint turn
(labels.json `complaint`, or the one the apology reason names in dev-calls; bench/complaints.py) is
frustrated and a neutral one is not. A turn's score is the highest frustration among the customer
utterances Whisper made of it (overlapping it by half); a turn no customer utterance covers
scores 0. Methods: the shipped model, extra models (`--model NAME=FILE`, e.g. trained by
tools/train_mood.py --features …), the complaint classifier alone (its own threshold) and the
example margin alone (> 0), all from the same per-turn features.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from complaints import labelled_turns  # noqa: E402
from qa_pipeline.mood.features import VoiceFeatures  # noqa: E402
from qa_pipeline.mood.model import feature_values, load_mood_model  # noqa: E402
from qa_pipeline.scoring.intents import load_model  # noqa: E402


def turn_rows(out: Path) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for r in pq.read_table(Path(out) / "mood" / "turns.parquet").to_pylist():
        rows.setdefault(r["call_id"], []).append(r)
    return rows


def covering(turn: dict, rows: list[dict]) -> list[dict]:
    return [r for r in rows if min(r["end"], turn["end"]) - max(r["start"], turn["start"])
            > 0.5 * min(r["end"] - r["start"], turn["end"] - turn["start"])]


def methods(extra: list[tuple[str, Path]]):
    shipped = load_mood_model()
    threshold = load_model().labels["complaint"].threshold

    def model_method(model):
        def score(r: dict) -> bool:
            voice = VoiceFeatures(r["pitch_st"], r["level_db"], r["rate"], r["overlap"])
            return model.frustration(feature_values(r["complaint"], r["example_margin"], voice)) >= model.threshold
        return score

    out = {f"shipped model ({shipped.id})": lambda r: r["frustration"] >= shipped.threshold}
    for name, path in extra:
        out[name] = model_method(load_mood_model(str(path)))
    out["complaint classifier alone"] = lambda r: r["complaint"] >= threshold
    out["example margin alone (> 0)"] = lambda r: r["example_margin"] > 0
    return out


def prf(pred: list[bool], truth: list[bool]) -> str:
    tp = sum(p and t for p, t in zip(pred, truth))
    fp = sum(p and not t for p, t in zip(pred, truth))
    fn = sum(t and not p for p, t in zip(pred, truth))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return f"P {p:6.1%}  R {r:6.1%}  (tp {tp}, fp {fp}, fn {fn})"


def evaluate(name: str, turns: list[dict], rows: dict[str, list[dict]], found: dict) -> None:
    truth = [t["truth"] for t in turns]
    covered = [covering(t, rows.get(t["call_id"], [])) for t in turns]
    print(f"\n{name}: {len(turns)} customer turns, {sum(truth)} frustrated, "
          f"{sum(1 for c in covered if not c)} not found as a customer utterance")
    for method, fn in found.items():
        pred = [any(fn(r) for r in c) for c in covered]
        line = f"  {method:<42} {prf(pred, truth)}"
        kinds = sorted({t.get("mood") for t in turns if t.get("mood") and t.get("mood") != "calm"})
        if kinds:
            line += "   recall by kind: " + ", ".join(
                f"{k} {sum(p for p, t in zip(pred, turns) if t.get('mood') == k)}/{sum(t.get('mood') == k for t in turns)}"
                for k in kinds)
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", action="append", default=[], help="DIR=OUT (mood fixtures)")
    parser.add_argument("--corpus", action="append", default=[], help="DIR=OUT (dev corpus with complaint labels)")
    parser.add_argument("--model", action="append", default=[], help="NAME=FILE: another mood model to compare")
    args = parser.parse_args()
    found = methods([(n, Path(p)) for n, _, p in (m.partition("=") for m in args.model)])
    for spec in args.fixtures:
        folder, _, out = spec.partition("=")
        labels = json.loads((Path(folder) / "mood_labels.json").read_text(encoding="utf-8"))
        turns = [dict(t, call_id=c, truth=t["frustrated"]) for c, ts in sorted(labels.items()) for t in ts]
        evaluate(f"{Path(folder).name} (TTS, frustrated in words / voice / both)", turns, turn_rows(Path(out)), found)
    for spec in args.corpus:
        folder, _, out = spec.partition("=")
        evaluate(f"{Path(folder).name} (complaint vs neutral customer turns)", labelled_turns(Path(folder)),
                 turn_rows(Path(out)), found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
