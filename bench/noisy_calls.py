"""Harder fixtures: the stereo dev calls with noise on the customer's side, mixed to mono 8 kHz
(or, with --stereo, kept as two channels).

    .venv/bin/python bench/noisy_calls.py --out /tmp/qa-noisy
    .venv/bin/python bench/noisy_calls.py --out /tmp/qa-noisy --noises babble --snrs 10 --calls dev_01,dv2_07
    .venv/bin/python bench/noisy_calls.py --out /tmp/qa-noisy-stereo --stereo --snrs 10,5 --no-clean

For every stereo call of the source corpora (default ../shared/dev-calls and ../shared/dev-calls-2)
and every condition (noise kind × SNR, plus `clean`: the same mix with no noise added), writes

    OUT/<kind>-<snr>dB/audio/<call_id>.wav    mono 8 kHz 16-bit PCM, 300-3400 Hz (telephone band);
                                              --stereo: two channels, agent and customer where the source has them
    OUT/<kind>-<snr>dB/manifest.csv           the source rows, path rewritten, agent_channel blank (--stereo: kept)
    OUT/<kind>-<snr>dB/labels.json            the source labels (turns, items, events: times unchanged),
                                              format rewritten, the added noise as a customer_noise event

so that every bench script that takes --dev-calls runs on a condition folder as it is.

Noise goes on the customer channel only, from the start of the call until the customer hangs up (the
busy tone's start; the whole call when the agent hangs up first), as in dev-calls-2. SNR is relative
to the customer's speech (mean power over the customer's reference turns on the customer channel), on
the 16 kHz signal before the telephone filter, also as in dev-calls-2. Kinds:

  white   Gaussian noise
  pink    1/f power spectrum (shaped in the frequency domain)
  babble  four other voices talking at once: the reference turns of other dev calls (same TTS family,
          other speakers), each voice's turns strung together, looped, started at a random offset

The two channels are then summed (scaled down only if the sum would clip; --stereo: kept apart, both
scaled by one factor if either would clip, the noise on the customer's channel only), band-passed to 300-3400 Hz
in the frequency domain and decimated to 8 kHz. Everything is seeded from (call, kind, SNR): the same
command writes the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import wave
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from qa_pipeline.audio.decode import decode  # noqa: E402

RATE = 16000
OUT_RATE = 8000
BAND = (300.0, 3400.0)
BABBLE_VOICES = 4
KINDS = ("babble", "pink", "white")


@dataclass(frozen=True)
class Source:
    corpus: Path
    call_id: str
    label: dict
    row: dict  # manifest row

    @property
    def path(self) -> Path:
        return self.corpus / self.row["path"]

    @property
    def stereo(self) -> bool:
        return int(self.label["format"].get("channels", 1)) == 2


def read_sources(corpus: Path) -> list[Source]:
    labels = json.loads((corpus / "labels.json").read_text(encoding="utf-8"))
    with open(corpus / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [Source(corpus, row["call_id"], labels[row["call_id"]], row) for row in rows]


def seed_of(*parts: object) -> int:
    return zlib.crc32("/".join(str(p) for p in parts).encode())


def voice_stream(source: Source, channels: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """One speaker's turns strung together, per speaker of the call (the turn spans only)."""
    out = []
    for speaker in ("agent", "customer"):
        if source.stereo:
            agent_channel = int(source.label["format"].get("agent_channel") or 0)
            samples = channels[agent_channel if speaker == "agent" else 1 - agent_channel]
        else:
            samples = channels[0]
        pieces = [samples[int(t["start"] * RATE):int(t["end"] * RATE)] for t in source.label["turns"] if t["speaker"] == speaker]
        pieces = [p for p in pieces if len(p)]
        if pieces:
            stream = np.concatenate(pieces).astype(np.float64)
            out.append(stream / (np.sqrt(np.mean(stream**2)) + 1e-12))
    return out


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0.0, 1.0, n)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.normal(0.0, 1.0, n))
    freqs = np.fft.rfftfreq(n, 1.0 / RATE)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, n)


def babble(n: int, rng: np.random.Generator, voices: list[np.ndarray]) -> np.ndarray:
    chosen = rng.choice(len(voices), size=min(BABBLE_VOICES, len(voices)), replace=False)
    out = np.zeros(n)
    for index in chosen:
        voice = voices[int(index)]
        reps = -(-(n + len(voice)) // len(voice))
        looped = np.tile(voice, reps)
        offset = int(rng.integers(len(voice)))
        out += looped[offset:offset + n]
    return out


def telephone(samples: np.ndarray) -> np.ndarray:
    """300-3400 Hz band (short cosine edges), decimated 16 → 8 kHz."""
    n = len(samples)
    spectrum = np.fft.rfft(samples)
    freqs = np.fft.rfftfreq(n, 1.0 / RATE)
    low, high = BAND
    gain = np.clip((freqs - (low - 50)) / 100, 0, 1) * np.clip(((high + 150) - freqs) / 300, 0, 1)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    band = np.fft.irfft(spectrum * gain, n)
    return band[::RATE // OUT_RATE]


def write_wav(path: Path, samples: np.ndarray) -> None:
    """16-bit PCM at 8 kHz; `samples` is (n,) for mono or (n, channels), interleaved as written."""
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(OUT_RATE)
        w.writeframes(pcm.tobytes())
    tmp.replace(path)


def noisy_mono(source: Source, channels: tuple[np.ndarray, ...], kind: str | None, snr_db: float | None,
               voices: list[np.ndarray], stereo: bool = False) -> tuple[np.ndarray, dict | None]:
    """The call mixed to mono 8 kHz with `kind` noise at `snr_db` on the customer's side, and the
    customer_noise event that describes it (None for `clean`). With `stereo`, the channels are kept
    in the source's order: an (n, 2) array."""
    agent_channel = int(source.label["format"].get("agent_channel") or 0)
    agent = channels[agent_channel].astype(np.float64)
    customer = channels[1 - agent_channel].astype(np.float64)
    n = len(customer)
    event = None
    if kind is not None:
        rng = np.random.default_rng(seed_of(source.call_id, kind, snr_db))
        busy = [e["start"] for e in source.label.get("events", []) if e["type"] == "busy_tone"]
        end = min(n, int(round(min(busy) * RATE))) if busy else n
        noise = {"white": white, "pink": pink}[kind](end, rng) if kind != "babble" else babble(end, rng, voices)
        speech = np.concatenate([customer[int(t["start"] * RATE):int(t["end"] * RATE)]
                                 for t in source.label["turns"] if t["speaker"] == "customer"])
        speech_power = float(np.mean(speech**2))
        noise *= np.sqrt(speech_power / 10 ** (snr_db / 10) / float(np.mean(noise**2)))
        customer = customer.copy()
        customer[:end] += noise
        event = {"type": "customer_noise", "kind": kind, "snr_db": float(snr_db),
                 "rms_dbfs": round(10 * np.log10(float(np.mean(noise**2)) + 1e-20), 1),
                 "start": 0.0, "end": round(end / RATE, 2), "channel": (1 - agent_channel) if stereo else None,
                 "added_by": "bench/noisy_calls.py"}
    if stereo:
        pair = [agent, customer] if agent_channel == 0 else [customer, agent]
        peak = max(float(np.max(np.abs(c))) for c in pair)
        scale = 0.98 / peak if peak > 0.98 else 1.0
        return np.stack([telephone(c * scale) for c in pair], axis=1), event
    mono = agent + customer
    peak = float(np.max(np.abs(mono)))
    if peak > 0.98:
        mono *= 0.98 / peak
    return telephone(mono), event


def condition_name(kind: str | None, snr_db: float | None) -> str:
    return "clean" if kind is None else f"{kind}-{snr_db:g}dB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sources", type=Path, nargs="+",
                        default=[ROOT.parent / "shared" / "dev-calls", ROOT.parent / "shared" / "dev-calls-2"])
    parser.add_argument("--noises", default=",".join(KINDS))
    parser.add_argument("--snrs", default="15,10,5")
    parser.add_argument("--no-clean", action="store_true", help="leave out the `clean` condition")
    parser.add_argument("--calls", default="", help="comma-separated call ids (default: every stereo call)")
    parser.add_argument("--stereo", action="store_true", help="keep the two channels apart (default: mix to mono)")
    args = parser.parse_args(argv)

    sources = [s for corpus in args.sources for s in read_sources(corpus)]
    kinds = [k for k in args.noises.split(",") if k]
    bad = sorted(set(kinds) - set(KINDS))
    if bad:
        parser.error(f"unknown noise kind(s) {', '.join(bad)}; choose from {', '.join(KINDS)}")
    conditions = ([] if args.no_clean else [(None, None)]) + [(k, float(s)) for k in kinds for s in args.snrs.split(",") if s]
    wanted = {c for c in args.calls.split(",") if c}
    targets = [s for s in sources if s.stereo and (not wanted or s.call_id in wanted)]
    decoded = {s.call_id: decode(s.path).channels for s in sources}
    voices_of = {s.call_id: voice_stream(s, decoded[s.call_id]) for s in sources}

    for kind, snr in conditions:
        folder = args.out / condition_name(kind, snr)
        labels: dict[str, dict] = {}
        rows: list[dict] = []
        for source in targets:
            others = [v for call_id, vs in voices_of.items() if call_id != source.call_id for v in vs]
            mixed, event = noisy_mono(source, decoded[source.call_id], kind, snr, others, stereo=args.stereo)
            write_wav(folder / "audio" / f"{source.call_id}.wav", mixed)
            label = dict(source.label)
            label["format"] = {"name": "stereo_8k_wav" if args.stereo else "mono_8k_wav", "container": "wav",
                               "codec": "pcm_s16le", "sample_rate": OUT_RATE, "channels": 2 if args.stereo else 1,
                               "bandwidth": f"{BAND[0]:g}-{BAND[1]:g} Hz",
                               "source": f"{source.corpus.name}/{source.row['path']}", "source_format": source.label["format"]["name"]}
            if args.stereo:
                label["format"]["agent_channel"] = int(source.label["format"].get("agent_channel") or 0)
            label["events"] = list(source.label.get("events", [])) + ([event] if event else [])
            labels[source.call_id] = label
            rows.append({**source.row, "path": f"audio/{source.call_id}.wav",
                         "agent_channel": source.row.get("agent_channel", "") if args.stereo else ""})
            print(f"{folder.name}/{source.call_id}: {len(mixed) / OUT_RATE:.1f} s", file=sys.stderr)
        (folder / "labels.json").write_text(json.dumps(labels, ensure_ascii=False, indent=1), encoding="utf-8")
        with open(folder / "manifest.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print(f"{len(conditions)} conditions x {len(targets)} calls under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
