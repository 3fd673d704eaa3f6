"""Fixtures of what the phone system adds (issue 24), rendered from the scripts in bench/fixtures/phone/.

    .venv/bin/python bench/phone_calls.py --out /work/corpora/phone-fixtures
    .venv/bin/python bench/phone_calls.py --out /tmp/phone --kinds prompt,outbound
    .venv/bin/python bench/speakers.py --fixtures /work/corpora/phone-fixtures --cache-dir /tmp/qa-tcache

One folder per kind, each laid out as ../shared/dev-calls (audio/, manifest.csv, labels.json, scripts/),
rendered by tools/tts_calls.py in the TTS venv (--tts-python; the voice of ../shared/tts) — the same
scripts give the same bytes. New industries and companies, none of the dev corpora's:

  outbound  8 outbound calls, the customer answering first (喂 / 喂，你好？/ 喂，哪位？); mono 8 kHz AMR-NB,
            GSM 06.10 WAV and PCM, 16 kHz MP3 and Opus, one stereo A-law
  echo      6 stereo calls with the agent's voice leaking into the customer's channel, -20 to -30 dB,
            20 to 80 ms late (µ-law, A-law, FLAC; the agent on either channel, one with no manifest channel)
  prompt    9 calls (stereo and mono, every format) opening with a recorded announcement on the agent's
            side, three announcements each shared by several calls ("您好，欢迎致电乐看视频…您的通话可能会被
            录音" / "欢迎致电阳光新能源，本次通话将被录音…请稍候" / "零八六号话务员为您服务"), in a voice
            unlike the agents'; in four of them the agent's own opening has no 您好 (greeting fails)
  babble    6 mono calls under babble at 10-15 dB (GSM, AMR, PCM 8 kHz, MP3; one outbound)
  music     3 calls with music on hold (stereo µ-law, mono AMR, mono GSM): a regression fixture

The echo kind can also be made from the stereo dev calls themselves: bench/noisy_calls.py --stereo --echoes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "bench" / "fixtures" / "phone"
KINDS = ("outbound", "echo", "prompt", "babble", "music")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--tts-python", default="/work/tts-venv/bin/python", help="the TTS venv's python")
    parser.add_argument("--tts-dir", type=Path, default=ROOT.parent / "shared" / "tts")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kind(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    for kind in kinds:
        scripts = sorted((SCRIPTS / kind).glob("*.json"))
        command = [args.tts_python, str(ROOT / "tools" / "tts_calls.py"), *map(str, scripts),
                   "--out", str(args.out / kind), "--tts-dir", str(args.tts_dir)]
        print(f"{kind}: {len(scripts)} scripts → {args.out / kind}", file=sys.stderr, flush=True)
        if subprocess.run(command).returncode:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
