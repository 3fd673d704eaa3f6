"""Damaged MP3 / M4A frames: how much of a call each decoder keeps, and whether the loss is flagged.

    .venv/bin/python bench/damaged_audio.py                       # dev_03: 8 MP3 + 8 M4A copies, before vs now
    .venv/bin/python bench/damaged_audio.py --trials 20 --bytes 2000
    .venv/bin/python bench/damaged_audio.py --score --out /tmp/qa-damaged -- --cache-dir /tmp/qa-tcache

A real dev call (default ../shared/dev-calls dev_03, an MP3 of 60.9 s) is taken as its MP3 and as an
M4A (AAC 48 kbit/s, encoded here from the same call); each of --trials copies per format gets
--bytes random bytes written over it at a random place in the middle 90% of the file (seeded by
the trial: the same command writes the same copies). Each copy is decoded by the decoder of
--before (a git ref; default af07397, main before damaged frames were decoded past) and by this
checkout's, and per copy the bench prints the seconds each kept and what this checkout says about
the loss (decode errors, seconds lost, held for review: lost ≥ scoring.score.HOLD_LOST_AUDIO_S).

"kept" counts the copies that decode to at least 99% of the clean call's seconds of real audio
(damaged stretches put back as silence do not count as kept); "flagged" the copies whose loss
`recordings` reports and whose call is held for review. Before, nothing was ever flagged.

--score runs `qa run` (this checkout) on the clean call and every copy into --out, and prints each
copy's score and failed items beside the clean call's (arguments after -- go to `qa run`).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import logging
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from qa_pipeline.audio.decode import decode  # noqa: E402
from qa_pipeline.scoring.score import HOLD_LOST_AUDIO_S  # noqa: E402

KEPT_SHARE = 0.99
logging.getLogger("qa_pipeline").setLevel(logging.ERROR)  # each copy's loss is in the table


def old_decoder(ref: str):
    """The `decode` function of qa_pipeline/audio/decode.py at git `ref`."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:qa_pipeline/audio/decode.py"],
                            capture_output=True, text=True, check=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="qa-old-decode-"))
    (folder / "old_decode.py").write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("old_decode", folder / "old_decode.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_decode"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.decode


def to_m4a(source: Path, target: Path) -> Path:
    """The call as AAC in MP4, mono 16 kHz, 48 kbit/s (the dev MP3s' rate)."""
    audio = decode(source)
    samples = np.asarray(audio.channels[0], np.float32)[None, :]
    with av.open(str(target), mode="w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        stream.bit_rate = 48000
        frame = av.AudioFrame.from_ndarray(samples.copy(), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return target


def damage(source: Path, target: Path, n_bytes: int, seed: int) -> int:
    """A copy of `source` with `n_bytes` random bytes at a random offset; the offset."""
    data = bytearray(source.read_bytes())
    rng = random.Random(seed)
    low, high = len(data) // 20, len(data) - len(data) // 20 - n_bytes
    offset = rng.randrange(low, high)
    data[offset : offset + n_bytes] = bytes(rng.randrange(256) for _ in range(n_bytes))
    target.write_bytes(bytes(data))
    return offset


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--call", type=Path, default=ROOT.parent / "shared/dev-calls/audio/dev_03.mp3")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--bytes", type=int, default=200)
    parser.add_argument("--before", default="af07397", help="git ref of the decoder to compare with")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "qa-damaged-audio")
    parser.add_argument("--score", action="store_true", help="also run `qa run` on the copies and compare scores")
    args = parser.parse_args(argv)

    before = old_decoder(args.before)
    audio_dir = args.out / "audio"
    shutil.rmtree(audio_dir, ignore_errors=True)
    audio_dir.mkdir(parents=True)
    stem = args.call.stem
    sources = {"mp3": audio_dir / f"{stem}.mp3"}
    shutil.copyfile(args.call, sources["mp3"]) if args.call.suffix == ".mp3" else None
    if args.call.suffix != ".mp3":
        raise SystemExit("--call must be an MP3 (the M4A is made from it)")
    sources["m4a"] = to_m4a(args.call, audio_dir / f"{stem}.m4a")

    print(f"{args.call.name}: {args.trials} copies per format, {args.bytes} random bytes each; "
          f"before = {args.before}, held when ≥ {HOLD_LOST_AUDIO_S} s lost\n")
    print(f"{'copy':<16} {'offset':>8}  {'before kept':>12}  {'now kept':>9}  {'errors':>6}  {'lost s':>6}  held")
    totals: dict[str, dict[str, int]] = {}
    rows = []
    for fmt, source in sources.items():
        clean = decode(source).decoded_s
        t = totals.setdefault(fmt, {"before_kept": 0, "now_kept": 0, "flagged": 0, "before_s": 0.0, "now_s": 0.0})
        for trial in range(args.trials):
            copy = audio_dir / f"{stem}_{fmt}_{trial}.{fmt}"
            offset = damage(source, copy, args.bytes, seed=trial * 1000 + args.bytes + (fmt == "m4a"))
            try:
                old_s = before(copy).duration_s
            except Exception as e:  # noqa: BLE001 - the old decoder's failure is a result too
                old_s = 0.0
                print(f"  (before: {type(e).__name__}: {e})")
            now = decode(copy)
            held = now.lost_s >= HOLD_LOST_AUDIO_S
            t["before_kept"] += old_s >= KEPT_SHARE * clean
            t["now_kept"] += now.decoded_s >= KEPT_SHARE * clean
            t["flagged"] += held
            t["before_s"] += old_s / clean
            t["now_s"] += now.decoded_s / clean
            rows.append((copy, fmt))
            print(f"{copy.name:<16} {offset:>8}  {old_s:6.1f} s {100 * old_s / clean:3.0f}%  "
                  f"{now.decoded_s:6.1f} s  {now.decode_errors:>6}  {now.lost_s:6.2f}  {'yes' if held else 'no'}")
        print(f"{fmt}: clean {clean:.1f} s; kept (≥ {KEPT_SHARE:.0%}): before {t['before_kept']}/{args.trials}, "
              f"now {t['now_kept']}/{args.trials}; flagged: before 0/{args.trials}, now {t['flagged']}/{args.trials}; "
              f"mean share kept before {100 * t['before_s'] / args.trials:.0f}%, now {100 * t['now_s'] / args.trials:.1f}%\n")

    if args.score:
        score_copies(args, sources, rows, extra)
    return 0


def score_copies(args, sources: dict[str, Path], rows: list[tuple[Path, str]], extra: list[str]) -> None:
    """`qa run` over the clean call and the copies; each copy's score and fails beside the clean one's."""
    from qa_pipeline.output.tables import read_scores

    audio_dir = args.out / "audio"
    manifest = audio_dir / "manifest.csv"
    with open(manifest, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["call_id", "path", "agent_id", "started_at"])
        for path in [*sources.values(), *(p for p, _f in rows)]:
            writer.writerow([path.stem + ("_clean_" + path.suffix[1:] if path in sources.values() else ""),
                             path.name, "A1001", "2025-03-03T14:31:12+08:00"])
    out = args.out / "out"
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "run", str(audio_dir), "--out", str(out),
                    "--manifest", str(manifest), *extra], check=False)
    scores = {s.call_id: s for s in read_scores(out)}
    for fmt in sources:
        clean = scores.get(f"{sources[fmt].stem}_clean_{fmt}")
        fails = lambda s: sorted(i.item_id for i in s.items if i.result == "fail")  # noqa: E731
        print(f"{fmt} clean: {clean.score} fails {fails(clean)}")
        same = 0
        for path, f in rows:
            if f != fmt:
                continue
            s = scores[path.stem]
            same += s.score == clean.score and fails(s) == fails(clean)
            print(f"  {path.stem}: {s.status} {s.score} fails {fails(s) if s.status == 'ok' else s.error} "
                  f"held {'yes' if s.held_reason else 'no'}")
        print(f"{fmt}: {same}/{sum(1 for _p, f in rows if f == fmt)} copies scored as the clean call")


if __name__ == "__main__":
    sys.exit(main())
