"""What the morning's stages cost per call: voice tracks (transcribe stage), mood, reasons, pages.

    .venv/bin/python bench/morning.py --calls 1000 [--audio ../shared/dev-calls/audio]

1. Voice tracks: each recording of --audio decoded as the transcribe stage does, then its pitch and
   level tracks measured (mood.voice); seconds per minute of audio, beside the decode itself.
2. An OUT of N transcribed synthetic calls (bench/scoring.py's: dev reference transcripts, each copy
   with its own words) scored by `qa score` once (which also fills the embedding cache: the cold
   run), then scored again with warm embeddings, timed whole; then each morning step timed alone on
   the same OUT: Morning.of_night (customer clauses, mood), Morning.write (mood table, reasons of
   the days touched), Morning.pages (trends, reasons comparisons, views). Per call = seconds / N.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scoring import reference_transcripts, synthetic, write_synthetic_out  # noqa: E402


def voice_cost(folder: Path) -> None:
    from qa_pipeline.audio.decode import decode_to_files
    from qa_pipeline.mood.voice import voice_tracks

    decode_s = voice_s = audio_s = 0.0
    files = sorted(p for p in folder.iterdir() if p.suffix in (".wav", ".flac", ".mp3", ".ogg"))
    for path in files:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            decoded = decode_to_files(path, Path(tmp) / "d")
            t1 = time.perf_counter()
            voice_tracks(decoded.channels, decoded.sample_rate)
            t2 = time.perf_counter()
        decode_s += t1 - t0
        voice_s += t2 - t1
        audio_s += decoded.duration_s
    minutes = audio_s / 60
    print(f"voice tracks: {len(files)} recordings, {minutes:.1f} min of audio: {voice_s / minutes:.3f} s per audio minute "
          f"(decoding them: {decode_s / minutes:.3f} s per minute; voice/decode = {voice_s / decode_s:.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--audio", type=Path, default=ROOT.parent / "shared" / "dev-calls" / "audio")
    parser.add_argument("--dev-labels", type=Path, default=ROOT / "tests" / "data" / "dev_labels.json")
    args = parser.parse_args()

    from qa_pipeline.batch.rescore import rescore
    from qa_pipeline.morning import Morning
    from qa_pipeline.output.tables import read_scores, read_transcripts
    from qa_pipeline.scoring.rubric import rubric_path_default

    if args.audio.is_dir():
        voice_cost(args.audio)
    base = reference_transcripts(json.loads(args.dev_labels.read_text(encoding="utf-8")))
    n = args.calls
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        write_synthetic_out(out, synthetic(n, base))
        t0 = time.perf_counter()
        rescore(out, rubric_path_default())
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        rescore(out, rubric_path_default())
        warm = time.perf_counter() - t0
        print(f"qa score, {n} calls: {cold:.1f} s with a cold embedding cache, {warm:.1f} s warm = {n / warm:.0f} calls/s")
        scores = read_scores(out)
        transcripts = read_transcripts(out)
        t0 = time.perf_counter()
        morning = Morning.of_night(out, transcripts, scores)
        t1 = time.perf_counter()
        morning.write(out, scores)
        t2 = time.perf_counter()
        morning.pages(out, transcripts)
        t3 = time.perf_counter()
        steps = {"mood (of_night)": t1 - t0, "mood table + reasons (write)": t2 - t1, "trends + reasons views (pages)": t3 - t2}
        for name, s in steps.items():
            print(f"  {name:<34} {s:6.2f} s = {1000 * s / n:.2f} ms per call")
        total = sum(steps.values())
        print(f"  the morning in all: {total:.2f} s = {1000 * total / n:.2f} ms per call, "
              f"{total / warm:.0%} of the warm `qa score`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
