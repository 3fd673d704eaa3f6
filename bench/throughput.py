"""Throughput of `qa run` against plain sequential faster-whisper, on the same calls, in one run.

    .venv/bin/python bench/throughput.py --dev-calls ../shared/dev-calls
    .venv/bin/python bench/throughput.py --dev-calls ../shared/dev-calls --device cuda   # on a GPU box

(a) baseline: one WhisperModel (the same model, device and compute type), `model.transcribe(channel,
    language="zh")` with every other option at its default, on each channel of each file in turn,
    segments materialised; decoding with faster_whisper.decode_audio(split_stereo=...) included.
(b) `qa run` end to end (decode, VAD, Whisper, tones, speakers, scoring, Parquet, HTML) into a
    fresh OUT with a fresh transcript cache, as a subprocess.
Prints audio seconds per wall second for both, their ratio, and the share of (b)'s time per stage
(from OUT/logs/run-*.jsonl). Both load the model once; (a)'s load time is excluded, (b)'s included.
For each, the CPU time in user space and in the kernel (its share of the CPU time) and the minor page
faults: (b)'s from the `qa run` process (and any it forked), (a)'s from this process while it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Cpu:
    """CPU seconds in user space and in the kernel, and minor page faults, of one side."""
    user_s: float
    sys_s: float
    minor_faults: int

    @classmethod
    def between(cls, before: resource.struct_rusage, after: resource.struct_rusage) -> "Cpu":
        return cls(after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, after.ru_minflt - before.ru_minflt)

    def describe(self) -> str:
        total = self.user_s + self.sys_s
        return (f"CPU {total:6.1f} s: user {self.user_s:6.1f} s, kernel {self.sys_s:5.1f} s ({self.sys_s / (total or 1):4.0%}), "
                f"{self.minor_faults / 1e6:5.2f} M minor page faults")


def baseline(paths: list[Path], model: str, device: str, compute_type: str | None) -> tuple[float, float, Cpu]:
    """(audio seconds, wall seconds, CPU) of plain sequential faster-whisper over every channel."""
    import av
    from faster_whisper import WhisperModel, decode_audio

    from qa_pipeline.models import resolve_model
    from qa_pipeline.asr.transcribe import pick_compute_type, pick_device

    device = pick_device(device)
    whisper = WhisperModel(resolve_model(model), device=device, compute_type=pick_compute_type(device, compute_type))
    audio_s = 0.0
    started, usage = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    for path in paths:
        with av.open(str(path)) as container:
            stereo = container.streams.audio[0].codec_context.channels == 2
        channels = decode_audio(str(path), split_stereo=True) if stereo else (decode_audio(str(path)),)
        for samples in channels:
            segments, _info = whisper.transcribe(samples, language="zh")
            list(segments)
        audio_s += len(channels[0]) / 16000
        print(f"  (a) {path.name}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    wall = time.monotonic() - started
    return audio_s, wall, Cpu.between(usage, resource.getrusage(resource.RUSAGE_SELF))


def ours(dev_calls: Path, extra: list[str]) -> tuple[float, float, dict[str, float], Cpu]:
    """(audio seconds, wall seconds, seconds per stage, CPU) of `qa run` end to end."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        command = [sys.executable, str(ROOT / "cli.py"), "run", str(dev_calls / "audio"), "--out", str(out),
                   "--manifest", str(dev_calls / "manifest.csv"), "--cache-dir", str(Path(tmp) / "cache"), *extra]
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        _pid, _status, usage = os.wait4(process.pid, 0)
        process.returncode = 0  # reaped by wait4
        wall = time.monotonic() - started
        cpu = Cpu(usage.ru_utime, usage.ru_stime, usage.ru_minflt)
        stages: dict[str, float] = defaultdict(float)
        audio_s = 0.0
        for log in (out / "logs").glob("run-*.jsonl"):
            for line in log.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if record.get("event") == "call":
                    audio_s += record.get("audio_s") or 0.0
                    for name, seconds in (record.get("stages") or {}).items():
                        stages[name] += seconds
        stages["outputs + start-up"] = wall - sum(stages.values())
    return audio_s, wall, dict(stages), cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev-calls", type=Path, default=ROOT.parent / "shared" / "dev-calls")
    parser.add_argument("--model", default="base")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compute-type", default=None)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("qa_args", nargs="*", help="extra `qa run` arguments (after --)")
    args = parser.parse_args()

    paths = sorted(p for p in (args.dev_calls / "audio").iterdir() if p.is_file())
    extra = ["--model", args.model, "--device", args.device] + (["--compute-type", args.compute_type] if args.compute_type else [])
    print(f"{len(paths)} files, model {args.model}, device {args.device}, {os.cpu_count()} CPUs", flush=True)
    b_audio, b_wall, stages, b_cpu = ours(args.dev_calls, extra + args.qa_args)
    print(f"(b) qa run end to end:       {b_audio:7.1f} s audio in {b_wall:6.1f} s = {b_audio / b_wall:5.2f} audio s / wall s")
    print(f"    {b_cpu.describe()}")
    if not args.skip_baseline:
        a_audio, a_wall, a_cpu = baseline(paths, args.model, args.device, args.compute_type)
        print(f"(a) plain faster-whisper:    {a_audio:7.1f} s audio in {a_wall:6.1f} s = {a_audio / a_wall:5.2f} audio s / wall s")
        print(f"    {a_cpu.describe()}")
        print(f"ratio (b)/(a): {(b_audio / b_wall) / (a_audio / a_wall):.2f}x")
    total = sum(stages.values())
    print("share of (b)'s wall time: " + ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(stages.items(), key=lambda kv: -kv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
