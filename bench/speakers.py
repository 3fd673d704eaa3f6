"""Who said what: role attribution, turn ends and hallucination guards on labelled call folders.

    .venv/bin/python bench/speakers.py --dev-calls ../shared/dev-calls --dev-calls ../shared/dev-calls-2 --cache-dir /tmp/qa-tcache
    .venv/bin/python bench/noisy_calls.py --out /tmp/qa-noisy            # the noisy mono fixtures, then
    .venv/bin/python bench/speakers.py --fixtures /tmp/qa-noisy --cache-dir /tmp/qa-tcache
    .venv/bin/python bench/speakers.py --dev-calls ../shared/dev-calls --mixdown --embedders campplus,mfcc
    .venv/bin/python bench/speakers.py --dev-calls ../shared/dev-calls --prunings fixed --channel-features level --resegment none,viterbi

Every folder is laid out as ../shared/dev-calls (audio/, manifest.csv, labels.json); --fixtures ROOT
takes every sub-folder of ROOT that has a labels.json (one per noise condition). Kinds of recording:
  stereo   stereo calls as the pipeline reads them (one speaker per channel, agent channel from the
           manifest or the opening's cues, channel bleed from the loudness envelopes); system
           `channels` as the manifest says, `content` with the manifest's agent_channel left out (the
           agent's channel chosen by what is said: cues.choose_agent);
  mono     mono calls, through mono diarization;
  mixdown  (--mixdown) stereo calls averaged down to one channel, same as mono.

The mono path is the pipeline's: Whisper segments (from the transcript cache, transcribed here on a
miss; mixdowns have their own entries), Silero speech regions (diarize.speech_regions), windows
embedded, two clusters, then speakers.build_transcript with the speaker turns (each word to its
cluster, cuts at changes, agent cluster by its cues, pause splits, guards). Systems compared:
campplus/<regions>/<pruning> for each --regions (words = the VAD regions where Whisper heard words,
the pipeline's default; vad = all VAD regions) and each --prunings (fixed = the 3D-Speaker p-pruning,
auto = the per-call NME-tuned pruning of diarize.DiarizeOptions) and each --resegment (none = the
clustering's window labels; viterbi = decided again by diarize.resegment, the system's name then
ending in its settings, e.g. :viterbi:4~0.5sx2), and mfcc/<regions> (MFCC statistics).

Reference speech is the labelled turns (10 ms frames). Per call and per folder × kind × system:
  role        right/attributed: of the reference speech our utterances cover, the share covered only by
              utterances of the reference speaker (the issue's "role accuracy"); coverage = attributed/
              reference;
  ends        agent turns whose last second lies mostly on customer utterances / agent turns;
  repeats     phrases (normalised utterance text) kept 3+ times in a call where fewer than 3
              reference turns contain them;
  guard-lost  reference turns that kept utterances cover < 50 % in time but kept + dropped cover >= 50 %
              (lost to the hallucination guards);
  confusion   raw diarization: reference frames under the wrong cluster, clusters mapped to roles the
              best way;
  GSM/AMR 8k  a totals row over every folder: the mono calls whose labels' format is GSM 06.10 or AMR-NB;
  prompt      recorded announcements (labels' `prompt` events): seconds of them our utterances give the
              agent / the customer, of all prompt seconds (the agent must get none).

The totals end with one line per folder × kind against the issue-24 bar: ≥ 97 % of the speech on the
right role for mono, ≥ 99 % for stereo (the first system of each kind: the pipeline's defaults
when --regions words --prunings fixed --channel-features level).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa_pipeline.asr.transcribe import TranscribeOptions, Transcriber  # noqa: E402
from qa_pipeline.audio.decode import decode  # noqa: E402
from qa_pipeline.audio.discover import discover  # noqa: E402
from qa_pipeline.batch.store import TranscriptCache, cache_key  # noqa: E402
from qa_pipeline.files import file_digest  # noqa: E402
from qa_pipeline.records import AGENT, CUSTOMER, CachedAudio, RawSegment  # noqa: E402
from qa_pipeline.scoring.normalize import normalize_text  # noqa: E402
from qa_pipeline.speakers.diarize import (  # noqa: E402
    DiarizeOptions, Embedded, SpeakerEmbedder, call_regions, cluster_turns, embed_regions, resegment_id, window_levels,
)
from qa_pipeline.speakers.fbank import fbank  # noqa: E402
from qa_pipeline.speakers.roles import build_transcript, channel_levels  # noqa: E402

FRAME = 0.01
BARS = {"stereo": 0.99, "mono": 0.97, "mixdown": 0.97}
GSM_AMR = "GSM/AMR 8k"  # a totals row of the mono calls in GSM 06.10 or AMR-NB (labels' format), every folder


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
        self._stage = None

    def of_call(self, meta) -> tuple[RawSegment, ...]:
        """The call's segments as the pipeline has them (TranscribeStage.entry: cached, or
        transcribed now; looped stretches decoded again)."""
        if self._stage is None:
            from qa_pipeline.batch.config import TranscribeConfig
            from qa_pipeline.batch.stages import TranscribeStage

            class Undiarized(TranscribeStage):
                def embedder(self):  # this bench diarizes itself: the cache's speaker turns are not needed
                    return None

            self._stage = Undiarized(TranscribeConfig(model=self.model, device="cpu", options=self.options), self.cache)
        return self._stage.entry(meta)[0].segments

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


def turn_ends(reference: list[dict], hypothesis: list[tuple[float, float, str]], duration: float,
              tail_s: float = 1.0) -> tuple[int, int]:
    """(agent turns whose last `tail_s` seconds lie mostly on customer utterances, agent turns)."""
    n = int(np.ceil(duration / FRAME)) + 1
    cover = {AGENT: np.zeros(n, bool), CUSTOMER: np.zeros(n, bool)}
    for start, end, role in hypothesis:
        if role in cover:
            cover[role][int(round(start / FRAME)):int(round(end / FRAME))] = True
    lost = total = 0
    for turn in reference:
        if turn["speaker"] != AGENT:
            continue
        sl = slice(int(round(max(turn["start"], turn["end"] - tail_s) / FRAME)), int(round(turn["end"] / FRAME)))
        agent, customer = cover[AGENT][sl], cover[CUSTOMER][sl]
        total += 1
        lost += int(np.sum(customer & ~agent) > np.sum(agent))
    return lost, total


def kept_repeats(reference: list[dict], transcript) -> list[tuple[str, int]]:
    """(phrase, times kept) for each normalised utterance text kept 3+ times in the call while
    fewer than 3 reference turns contain it."""
    refs = [normalize_text(t["text"]) for t in reference]
    counts = Counter(normalize_text(u.text) for u in transcript.utterances)
    return [(phrase, n) for phrase, n in counts.items()
            if phrase and n >= 3 and sum(phrase in r for r in refs) < 3]


def lost_to_guards(reference: list[dict], transcript) -> list[dict]:
    """Reference turns that kept utterances cover < 50 % in time and kept + dropped ones >= 50 %."""
    def covered(turn, utterances) -> float:
        n = max(1, int(round((turn["end"] - turn["start"]) / FRAME)))
        mask = np.zeros(n, bool)
        for u in utterances:
            a = int(round((max(u.start, turn["start"]) - turn["start"]) / FRAME))
            b = int(round((min(u.end, turn["end"]) - turn["start"]) / FRAME))
            if b > a:
                mask[a:b] = True
        return float(mask.mean())

    return [t for t in reference
            if covered(t, transcript.utterances) < 0.5 <= covered(t, transcript.utterances + transcript.dropped)]


@dataclass
class Tally:
    score: Score = Score()
    ends_lost: int = 0
    ends: int = 0
    repeats: int = 0
    guard_lost: int = 0
    wrong: int = 0  # raw diarization confusion, frames
    covered: int = 0
    calls: int = 0
    prompt_agent: int = 0  # frames of recorded announcements under agent utterances
    prompt_customer: int = 0
    prompt: int = 0

    def add(self, other: "Tally") -> None:
        for name in ("ends_lost", "ends", "repeats", "guard_lost", "wrong", "covered", "calls",
                     "prompt_agent", "prompt_customer", "prompt"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.score = self.score + other.score

    def line(self) -> str:
        s = self.score
        role = s.right / s.attributed if s.attributed else float("nan")
        cov = s.attributed / s.reference if s.reference else float("nan")
        conf = f"  confusion {self.wrong / self.covered:6.2%}" if self.covered else ""
        prompt = (f"  prompt → agent {self.prompt_agent * FRAME:.1f} s, → customer {self.prompt_customer * FRAME:.1f} s "
                  f"of {self.prompt * FRAME:.1f} s" if self.prompt else "")
        return (f"role {role:7.2%}  coverage {cov:6.1%}  ends on customer {self.ends_lost:2d}/{self.ends:<3d}  "
                f"repeats kept {self.repeats}  guard-lost {self.guard_lost}{conf}{prompt}  "
                f"({s.reference * FRAME:6.1f} s ref, {self.calls} calls)")

    @property
    def role(self) -> float:
        return self.score.right / self.score.attributed if self.score.attributed else float("nan")


def prompt_cover(events: list[dict], hypothesis: list[tuple[float, float, str]], duration: float) -> tuple[int, int, int]:
    """(frames of the labelled prompts under agent utterances, under customer utterances, prompt frames)."""
    n = int(np.ceil(duration / FRAME)) + 1
    cover = {AGENT: np.zeros(n, bool), CUSTOMER: np.zeros(n, bool)}
    for start, end, role in hypothesis:
        if role in cover:
            cover[role][int(round(start / FRAME)):int(round(end / FRAME))] = True
    agent = customer = total = 0
    for event in events:
        if event.get("type") == "prompt":
            sl = slice(int(round(event["start"] / FRAME)), int(round(event["end"] / FRAME)))
            agent += int(np.sum(cover[AGENT][sl]))
            customer += int(np.sum(cover[CUSTOMER][sl]))
            total += len(cover[AGENT][sl])
    return agent, customer, total


def measure(reference: list[dict], transcript, duration: float, turns=None,
            events: list[dict] = ()) -> tuple[Tally, list[tuple[str, int]], list[dict]]:
    hyp = [(u.start, u.end, u.speaker) for u in transcript.utterances]
    lost, total = turn_ends(reference, hyp, duration)
    repeats = kept_repeats(reference, transcript)
    guard = lost_to_guards(reference, transcript)
    wrong, covered = confusion(reference, turns, duration) if turns is not None else (0, 0)
    p_agent, p_customer, p_total = prompt_cover(list(events), hyp, duration)
    return (Tally(score(reference, hyp, duration), lost, total, len(repeats), len(guard), wrong, covered, 1,
                  p_agent, p_customer, p_total), repeats, guard)


def embedded_cached(cache: Path | None, name: str, samples: np.ndarray, regions, embedder) -> Embedded:
    """embed_regions, kept in `cache` (one .npz per embedder × audio × regions) when one is given:
    what changes between runs of this bench is mostly what comes after the embeddings."""
    if cache is None:
        return embed_regions(samples, 16000, regions, embedder=embedder)
    digest = hashlib.sha1(samples.tobytes() + repr([(round(a, 3), round(b, 3)) for a, b in regions]).encode()).hexdigest()
    path = cache / f"{name}-{digest[:24]}.npz"
    if path.is_file():
        with np.load(path) as z:
            windows = [(float(a), float(b), int(r)) for a, b, r in z["windows"].tolist()]
            return Embedded([tuple(r) for r in z["regions"].tolist()], windows, z["embeddings"],
                            window_levels(samples, windows))
    embedded = embed_regions(samples, 16000, regions, embedder=embedder)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, regions=np.array(embedded.regions, dtype=np.float64).reshape(-1, 2),
             windows=np.array(embedded.windows, dtype=np.float64).reshape(-1, 3), embeddings=embedded.embeddings)
    return embedded


def resegment_fields(spec: str) -> dict:
    """--resegment's MODE[:passes=N][:gap=SECONDS] as DiarizeOptions fields."""
    mode, *extras = spec.split(":")
    fields: dict = {"resegment": mode}
    for extra in extras:
        key, _, value = extra.partition("=")
        if key == "passes":
            fields["resegment_passes"] = int(value)
        elif key == "gap":
            fields["pause_decay_s"] = float(value)
        else:
            raise SystemExit(f"--resegment {spec}: unknown {key!r} (passes=N, gap=SECONDS)")
    return fields


def folders(args) -> list[Path]:
    out = list(args.dev_calls)
    for root in args.fixtures:
        out += sorted(p for p in root.iterdir() if (p / "labels.json").is_file())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev-calls", type=Path, action="append", default=[], help="a labelled folder (repeatable)")
    parser.add_argument("--fixtures", type=Path, action="append", default=[],
                        help="a folder of labelled folders, e.g. bench/noisy_calls.py's OUT (repeatable)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="transcript cache (default: the pipeline's)")
    parser.add_argument("--model", default="base")
    parser.add_argument("--speaker-model", type=Path, default=None, help="CAM++ ONNX (default: the model cache)")
    parser.add_argument("--embedders", default="campplus", help="campplus,mfcc")
    parser.add_argument("--prunings", default="fixed,auto", help="CAM++ clusterings to compare (DiarizeOptions.pruning)")
    parser.add_argument("--channel-features", default="level,none",
                        help="CAM++ re-clustering of calls whose voices are alike (DiarizeOptions.channel_features) to compare")
    parser.add_argument("--resegment", default="none",
                        help="CAM++ resegmentations of the window labels to compare (DiarizeOptions.resegment: none, "
                             "viterbi), viterbi with optional :passes=N :gap=SECONDS (resegment_passes, pause_decay_s), "
                             "e.g. none,viterbi,viterbi:passes=1")
    parser.add_argument("--set-aside", default="", help="comma-separated call ids: totals also printed without them")
    parser.add_argument("--regions", default="words,vad", help="what is embedded (DiarizeOptions.regions) to compare")
    parser.add_argument("--mixdown", action="store_true", help="also diarize stereo calls averaged down to mono")
    parser.add_argument("--calls", default="", help="comma-separated call ids (default: all)")
    parser.add_argument("--rubric", type=Path, default=None,
                        help="a rubric / centre file whose `centre: prompts` are the recorded announcements' texts")
    parser.add_argument("--embed-cache", type=Path, default=None,
                        help="keep each call's speaker embeddings here (.npz) and reuse them on the next run")
    args = parser.parse_args()
    if not args.dev_calls and not args.fixtures:
        args.dev_calls = [Path("../shared/dev-calls")]

    from qa_pipeline.models import cache_root
    from qa_pipeline.scoring.rubric import load_rubric

    prompts = load_rubric(args.rubric).centre.prompts if args.rubric else ()

    segments_of = Segments(args.cache_dir or cache_root() / "transcripts", args.model)
    embedders = {name: SpeakerEmbedder(args.speaker_model) if name == "campplus" else MfccStatsEmbedder()
                 for name in args.embedders.split(",") if name}
    systems = [(name, DiarizeOptions(pruning=p, channel_features=c, **r)) for name in embedders
               for p in (args.prunings.split(",") if name == "campplus" else ["fixed"])
               for c in (args.channel_features.split(",") if name == "campplus" else ["none"])
               for r in ([resegment_fields(spec) for spec in args.resegment.split(",") if spec] if name == "campplus" else [{}])]
    region_kinds = [r for r in args.regions.split(",") if r]
    wanted = set(filter(None, args.calls.split(",")))
    totals: dict[tuple[str, str, str], Tally] = {}
    apart: dict[tuple[str, str, str], Tally] = {}  # the same without the --set-aside calls
    set_aside = set(filter(None, args.set_aside.split(",")))
    timing: dict[str, float] = {}
    mono_audio_s = 0.0
    for folder in folders(args):
        labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
        for meta in discover(folder / "audio", manifest=folder / "manifest.csv"):
            if wanted and meta.call_id not in wanted:
                continue
            label = labels[meta.call_id]
            audio = decode(meta.path)
            duration = audio.duration_s
            ref = label["turns"]
            events = label.get("events", [])
            rows: list[tuple[str, str, Tally, list, list]] = []
            if audio.n_channels == 2:
                segments = segments_of.of_call(meta)
                transcript = build_transcript(meta, segments, duration_s=duration, n_channels=2, model="bench",
                                              levels=channel_levels(audio.channels, audio.sample_rate),
                                              centre_prompts=prompts)
                rows.append(("stereo", "channels", *measure(ref, transcript, duration, events=events)))
                if meta.agent_channel is not None:  # the agent's channel as the content decides it
                    transcript = build_transcript(replace(meta, agent_channel=None), segments, duration_s=duration,
                                                  n_channels=2, model="bench",
                                                  levels=channel_levels(audio.channels, audio.sample_rate),
                                                  centre_prompts=prompts)
                    rows.append(("stereo", "content", *measure(ref, transcript, duration, events=events)))
                if not args.mixdown:
                    mono = None
                else:
                    mono = (0.5 * (audio.channels[0] + audio.channels[1])).astype(np.float32)
                    kind, segments = "mixdown", segments_of.get(meta.path, (mono,), duration, variant="mixdown")
            else:
                mono = audio.channels[0]
                kind, segments = "mono", segments_of.of_call(meta)
            if mono is not None:
                mono_audio_s += duration
                mono_meta = replace(meta, agent_channel=None)
                for name, embedder in embedders.items():
                    for regions_kind in region_kinds:
                        started = time.perf_counter()
                        regions = call_regions(mono, segments, DiarizeOptions(regions=regions_kind))
                        embedded = embedded_cached(args.embed_cache, name, mono, regions, embedder)
                        timing[name] = timing.get(name, 0.0) + time.perf_counter() - started
                        for system, options in systems:
                            if system != name:
                                continue
                            options = replace(options, regions=regions_kind)
                            turns = cluster_turns(embedded, options)
                            transcript = build_transcript(mono_meta, segments, duration_s=duration, n_channels=1,
                                                          model="bench", speaker_turns=[tuple(t) for t in turns],
                                                          centre_prompts=prompts,
                                                          levels=channel_levels([mono], audio.sample_rate))
                            label_ = (f"{name}/{regions_kind}/{options.pruning}/{options.channel_features}{resegment_id(options)}" if name == "campplus"
                                      else f"{name}/{regions_kind}")
                            rows.append((kind, label_, *measure(ref, transcript, duration, turns, events)))
            narrowband = any(codec in label.get("format", {}).get("name", "") for codec in ("gsm", "amr"))
            for kind_, system, tally, repeats, guard in rows:
                totals.setdefault((folder.name, kind_, system), Tally()).add(tally)
                if narrowband and kind_ == "mono":  # the "8 kHz GSM/AMR mono", over every folder
                    totals.setdefault((GSM_AMR, kind_, system), Tally()).add(tally)
                if meta.call_id not in set_aside:
                    apart.setdefault((folder.name, kind_, system), Tally()).add(tally)
                print(f"{folder.name:<12} {meta.call_id:<7} {kind_:<7} {system:<26} {tally.line()}", flush=True)
                for phrase, n in repeats:
                    print(f"    repeat kept {n}x: {phrase}")
                for turn in guard:
                    print(f"    lost to guards: {turn['speaker']} {turn['start']:.2f}s {turn['text']}")

    print("\n== totals (folder, kind, system) ==")
    for (folder, kind, system), tally in sorted(totals.items()):
        print(f"{folder:<12} {kind:<7} {system:<26} {tally.line()}")
    if set_aside:
        print(f"\n== totals without {', '.join(sorted(set_aside))} (folder, kind, system) ==")
        for (folder, kind, system), tally in sorted(apart.items()):
            print(f"{folder:<12} {kind:<7} {system:<26} {tally.line()}")
    for name, seconds in timing.items():
        print(f"{name}: embedding {seconds:.1f} s for {mono_audio_s:.0f} s of mono audio")
    print("\n== against the bar (issue 24: mono >= 97 %, stereo >= 99 % of the speech on the right role) ==")
    first: dict[tuple[str, str], tuple[str, Tally]] = {}
    for (folder, kind, system), tally in totals.items():
        if (folder, kind) not in first and system != "content":
            first[(folder, kind)] = (system, tally)
    for (folder, kind), (system, tally) in sorted(first.items()):
        bar = BARS.get(kind, BARS["mono"])
        mark = "ok" if tally.role >= bar else "BELOW"
        prompt = f", prompt → agent {tally.prompt_agent * FRAME:.1f} s" if tally.prompt else ""
        print(f"{folder:<16} {kind:<7} {system:<26} {tally.role:7.2%} (bar {bar:.0%}) {mark}{prompt}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
