"""Peak memory of `qa run` on long calls: it must stay under 2 GB and nearly flat in the length.

    python bench/memory.py                          # 30 min, 1 h, 2 h and 4 h calls
    python bench/memory.py --hours 0.5 1            # some of them
    python bench/memory.py --hours 4 -- --decoder sequential   # extra `qa run` arguments after --

Each call is generated once into --work (default /tmp/qa-memory): stereo 8 kHz 16-bit WAV of
speech-like noise, two sides taking turns of 2–7 s. A "voice" is a buzz at a wandering pitch
(90–260 Hz) through two formants that change every syllable, mixed with noise and shaped by a
syllable-rate (about 4.5 Hz) envelope; under it, a -50 dBFS noise floor on both channels. Silero
hears much of it as speech, so Whisper works on it as on a real call (and writes nonsense).
--speech-share (default 0.8) sets how much of the call someone speaks; Whisper's time grows with
it (on 2 CPU cores, about 1 s per 2 s of speech), the memory should not.

Each call then runs alone: `/usr/bin/time -v qa run FOLDER --out OUT --cache-dir (fresh)` with the
base model on the CPU, and the table gives the peak resident memory (`Maximum resident set size`),
the wall time, the CPU time in user space and in the kernel, the minor page faults and the run's
summary line.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RATE = 8000
LIMIT_MB = 2048


def _voice(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """One turn of speech-like sound at RATE, peak about -12 dBFS."""
    out = []
    left = int(seconds * RATE)
    f0 = rng.uniform(110, 220)
    while left > 0:
        n = min(left, int(rng.uniform(0.12, 0.3) * RATE))  # a syllable
        t = np.arange(n) / RATE
        f0 = float(np.clip(f0 * np.exp(rng.normal(0, 0.08)), 90, 260))
        f1, f2 = rng.uniform(300, 850), rng.uniform(900, 2300)
        harmonics = np.arange(1, int(3400 // f0) + 1) * f0
        gain = (np.exp(-((harmonics - f1) / 150) ** 2) + 0.6 * np.exp(-((harmonics - f2) / 250) ** 2) + 0.05) / np.sqrt(
            np.arange(1, len(harmonics) + 1))
        phases = rng.uniform(0, 2 * np.pi, len(harmonics))
        buzz = (gain[:, None] * np.sin(2 * np.pi * harmonics[:, None] * t[None, :] + phases[:, None])).sum(axis=0)
        hiss = rng.normal(0, 0.15, n)
        envelope = np.sin(np.pi * np.arange(n) / n) ** 1.5 * rng.uniform(0.5, 1.0)
        syllable = (buzz / (np.max(np.abs(buzz)) + 1e-9) + hiss) * envelope
        if rng.random() < 0.15:
            syllable *= 0.05  # a short pause between words
        out.append(syllable)
        left -= n
    return 0.25 * np.concatenate(out)


def make_call(path: Path, seconds: float, seed: int = 0, speech_share: float = 0.8) -> None:
    """A stereo call of ``seconds``, written a turn at a time (never whole in memory); someone
    speaks ``speech_share`` of the time."""
    rng = np.random.default_rng(seed)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        written, side = 0, 0
        total = int(seconds * RATE)
        while written < total:
            turn = _voice(rng, rng.uniform(2.0, 7.0))
            gap = np.zeros(int(len(turn) * (1 - speech_share) / speech_share * rng.uniform(0.5, 1.5)))
            speech = np.concatenate([turn, gap])[: total - written]
            block = rng.normal(0, 10 ** (-50 / 20), (len(speech), 2))
            block[:, side] += speech
            w.writeframes((np.clip(block, -1, 1) * 32767).astype("<i2").tobytes())
            written += len(speech)
            side = 1 - side


def peak_rss_mb(stderr: str) -> float | None:
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return int(m.group(1)) / 1024 if m else None


def time_field(stderr: str, name: str) -> float | None:
    """A number from /usr/bin/time -v's report, e.g. 'System time (seconds)'."""
    m = re.search(re.escape(name) + r": ([\d.]+)", stderr)
    return float(m.group(1)) if m else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, nargs="+", default=[0.5, 1, 2, 4])
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-memory"))
    parser.add_argument("--speech-share", type=float, default=0.8,
                        help="share of the call where one side speaks (Whisper's work grows with it, memory should not)")
    parser.add_argument("qa_args", nargs="*", help="extra arguments for `qa run` (after --)")
    args = parser.parse_args()

    rows = []
    for hours in args.hours:
        folder = args.work / f"call-{hours:g}h-{args.speech_share:g}"
        audio = folder / "audio" / f"noise_{hours:g}h.wav"
        if not audio.is_file():
            audio.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.monotonic()
            make_call(audio, hours * 3600, seed=int(hours * 100), speech_share=args.speech_share)
            print(f"generated {audio} ({audio.stat().st_size / 2**20:.0f} MB) in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        out, cache = folder / "out", folder / "cache"
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        command = ["/usr/bin/time", "-v", sys.executable, str(ROOT / "cli.py"), "run", str(audio.parent), "--out", str(out),
                   "--cache-dir", str(cache), "--max-duration", str(hours * 60 + 1), *args.qa_args]
        print("$ " + " ".join(command), file=sys.stderr)
        t0 = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.monotonic() - t0
        summary = next((line for line in done.stdout.splitlines() if " calls: " in line), done.stdout.strip()[-200:])
        user, kernel = time_field(done.stderr, "User time (seconds)"), time_field(done.stderr, "System time (seconds)")
        faults = time_field(done.stderr, "Minor (reclaiming a frame) page faults")
        rows.append((hours, peak_rss_mb(done.stderr), wall, user, kernel, faults, done.returncode, summary))
        print(f"{hours:g} h: {rows[-1][1]} MB, {wall:.0f} s, exit {done.returncode}: {summary}", file=sys.stderr)

    print(f"{'call':>6} {'peak RSS':>10} {'wall':>8} {'user':>8} {'kernel':>13} {'faults':>8} {'exit':>4}  summary")
    for hours, rss, wall, user, kernel, faults, code, summary in rows:
        share = f"{kernel:.0f}s {kernel / ((user + kernel) or 1):4.0%}" if user is not None and kernel is not None else "?"
        print(f"{hours:>5g}h {rss if rss is None else f'{rss:.0f} MB':>10} {wall:>7.0f}s {user or 0:>7.0f}s {share:>13} "
              f"{(faults or 0) / 1e6:>7.2f}M {code:>4}  {summary}")
    worst = max((r[1] or 0) for r in rows)
    print(f"largest peak: {worst:.0f} MB (limit {LIMIT_MB} MB)")
    return 0 if worst <= LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
