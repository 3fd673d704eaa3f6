"""The mood fixtures: TTS calls whose customer turns are frustrated in words, in voice, both or neither.

    .venv/bin/python bench/mood_fixtures.py --out /work/corpora/mood-fixtures [--calls 16]

Scripts come from tools/mood_dialogues.py with the lines of bench/mood_pool.yaml (none shared with
the training calls of tools/mood_training.py) and are rendered by tools/tts_calls.py in the TTS venv
(/work/tts-venv, ../shared/tts). OUT gets the tts_calls layout (audio/, scripts/, manifest.csv,
labels.json) and mood_labels.json: per call, the customer turns in order with `mood` (calm | words |
voice | both), start and end. bench/mood.py measures per-turn precision and recall on them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from mood_dialogues import build_scripts, turn_labels  # noqa: E402

FIXTURE_SEED = 9300


def render(scripts: list[dict], out: Path, tts_python: str, tts_calls: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for s in scripts:
            path = Path(tmp) / f"{s['call_id']}.json"
            path.write_text(json.dumps(s, ensure_ascii=False, indent=1), encoding="utf-8")
            paths.append(str(path))
        subprocess.run([tts_python, str(tts_calls), *paths, "--out", str(out)], check=True)


def mood_labels(scripts: list[dict], out: Path) -> dict:
    """Per call, the customer turns with their kind and their times in the rendered audio."""
    rendered = json.loads((out / "labels.json").read_text(encoding="utf-8"))
    result = {}
    for s in scripts:
        spoken = turn_labels(s)
        timed = rendered[s["call_id"]]["turns"]
        if len(spoken) != len(timed):
            raise SystemExit(f"{s['call_id']}: {len(spoken)} scripted turns, {len(timed)} rendered")
        result[s["call_id"]] = [{"mood": t["mood"], "frustrated": t["mood"] != "calm", "text": t["text"],
                                 "start": r["start"], "end": r["end"]}
                                for t, r in zip(spoken, timed) if t["spk"] == "customer"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/work/corpora/mood-fixtures"))
    parser.add_argument("--calls", type=int, default=16)
    parser.add_argument("--pool", type=Path, default=ROOT / "bench" / "mood_pool.yaml")
    parser.add_argument("--seed", type=int, default=FIXTURE_SEED)
    parser.add_argument("--prefix", default="mf")
    parser.add_argument("--tts-python", default="/work/tts-venv/bin/python")
    parser.add_argument("--tts-calls", type=Path, default=ROOT / "tools" / "tts_calls.py")
    args = parser.parse_args()
    pool = yaml.safe_load(args.pool.read_text(encoding="utf-8"))
    scripts = build_scripts(pool, args.prefix, args.calls, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    render(scripts, args.out, args.tts_python, args.tts_calls)
    labels = mood_labels(scripts, args.out)
    (args.out / "mood_labels.json").write_text(json.dumps(labels, ensure_ascii=False, indent=1), encoding="utf-8")
    turns = [t for ts in labels.values() for t in ts]
    kinds = {k: sum(t["mood"] == k for t in turns) for k in ("calm", "words", "voice", "both")}
    print(f"{len(labels)} calls, {len(turns)} customer turns: {kinds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
