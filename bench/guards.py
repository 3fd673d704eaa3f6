"""Hallucination guards on labelled call folders: invented text kept, and real speech dropped.

    .venv/bin/python bench/guards.py --dev-calls ../shared/dev-calls --dev-calls ../shared/dev-calls-2
    .venv/bin/python bench/noisy_calls.py --out /tmp/qa-noisy-stereo --stereo --snrs 10,5 --no-clean
    .venv/bin/python bench/guards.py --fixtures /tmp/qa-noisy-stereo --cache-dir /tmp/qa-tcache

Every folder is laid out as ../shared/dev-calls (audio/, manifest.csv, labels.json); --fixtures ROOT
takes every sub-folder of ROOT that has a labels.json. Each call goes through the pipeline's own
transcribe stage (the transcript cache: Whisper segments, channel levels, mono speaker turns; made
here on a miss) and speakers.build_transcript, as `qa run` does. Per call and per folder:

  invented    characters of kept utterances said where the utterance's speaker has no reference turn
              (labels.json "turns", ± 0.5 s around each word; the whole utterance when it has no
              words): text nobody said there (noise, babble or a hold transcribed as words, bleed of
              the other side, a speaker's words given to the other role);
  of kept     all characters of kept utterances;
  dropped     characters the guards dropped, and of those the ones said where the speaker has a
              reference turn (`real`: may be real speech, or a hallucination over someone's speech);
  guard-lost  reference turns that kept utterances cover < 50 % in time but kept + dropped cover
              >= 50 % (lost to the guards: must be 0);
  by reason   invented / real characters dropped, per guard (the reason's first words).

--show lists each kept invented piece with its Whisper confidence; --without REASON builds the
transcripts as if the guards whose reason starts with REASON (repeatable) had kept everything, to
see what each guard takes away.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from speakers import folders, lost_to_guards  # noqa: E402

from qa_pipeline.asr.transcribe import TranscribeOptions  # noqa: E402
from qa_pipeline.audio.discover import discover  # noqa: E402
from qa_pipeline.batch.config import TranscribeConfig  # noqa: E402
from qa_pipeline.batch.stages import TranscribeStage  # noqa: E402
from qa_pipeline.batch.store import TranscriptCache  # noqa: E402
from qa_pipeline.records import UNKNOWN, CallTranscript, Utterance  # noqa: E402
from qa_pipeline.speakers.roles import build_transcript  # noqa: E402

SLACK_S = 0.5


def _chars(text: str) -> int:
    return sum(ch.isalnum() for ch in text)


def invented_chars(reference: list[dict], utterance: Utterance) -> int:
    """Characters of `utterance` said where its speaker has no reference turn (± SLACK_S)."""
    turns = [(t["start"] - SLACK_S, t["end"] + SLACK_S) for t in reference
             if utterance.speaker == UNKNOWN or t["speaker"] == utterance.speaker]
    spans = [(w.start, w.end, w.text) for w in utterance.words] or [(utterance.start, utterance.end, utterance.text)]
    return sum(_chars(text) for start, end, text in spans if not any(a < end and start < b for a, b in turns))


@dataclass
class Tally:
    invented: int = 0
    kept: int = 0
    dropped: int = 0
    dropped_real: int = 0
    guard_lost: int = 0
    calls: int = 0
    by_reason: Counter = field(default_factory=Counter)  # (reason, "invented"|"real") -> characters

    def add(self, other: "Tally") -> None:
        for name in ("invented", "kept", "dropped", "dropped_real", "guard_lost", "calls"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.by_reason.update(other.by_reason)

    def line(self) -> str:
        share = self.invented / self.kept if self.kept else 0.0
        return (f"invented kept {self.invented:5d} chars ({share:5.1%} of {self.kept:5d})  dropped {self.dropped:4d} "
                f"(real {self.dropped_real:3d})  guard-lost {self.guard_lost}  ({self.calls} calls)")


def reason_key(reason: str) -> str:
    return re.split(r"[(\d]", reason, maxsplit=1)[0].strip()


def measure(reference: list[dict], transcript: CallTranscript) -> Tally:
    tally = Tally(calls=1, guard_lost=len(lost_to_guards(reference, transcript)))
    for u in transcript.utterances:
        tally.kept += _chars(u.text)
        tally.invented += invented_chars(reference, u)
    for u, reason in zip(transcript.dropped, transcript.drop_reasons):
        n, invented = _chars(u.text), invented_chars(reference, u)
        tally.dropped += n
        tally.dropped_real += n - invented
        tally.by_reason[(reason_key(reason), "invented")] += invented
        tally.by_reason[(reason_key(reason), "real")] += n - invented
    return tally


def restored(transcript: CallTranscript, prefixes: list[str]) -> CallTranscript:
    """The transcript with the pieces dropped for a reason starting with one of `prefixes` kept."""
    if not prefixes:
        return transcript
    back = [i for i, r in enumerate(transcript.drop_reasons) if any(r.startswith(p) for p in prefixes)]
    kept = sorted(transcript.utterances + tuple(transcript.dropped[i] for i in back), key=lambda u: (u.start, u.channel))
    return replace(transcript, utterances=tuple(kept),
                   dropped=tuple(u for i, u in enumerate(transcript.dropped) if i not in back),
                   drop_reasons=tuple(r for i, r in enumerate(transcript.drop_reasons) if i not in back))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev-calls", type=Path, action="append", default=[], help="a labelled folder (repeatable)")
    parser.add_argument("--fixtures", type=Path, action="append", default=[],
                        help="a folder of labelled folders, e.g. bench/noisy_calls.py's OUT (repeatable)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="transcript cache (default: the pipeline's)")
    parser.add_argument("--model", default="base")
    parser.add_argument("--calls", default="", help="comma-separated call ids (default: all)")
    parser.add_argument("--without", action="append", default=[], help="keep what guards with this reason dropped")
    parser.add_argument("--show", action="store_true", help="list every kept invented piece and every real drop")
    args = parser.parse_args()
    if not args.dev_calls and not args.fixtures:
        args.dev_calls = [ROOT.parent / "shared" / "dev-calls"]

    from qa_pipeline.models import cache_root

    stage = TranscribeStage(TranscribeConfig(model=args.model, device="cpu", options=TranscribeOptions()),
                            TranscriptCache(args.cache_dir or cache_root() / "transcripts"))
    wanted = set(filter(None, args.calls.split(",")))
    totals: dict[str, Tally] = {}
    for folder in folders(args):
        labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
        for meta in discover(folder / "audio", manifest=folder / "manifest.csv"):
            if wanted and meta.call_id not in wanted:
                continue
            entry, _ = stage.entry(meta)
            transcript = build_transcript(meta, entry.segments, duration_s=entry.duration_s, n_channels=entry.n_channels,
                                          model="bench", events=entry.events, speaker_turns=entry.speaker_turns,
                                          levels=entry.levels)
            transcript = restored(transcript, args.without)
            ref = labels[meta.call_id]["turns"]
            tally = measure(ref, transcript)
            totals.setdefault(folder.name, Tally()).add(tally)
            print(f"{folder.name:<12} {meta.call_id:<7} {'stereo' if entry.n_channels == 2 else 'mono':<6} {tally.line()}",
                  flush=True)
            if args.show:
                for u in transcript.utterances:
                    n = invented_chars(ref, u)
                    if n:
                        words = u.words
                        prob = sum(w.prob for w in words) / len(words) if words else float("nan")
                        print(f"    kept {u.speaker:<8} ch{u.channel} {u.start:6.1f}-{u.end:6.1f} {n:3d}/{_chars(u.text):<3d} "
                              f"lp {u.avg_logprob:5.2f} nsp {u.no_speech_prob:4.2f} wp {prob:4.2f}  {u.text}")
                for u, reason in zip(transcript.dropped, transcript.drop_reasons):
                    n = _chars(u.text) - invented_chars(ref, u)
                    if n:
                        print(f"    dropped real? {u.speaker:<8} {u.start:6.1f}-{u.end:6.1f} {n:3d} chars  {u.text}  [{reason}]")
                for turn in lost_to_guards(ref, transcript):
                    print(f"    lost to guards: {turn['speaker']} {turn['start']:.2f}s {turn['text']}")

    print("\n== totals per folder ==")
    for name, tally in totals.items():
        print(f"{name:<12} {tally.line()}")
        for (reason, kind), n in sorted(tally.by_reason.items()):
            if n:
                print(f"    {reason:<32} {kind:<8} {n:5d} chars")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
