"""The mood model's training turns: TTS calls rendered and their customer turns measured.

    .venv/bin/python tools/mood_training.py [--work /work/corpora/mood-train] [--calls 24]

Builds call scripts from training/mood/dialogues.yaml (tools/mood_dialogues.py), renders them with
tools/tts_calls.py in the TTS venv (/work/tts-venv, ../shared/tts), measures every customer turn's
voice the way the pipeline does (qa_pipeline.mood.voice on the decoded audio; relative to the
caller's first turns by qa_pipeline.mood.features), over the turn's rendered span, and writes
training/mood/turns.csv: call_id, turn, mood, frustrated, text, pitch_st, level_db, rate, overlap.
tools/train_mood.py fits the model on that file; the audio itself is not kept in the repo.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from mood_dialogues import build_scripts, turn_labels  # noqa: E402
from qa_pipeline.audio.decode import decode_to_files  # noqa: E402
from qa_pipeline.mood.features import customer_turns, voice_features  # noqa: E402
from qa_pipeline.mood.voice import utterance_voice, voice_tracks  # noqa: E402
from qa_pipeline.records import CallTranscript, Utterance  # noqa: E402

TRAIN_SEED = 5100
COLUMNS = ("call_id", "turn", "mood", "frustrated", "text", "pitch_st", "level_db", "rate", "overlap")


def measured_turns(audio: Path, script: dict, rendered: dict) -> list[dict]:
    """The customer turns of one rendered call with their voice features, relative to the caller."""
    spoken = turn_labels(script)
    timed = rendered["turns"]
    with tempfile.TemporaryDirectory() as tmp:
        decoded = decode_to_files(audio, Path(tmp) / "d")
        tracks = voice_tracks(decoded.channels, decoded.sample_rate)
    agent_channel = script.get("agent_channel", 0) if decoded.n_channels == 2 else None
    utterances = []
    for n, (t, r) in enumerate(zip(spoken, timed)):
        channel = 0 if agent_channel is None else (agent_channel if t["spk"] == "agent" else 1 - agent_channel)
        u = Utterance(f"{script['call_id']}-{n:05d}", script["call_id"], t["spk"], channel, r["start"], r["end"],
                      t["text"], t["text"], 0.0, 0.0)
        hz, db = utterance_voice(u, tracks)
        utterances.append(Utterance(**{**u.__dict__, "pitch_hz": hz, "level_db": db}))
    transcript = CallTranscript(script["call_id"], decoded.duration_s, decoded.n_channels, tuple(utterances), "reference")
    turns = customer_turns(transcript)
    labels = [t for t in spoken if t["spk"] == "customer"]
    return [{"call_id": script["call_id"], "turn": k, "mood": lab["mood"], "frustrated": int(lab["mood"] != "calm"),
             "text": u.text, "pitch_st": _r(v.pitch_st), "level_db": _r(v.level_db), "rate": _r(v.rate),
             "overlap": int(v.overlap)}
            for k, (u, v, lab) in enumerate(zip(turns, voice_features(transcript), labels))]


def _r(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/work/corpora/mood-train"))
    parser.add_argument("--calls", type=int, default=16)
    parser.add_argument("--pool", type=Path, default=ROOT / "training" / "mood" / "dialogues.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "training" / "mood" / "turns.csv")
    parser.add_argument("--tts-python", default="/work/tts-venv/bin/python")
    parser.add_argument("--tts-calls", type=Path, default=ROOT / "tools" / "tts_calls.py")
    parser.add_argument("--no-render", action="store_true", help="measure what --work already holds")
    args = parser.parse_args()
    scripts = build_scripts(yaml.safe_load(args.pool.read_text(encoding="utf-8")), "mt", args.calls, TRAIN_SEED)
    if not args.no_render:
        args.work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for s in scripts:
                p = Path(tmp) / f"{s['call_id']}.json"
                p.write_text(json.dumps(s, ensure_ascii=False), encoding="utf-8")
                paths.append(str(p))
            subprocess.run([args.tts_python, str(args.tts_calls), *paths, "--out", str(args.work)], check=True)
    rendered = json.loads((args.work / "labels.json").read_text(encoding="utf-8"))
    rows = []
    for s in scripts:
        audio = next((args.work / "audio").glob(f"{s['call_id']}.*"))
        rows += measured_turns(audio, s, rendered[s["call_id"]])
    with open(args.out, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} customer turns of {len(scripts)} calls -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
