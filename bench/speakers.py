"""Role attribution on the labelled dev calls: how much reference speech lands on the right role.

    QA_CACHE_DIR=/tmp/qacache python bench/speakers.py --dev-calls ../shared/dev-calls --cache-dir /tmp/qa-tcache

Three kinds of recording are measured separately:
  stereo   the stereo calls as the pipeline reads them (one speaker per channel, agent channel from
           the manifest or from the opening's cues), through speakers.build_transcript;
  mono     the real mono calls, through mono diarization;
  mixdown  the stereo calls averaged down to one channel (ground truth for free), same as mono.

The mono path is the pipeline's: Whisper segments with word timestamps (from the transcript cache,
transcribed here on a miss: the mixdowns have their own entries), Silero speech regions with the
transcriber's VAD settings, windows over them embedded, two clusters, each word to its cluster,
segments cut where the cluster changes, the agent cluster picked by its cues; then the pieces go
through build_transcript (pause splits, hallucination guards) with the cluster as the channel.
Each embedder is measured with the same regions and clustering:
  campplus   CAM++ zh/en (ONNX, qa_pipeline.speakers.diarize.SpeakerEmbedder)
  mfcc       mean and standard deviation of 20 MFCCs + deltas per window, z-scored over the call

Reference speech is the labelled turns (10 ms frames). A frame is *attributed* when an utterance of
our transcript covers it, *right* when only utterances of its reference role cover it. Printed per
call and per kind: right/attributed (the share of attributed speech on the right role — the
figure the issue's 98% / 90% targets are about), coverage (attributed/reference) and
right/reference (uncovered speech counted as wrong).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa_pipeline.batch.store import TranscriptCache, cache_key  # noqa: E402
from qa_pipeline.files import file_digest  # noqa: E402
from qa_pipeline.audio.decode import decode  # noqa: E402
from qa_pipeline.speakers.diarize import (  # noqa: E402
    SpeakerEmbedder, agent_cluster, diarize, speech_regions, split_by_speaker,
)
from qa_pipeline.audio.discover import discover  # noqa: E402
from qa_pipeline.speakers.fbank import fbank  # noqa: E402
from qa_pipeline.records import AGENT, CUSTOMER, CachedAudio, CallMeta, RawSegment  # noqa: E402
from qa_pipeline.speakers.roles import build_transcript  # noqa: E402
from qa_pipeline.asr.transcribe import TranscribeOptions, Transcriber  # noqa: E402

FRAME = 0.01


@dataclass(frozen=True)
class Score:
    reference: int = 0  # frames
    attributed: int = 0
    right: int = 0

    def __add__(self, other: "Score") -> "Score":
        return Score(self.reference + other.reference, self.attributed + other.attributed, self.right + other.right)

    def line(self) -> str:
        acc = self.right / self.attributed if self.attributed else float("nan")
        cov = self.attributed / self.reference if self.reference else float("nan")
        strict = self.right / self.reference if self.reference else float("nan")
        return f"right/attributed {acc:7.2%}  coverage {cov:7.2%}  right/reference {strict:7.2%}  ({self.reference * FRAME:6.1f} s ref)"


def score(reference: list[dict], hypothesis: list[tuple[float, float, str]], duration: float) -> Score:
    n = int(np.ceil(duration / FRAME)) + 1
    cover = {AGENT: np.zeros(n, bool), CUSTOMER: np.zeros(n, bool)}
    for start, end, role in hypothesis:
        if role in cover:
            cover[role][int(round(start / FRAME)):int(round(end / FRAME))] = True
    total = Score()
    for turn in reference:
        sl = slice(int(round(turn["start"] / FRAME)), int(round(turn["end"] / FRAME)))
        mine, other = cover[turn["speaker"]][sl], cover[CUSTOMER if turn["speaker"] == AGENT else AGENT][sl]
        total += Score(len(mine), int(np.sum(mine | other)), int(np.sum(mine & ~other)))
    return total


def with_noise(samples: np.ndarray, snr_db: float, regions) -> np.ndarray:
    """White noise at `snr_db` below the speech power (deterministic)."""
    speech = np.concatenate([samples[int(s * 16000):int(e * 16000)] for s, e in regions]) if regions else samples
    power = float(np.mean(speech.astype(np.float64) ** 2))
    noise = np.random.default_rng(len(samples)).normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), len(samples))
    return (samples + noise).astype(np.float32)


class MfccStatsEmbedder:
    """The simpler alternative: MFCC (+delta) means and deviations per window, z-scored per call."""

    def __init__(self, n_ceps: int = 20) -> None:
        k = np.arange(80)
        self._dct = np.cos(np.pi / 80 * (k[None, :] + 0.5) * np.arange(n_ceps)[:, None])  # DCT-II rows

    def embed_windows(self, samples: np.ndarray, windows) -> np.ndarray:
        ceps = fbank(samples) @ self._dct.T
        delta = np.gradient(ceps, axis=0)
        feats = np.concatenate([ceps, delta], axis=1)
        out = []
        for start, end in windows:
            a = min(int(round(start / FRAME)), len(feats) - 1)
            b = max(a + 1, min(int(round(end / FRAME)), len(feats)))
            chunk = feats[a:b]
            out.append(np.concatenate([chunk.mean(axis=0), chunk.std(axis=0)]))
        x = np.array(out)
        return (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-8)


class Segments:
    """Whisper segments per (audio, variant), from the pipeline's transcript cache or transcribed here."""

    def __init__(self, cache_dir: Path, model: str) -> None:
        self.cache = TranscriptCache(cache_dir)
        self.model = model
        self.options = TranscribeOptions()
        self._transcriber: Transcriber | None = None

    def get(self, path: Path, channels: tuple[np.ndarray, ...], duration: float, variant: str = "") -> tuple[RawSegment, ...]:
        digest = file_digest(path) + (f":{variant}" if variant else "")
        key = cache_key(digest, self.model, {**self.options.cache_key(), "compute_type": None})
        entry = self.cache.get(key)
        if entry is None:
            if self._transcriber is None:
                self._transcriber = Transcriber(self.model, options=self.options)
            print(f"  transcribing {path.name} {variant or ''} (cache miss)", file=sys.stderr)
            entry = CachedAudio(duration, len(channels), tuple(self._transcriber.transcribe(channels)), ())
            self.cache.put(key, entry)
        return entry.segments


def confusion(reference: list[dict], turns, duration: float) -> tuple[int, int]:
    """(wrong, covered) reference frames of the raw diarization, clusters mapped to roles the best way."""
    n = int(np.ceil(duration / FRAME)) + 1
    hyp = np.full(n, -1)
    for start, end, cluster in turns:
        hyp[int(round(start / FRAME)):int(round(end / FRAME))] = cluster
    counts = np.zeros((2, 2), dtype=int)  # [role, cluster]
    for turn in reference:
        frames = hyp[int(round(turn["start"] / FRAME)):int(round(turn["end"] / FRAME))]
        role = 0 if turn["speaker"] == AGENT else 1
        for cluster in (0, 1):
            counts[role, cluster] += int(np.sum(frames == cluster))
    covered = int(counts.sum())
    return covered - max(counts[0, 0] + counts[1, 1], counts[0, 1] + counts[1, 0]), covered


def mono_hypothesis(meta: CallMeta, samples: np.ndarray, segments, regions, embedder, duration: float, turns=None):
    turns = turns if turns is not None else diarize(samples, 16000, regions, embedder=embedder)
    pieces = split_by_speaker(segments, turns)
    agent = agent_cluster(pieces)
    # The cluster stands in for the channel, so that pause splits and guards run as on stereo.
    as_channels = [replace(p.segment, channel=p.cluster) for p in pieces]
    transcript = build_transcript(replace(meta, agent_channel=agent), as_channels, duration_s=duration, n_channels=2, model="bench")
    return [(u.start, u.end, u.speaker) for u in transcript.utterances]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev-calls", type=Path, default=Path("../shared/dev-calls"))
    parser.add_argument("--cache-dir", type=Path, default=None, help="transcript cache (default: the pipeline's)")
    parser.add_argument("--model", default="base")
    parser.add_argument("--speaker-model", type=Path, default=None, help="CAM++ ONNX (default: the model cache)")
    parser.add_argument("--embedders", default="campplus,mfcc")
    parser.add_argument("--calls", default="", help="comma-separated call ids (default: all)")
    parser.add_argument("--noise-snr", type=float, action="append", default=[],
                        help="also measure raw diarization confusion with white noise at this SNR (dB) added to the "
                             "mono audio (no Whisper involved; repeatable)")
    args = parser.parse_args()

    from qa_pipeline.models import cache_root

    labels = json.loads((args.dev_calls / "labels.json").read_text(encoding="utf-8"))
    calls = discover(args.dev_calls / "audio", manifest=args.dev_calls / "manifest.csv")
    if args.calls:
        wanted = set(args.calls.split(","))
        calls = [c for c in calls if c.call_id in wanted]
    segments_of = Segments(args.cache_dir or cache_root() / "transcripts", args.model)
    names = [n for n in args.embedders.split(",") if n]
    embedders = {}
    for name in names:
        embedders[name] = SpeakerEmbedder(args.speaker_model) if name == "campplus" else MfccStatsEmbedder()

    totals: dict[tuple[str, str], Score] = {}
    confusions: dict[tuple[str, str], np.ndarray] = {}
    timing: dict[str, float] = {n: 0.0 for n in names}
    mono_audio_s = 0.0
    for meta in calls:
        label = labels[meta.call_id]
        audio = decode(meta.path)
        duration = audio.duration_s
        ref = label["turns"]
        rows: list[tuple[str, str, Score]] = []
        if audio.n_channels == 2:
            segments = segments_of.get(meta.path, audio.channels, duration)
            transcript = build_transcript(meta, segments, duration_s=duration, n_channels=2, model="bench")
            rows.append(("stereo", "channels", score(ref, [(u.start, u.end, u.speaker) for u in transcript.utterances], duration)))
            mono = (0.5 * (audio.channels[0] + audio.channels[1])).astype(np.float32)
            kind, segments = "mixdown", segments_of.get(meta.path, (mono,), duration, variant="mixdown")
        else:
            mono = audio.channels[0]
            kind, segments = "mono", segments_of.get(meta.path, audio.channels, duration)
        regions = speech_regions(mono)
        mono_audio_s += duration
        mono_meta = replace(meta, agent_channel=None)
        for name, embedder in embedders.items():
            started = time.perf_counter()
            turns = diarize(mono, 16000, regions, embedder=embedder)
            hyp = mono_hypothesis(mono_meta, mono, segments, regions, embedder, duration, turns)
            timing[name] += time.perf_counter() - started
            rows.append((kind, name, score(ref, hyp, duration)))
            conf = confusion(ref, turns, duration)
            for snr in args.noise_snr:
                noisy = with_noise(mono, snr, regions)
                conf_noisy = confusion(ref, diarize(noisy, 16000, speech_regions(noisy), embedder=embedder), duration)
                confusions[(f"{kind}@{snr:g}dB", name)] = np.add(confusions.get((f"{kind}@{snr:g}dB", name), (0, 0)), conf_noisy)
            confusions[(kind, name)] = np.add(confusions.get((kind, name), (0, 0)), conf)
            print(f"{meta.call_id} {kind:<8} {name:<9} raw diarization confusion {conf[0] / max(conf[1], 1):6.2%}")
        for kind_, name, s in rows:
            totals[(kind_, name)] = totals.get((kind_, name), Score()) + s
            print(f"{meta.call_id} {label['format']['name']:<20} {kind_:<8} {name:<9} {s.line()}")

    print("\n== totals ==")
    for (kind, name), s in sorted(totals.items()):
        print(f"{kind:<8} {name:<9} {s.line()}")
    def share(kind: str, name: str) -> float:
        s = totals.get((kind, name), Score())
        return s.right / s.attributed if s.attributed else float("nan")

    targets = [("stereo", "channels", 0.98)] + [(k, n, 0.90) for k in ("mono", "mixdown") for n in names]
    for kind, name, target in targets:
        if (kind, name) in totals:
            got = share(kind, name)
            print(f"target {kind:<8} {name:<9} right/attributed {got:7.2%} >= {target:.0%}: {'met' if got >= target else 'NOT met'}")

    print("\n== raw diarization confusion (reference speech frames under the wrong cluster, best mapping) ==")
    for (kind, name), (wrong, covered) in sorted(confusions.items()):
        print(f"{kind:<14} {name:<9} {wrong / max(covered, 1):6.2%}  ({covered * FRAME:6.1f} s ref covered)")
    for name in names:
        print(f"{name}: diarization + assignment {timing[name]:.1f} s for {mono_audio_s:.0f} s of mono audio "
              f"({mono_audio_s / max(timing[name], 1e-9):.0f}x real time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
