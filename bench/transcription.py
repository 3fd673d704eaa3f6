"""Character error rate and turn coverage on the labelled dev calls: plain faster-whisper vs our stage.

Run from the repository root:

    .venv/bin/python bench/transcription.py --dev-calls ../shared/dev-calls

    # other forms
    .venv/bin/python bench/transcription.py --dev-calls ../shared/dev-calls --calls dev_01,dev_03
    .venv/bin/python bench/transcription.py --dev-calls ../shared/dev-calls --json /tmp/cer.json
    .venv/bin/python bench/transcription.py --dev-calls ../shared/dev-calls --cache-dir /tmp/qa-tcache  # (b) from a cache
    .venv/bin/python bench/transcription.py --dev-calls ../shared/dev-calls --only stage --show-texts
    # both corpora and every noisy condition of bench/noisy_calls.py, one table each and a summary
    .venv/bin/python bench/transcription.py --dev-calls ../shared/dev-calls --dev-calls ../shared/dev-calls-2 \
        --fixtures /tmp/qa-noisy --cache-dir /tmp/qa-tcache
    .venv/bin/python bench/transcription.py --dev-calls ../shared/dev-calls --only stage --beam-size 5

Two systems are measured on every call of DEV_CALLS/manifest.csv against the reference turns of
DEV_CALLS/labels.json:

  (a) baseline - plain faster-whisper, what a naive user does: the embedded Whisper base model
      (CPU, int8), `faster_whisper.decode_audio(path)` (a mono mix-down at 16 kHz) and
      `model.transcribe(audio, language="zh")` with every other option at its default, on the file
      as a whole; the hypothesis is all segment texts concatenated.
  (b) our stage - `qa_pipeline.batch.stages.TranscribeStage(...).run(meta)` with the default
      TranscribeOptions (per channel, VAD, guards, OpenCC, ...); the hypothesis is the kept
      utterances' text in time order. Dropped segments (hallucination guards) are listed.

Figures:

* CER = Levenshtein distance / reference length, on text normalised with
  `qa_pipeline.scoring.normalize.normalize_text` (simplified, no punctuation or spaces, digit strings as
  digits). Each turn / segment / utterance is normalised on its own and the results concatenated.
  Per call: reference = every turn in time order, hypothesis = every segment/utterance in time
  order. A whole-call figure depends on the order the two speakers' words come in (a mono
  transcript can interleave them differently), so for stereo calls (b) is also scored per
  channel: agent turns vs the utterances on the agent's channel (the channel from labels.json,
  not the one the pipeline decided), customer turns vs the other channel. Overall = sum of
  distances / sum of reference lengths.
* Turn coverage: a reference turn is "found" when the kept utterances (on the speaker's channel
  for stereo) overlap it in time for >= 50 % of its length (union of the overlaps), or when the
  text of the utterances that come within WINDOW_S of it covers >= 50 % of its normalised
  characters (longest common subsequence). Otherwise it is "lost" and listed. The baseline's
  segments (no channels) are judged the same way; its time-only coverage is also reported.
* Wall time of (a) and (b) per call and in total; model loading is timed separately. With
  --cache-dir, (b)'s times are cache reads and the table says so.

Uses rapidfuzz for the edit distances when it is installed, else a plain dynamic programme.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from qa_pipeline.scoring.normalize import normalize_text  # noqa: E402

try:  # optional: the same numbers, faster
    from rapidfuzz.distance import LCSseq as _RfLCS
    from rapidfuzz.distance import Levenshtein as _RfLevenshtein
except ImportError:  # pragma: no cover - depends on the environment
    _RfLCS = _RfLevenshtein = None

MIN_FRACTION = 0.5  # a turn is found when >= this share of it is covered
WINDOW_S = 1.0  # utterances within this many seconds of a turn count for its text coverage


# --------------------------------------------------------------------------- text measures


def normalise_join(texts: Iterable[str]) -> str:
    """Normalise each piece on its own (as the rubric sees it) and concatenate."""
    return "".join(normalize_text(t) for t in texts)


def levenshtein(ref: str, hyp: str) -> int:
    """Edit distance (substitutions, deletions, insertions all cost 1)."""
    if _RfLevenshtein is not None:
        return _RfLevenshtein.distance(ref, hyp)
    return _dp_levenshtein(ref, hyp)


def _dp_levenshtein(ref: str, hyp: str) -> int:
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence of a and b."""
    if _RfLCS is not None:
        return _RfLCS.similarity(a, b)
    return _dp_lcs(a, b)


def _dp_lcs(a: str, b: str) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def edit_ops(ref: str, hyp: str) -> tuple[int, int, int, Counter]:
    """(substitutions, deletions, insertions, Counter of (ref_char, hyp_char) substitutions) of one
    minimal alignment of hyp to ref."""
    subs: Counter = Counter()
    n_del = n_ins = 0
    if _RfLevenshtein is not None:
        for op in _RfLevenshtein.editops(ref, hyp):
            if op.tag == "replace":
                subs[(ref[op.src_pos], hyp[op.dest_pos])] += 1
            elif op.tag == "delete":
                n_del += 1
            else:
                n_ins += 1
        return sum(subs.values()), n_del, n_ins, subs
    rows = len(ref) + 1
    cols = len(hyp) + 1
    d = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        d[i][0] = i
    for j in range(cols):
        d[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    i, j = len(ref), len(hyp)
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            if ref[i - 1] != hyp[j - 1]:
                subs[(ref[i - 1], hyp[j - 1])] += 1
            i, j = i - 1, j - 1
        elif i and d[i][j] == d[i - 1][j] + 1:
            n_del += 1
            i -= 1
        else:
            n_ins += 1
            j -= 1
    return sum(subs.values()), n_del, n_ins, subs


@dataclass(frozen=True)
class Score:
    distance: int
    ref_len: int
    hyp_len: int

    @property
    def cer(self) -> float | None:
        if self.ref_len == 0:
            return None if self.hyp_len == 0 else float("inf")
        return self.distance / self.ref_len

    def as_dict(self) -> dict:
        cer = self.cer
        return {"cer": None if cer is None or cer == float("inf") else round(cer, 4),
                "distance": self.distance, "ref_len": self.ref_len, "hyp_len": self.hyp_len}


def score(ref: str, hyp: str) -> Score:
    """CER figures of already normalised texts."""
    return Score(levenshtein(ref, hyp), len(ref), len(hyp))


def cer(ref: str, hyp: str) -> float | None:
    """Levenshtein distance / reference length of already normalised texts (None for two empty texts)."""
    return score(ref, hyp).cer


def pooled(scores: Iterable[Score]) -> Score:
    """Overall figure: sum of distances over sum of reference lengths."""
    scores = list(scores)
    return Score(sum(s.distance for s in scores), sum(s.ref_len for s in scores), sum(s.hyp_len for s in scores))


# --------------------------------------------------------------------------- turn coverage


@dataclass(frozen=True)
class Span:
    """A stretch of transcript: an utterance of our stage or a segment of the baseline."""

    start: float
    end: float
    text: str
    channel: int | None = None


@dataclass(frozen=True)
class Turn:
    speaker: str
    start: float
    end: float
    text: str


def covered_seconds(start: float, end: float, spans: Iterable[Span]) -> float:
    """Seconds of [start, end] covered by the union of the spans."""
    pieces = sorted((max(start, s.start), min(end, s.end)) for s in spans if s.end > start and s.start < end)
    total = 0.0
    cursor = start
    for a, b in pieces:
        a = max(a, cursor)
        if b > a:
            total += b - a
            cursor = b
    return total


def turn_coverage(
    turns: Sequence[Turn],
    spans: Sequence[Span],
    channel_of_speaker: dict[str, int] | None = None,
    *,
    min_fraction: float = MIN_FRACTION,
    window_s: float = WINDOW_S,
) -> list[dict]:
    """For each turn: time_frac (share of it the spans overlap), text_frac (share of its normalised
    characters found, as a common subsequence, in the text of the spans within window_s of it) and
    found. With channel_of_speaker, only spans on the speaker's channel count."""
    out = []
    for turn in turns:
        candidates = list(spans)
        if channel_of_speaker is not None:
            channel = channel_of_speaker.get(turn.speaker)
            candidates = [s for s in candidates if s.channel == channel]
        duration = max(turn.end - turn.start, 1e-6)
        time_frac = min(1.0, covered_seconds(turn.start, turn.end, candidates) / duration)
        ref = normalize_text(turn.text)
        near = sorted(
            (s for s in candidates if s.end >= turn.start - window_s and s.start <= turn.end + window_s),
            key=lambda s: s.start,
        )
        hyp = normalise_join(s.text for s in near)
        text_frac = lcs_length(ref, hyp) / len(ref) if ref else 1.0
        out.append({
            "speaker": turn.speaker, "start": turn.start, "end": turn.end, "text": turn.text,
            "time_frac": round(time_frac, 3), "text_frac": round(text_frac, 3),
            "found": time_frac >= min_fraction or text_frac >= min_fraction,
        })
    return out


def lost_turns(coverage: Sequence[dict]) -> list[dict]:
    return [c for c in coverage if not c["found"]]


# --------------------------------------------------------------------------- the two systems


def load_turns(label: dict) -> list[Turn]:
    turns = [Turn(t["speaker"], float(t["start"]), float(t["end"]), t["text"]) for t in label["turns"]]
    return sorted(turns, key=lambda t: t.start)


def true_agent_channel(label: dict, meta) -> int | None:
    fmt = label.get("format") or {}
    if int(fmt.get("channels", 1)) < 2:
        return None
    if fmt.get("agent_channel") is not None:
        return int(fmt["agent_channel"])
    return meta.agent_channel if meta.agent_channel is not None else 0


def run_baseline(calls, threads: int) -> tuple[dict, float]:
    """(a): {call_id: {"spans", "wall_s"}}, model load seconds."""
    from faster_whisper import WhisperModel, decode_audio

    from qa_pipeline.models import resolve_model

    started = time.monotonic()
    # cpu_threads: the same number our stage gives its model, so that the wall times compare.
    model = WhisperModel(resolve_model("base"), device="cpu", compute_type="int8", cpu_threads=threads)
    load_s = time.monotonic() - started
    results = {}
    for meta in calls:
        started = time.monotonic()
        audio = decode_audio(str(meta.path))
        segments, _info = model.transcribe(audio, language="zh")
        spans = [Span(float(s.start), float(s.end), s.text.strip()) for s in segments]  # lazy: runs here
        results[meta.call_id] = {"spans": spans, "wall_s": time.monotonic() - started}
        print(f"  (a) {meta.call_id}: {results[meta.call_id]['wall_s']:.1f} s", file=sys.stderr, flush=True)
    del model
    return results, load_s


def run_stage(calls, cache_dir: Path, preload: bool, beam_size: int | None = None) -> tuple[dict, float]:
    """(b): {call_id: {"transcript" | "error", "wall_s", "from_cache"}}, model load seconds."""
    from qa_pipeline.audio.decode import audio_digest
    from qa_pipeline.batch.config import TranscribeConfig
    from qa_pipeline.batch.stages import TranscribeStage
    from qa_pipeline.batch.store import TranscriptCache
    from qa_pipeline.errors import CallFailed

    from dataclasses import replace

    from qa_pipeline.asr.transcribe import TranscribeOptions

    options = TranscribeOptions() if beam_size is None else replace(TranscribeOptions(), beam_size=beam_size)
    stage = TranscribeStage(TranscribeConfig(model="base", device="cpu", options=options), TranscriptCache(cache_dir))
    load_s = 0.0
    if preload:  # time the model load apart from the first call
        started = time.monotonic()
        stage.load_model()
        load_s = time.monotonic() - started
    results = {}
    for meta in calls:
        started = time.monotonic()
        try:
            result = stage.run(meta, audio_digest(meta.path))
            results[meta.call_id] = {"transcript": result.transcript, "from_cache": result.from_cache}
        except CallFailed as e:
            results[meta.call_id] = {"error": str(e), "from_cache": False}
        results[meta.call_id]["wall_s"] = time.monotonic() - started
        print(f"  (b) {meta.call_id}: {results[meta.call_id]['wall_s']:.1f} s"
              f"{' (cache)' if results[meta.call_id]['from_cache'] else ''}", file=sys.stderr, flush=True)
    return results, load_s


# --------------------------------------------------------------------------- per-call figures


def measure_call(meta, label: dict, baseline: dict | None, stage: dict | None) -> dict:
    turns = load_turns(label)
    fmt = label.get("format") or {}
    stereo = int(fmt.get("channels", 1)) >= 2
    ref_all = normalise_join(t.text for t in turns)
    row: dict = {"call_id": meta.call_id, "format": fmt.get("name", "?"), "stereo": stereo,
                 "duration_s": label.get("duration"), "n_turns": len(turns), "ref": ref_all}

    if baseline is not None:
        spans = baseline["spans"]
        hyp = normalise_join(s.text for s in spans)
        cov = turn_coverage(turns, spans)
        time_lost = [c for c in cov if c["time_frac"] < MIN_FRACTION]
        row["a"] = {**score(ref_all, hyp).as_dict(), "_score": score(ref_all, hyp), "hyp": hyp,
                    "wall_s": round(baseline["wall_s"], 2), "coverage": cov, "lost": lost_turns(cov),
                    "time_lost": time_lost,
                    "segments": [{"start": s.start, "end": s.end, "text": s.text} for s in spans]}

    if stage is not None:
        b: dict = {"wall_s": round(stage["wall_s"], 2), "from_cache": stage["from_cache"]}
        if "error" in stage:
            b.update({"error": stage["error"], "_score": Score(len(ref_all), len(ref_all), 0), "hyp": ""})
            b.update(b["_score"].as_dict())
            b["lost"] = [{"speaker": t.speaker, "start": t.start, "end": t.end, "text": t.text} for t in turns]
        else:
            tr = stage["transcript"]
            utts = sorted(tr.utterances, key=lambda u: (u.start, u.channel))
            spans = [Span(u.start, u.end, u.text, u.channel) for u in utts]
            hyp = normalise_join(s.text for s in spans)
            agent_ch = true_agent_channel(label, meta)
            channels = {"agent": agent_ch, "customer": 1 - agent_ch} if stereo else None
            cov = turn_coverage(turns, spans, channels)
            sc = score(ref_all, hyp)
            b.update({**sc.as_dict(), "_score": sc, "hyp": hyp, "coverage": cov, "lost": lost_turns(cov),
                      "agent_channel": {"true": agent_ch, "decided": tr.agent_channel,
                                        "method": tr.agent_channel_method},
                      "dropped": [{"channel": u.channel, "start": u.start, "end": u.end, "text": u.text, "reason": r}
                                  for u, r in zip(tr.dropped, tr.drop_reasons)],
                      "utterances": [{"channel": u.channel, "speaker": u.speaker, "start": u.start, "end": u.end,
                                      "text": u.text} for u in utts]})
            if stereo:
                per = {}
                for speaker, channel in channels.items():
                    ref = normalise_join(t.text for t in turns if t.speaker == speaker)
                    hyp_ch = normalise_join(s.text for s in spans if s.channel == channel)
                    per[speaker] = {**score(ref, hyp_ch).as_dict(), "_score": score(ref, hyp_ch),
                                    "channel": channel, "ref": ref, "hyp": hyp_ch}
                b["per_channel"] = per
        s_, d_, i_, subs = edit_ops(ref_all, b["hyp"])
        b["ops"] = {"sub": s_, "del": d_, "ins": i_, "top_subs": [f"{r}→{h} x{n}" for (r, h), n in subs.most_common(8)]}
        row["b"] = b
    if "a" in row:
        s_, d_, i_, subs = edit_ops(ref_all, row["a"]["hyp"])
        row["a"]["ops"] = {"sub": s_, "del": d_, "ins": i_,
                           "top_subs": [f"{r}→{h} x{n}" for (r, h), n in subs.most_common(8)]}
    return row


# --------------------------------------------------------------------------- output


def _pct(s: Score | None) -> str:
    if s is None:
        return "-"
    c = s.cer
    return "-" if c is None else ("inf" if c == float("inf") else f"{100 * c:5.1f}%")


def print_report(rows: list[dict], totals: dict, show_texts: bool) -> None:
    has_a = any("a" in r for r in rows)
    has_b = any("b" in r for r in rows)
    header = (f"{'call':7} {'format':19} {'CER(a)':>7} {'CER(b)':>7} {'b:agent':>8} {'b:cust':>7} "
              f"{'lost a/b':>9} {'drop(b)':>7} {'t(a) s':>7} {'t(b) s':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        a, b = r.get("a"), r.get("b")
        per = (b or {}).get("per_channel") or {}
        lost = f"{len(a['lost']) if a else '-'}/{len(b['lost']) if b else '-'}"
        tb = f"{b['wall_s']:.1f}{'c' if b['from_cache'] else ''}" if b else "-"
        print(f"{r['call_id']:7} {r['format']:19} {_pct(a['_score'] if a else None):>7} "
              f"{_pct(b['_score'] if b else None):>7} "
              f"{_pct(per['agent']['_score']) if per else '':>8} {_pct(per['customer']['_score']) if per else '':>7} "
              f"{lost:>9} {len(b.get('dropped', [])) if b else '-':>7} "
              f"{format(a['wall_s'], '.1f') if a else '-':>7} {tb:>7}")
    print("-" * len(header))
    for name, t in totals["groups"].items():
        print(f"{'overall':7} {name:19} {_pct(t.get('a')):>7} {_pct(t.get('b')):>7} "
              f"{_pct(t.get('b_agent')) if t.get('b_agent') else '':>8} "
              f"{_pct(t.get('b_customer')) if t.get('b_customer') else '':>7} "
              f"{str(t.get('lost_a', '-')) + '/' + str(t.get('lost_b', '-')):>9} {t.get('dropped', '-'):>7} "
              f"{t.get('wall_a', '-'):>7} {t.get('wall_b', '-'):>7}")
    print(f"\n{totals['n_turns']} reference turns. CER = edit distance / reference characters after "
          "normalize_text; overall = pooled. b:agent / b:cust = stereo (b) per channel.")
    if has_a:
        print(f"(a) plain faster-whisper, mono mix-down, defaults: model load {totals['load_a']:.1f} s, "
              f"transcription {totals['wall_a_total']:.1f} s for {totals['audio_s']:.0f} s of audio.")
    if has_b:
        how = "read from the cache (--cache-dir); not a transcription time" if totals["b_all_cached"] else (
            "transcribed now into a fresh cache" if totals["b_none_cached"] else "partly from the cache")
        print(f"(b) our TranscribeStage: model load {totals['load_b']:.1f} s, per-call total "
              f"{totals['wall_b_total']:.1f} s ({how}).  'c' = from cache.")

    print("\nLost reference turns (not covered >= 50 % in time nor in text):")
    any_lost = False
    for r in rows:
        for tag in ("a", "b"):
            for c in (r.get(tag) or {}).get("lost", []):
                any_lost = True
                print(f"  ({tag}) {r['call_id']} {c['speaker']:8} {c['start']:6.2f}s  "
                      f"time {c.get('time_frac', 0):.2f} text {c.get('text_frac', 0):.2f}  {c['text']}")
    if not any_lost:
        print("  none")
    if has_a:
        print("\n(a) turns its segments overlap in time for < 50 %:")
        n = 0
        for r in rows:
            for c in (r.get("a") or {}).get("time_lost", []):
                n += 1
                print(f"  {r['call_id']} {c['speaker']:8} {c['start']:6.2f}s time {c['time_frac']:.2f} "
                      f"text {c['text_frac']:.2f}  {c['text']}")
        if not n:
            print("  none")
    if has_b:
        print("\n(b) segments dropped by the hallucination guards:")
        n = 0
        for r in rows:
            b = r.get("b") or {}
            if "error" in b:
                print(f"  {r['call_id']} FAILED: {b['error']}")
            for d in b.get("dropped", []):
                n += 1
                print(f"  {r['call_id']} ch{d['channel']} {d['start']:6.2f}-{d['end']:6.2f}s  {d['reason']}: {d['text']}")
        if not n:
            print("  none")
        wrong = [(r["call_id"], r["b"]["agent_channel"]) for r in rows
                 if r.get("b", {}).get("agent_channel") and r["b"]["agent_channel"]["true"] is not None
                 and r["b"]["agent_channel"]["true"] != r["b"]["agent_channel"]["decided"]]
        for call_id, ch in wrong:
            print(f"  note: {call_id} agent channel decided {ch['decided']} ({ch['method']}), truth {ch['true']}")

    print("\nEdit operations (sub/del/ins) and most frequent substitutions ref→hyp:")
    for r in rows:
        for tag in ("a", "b"):
            x = r.get(tag)
            if x and "ops" in x:
                o = x["ops"]
                print(f"  ({tag}) {r['call_id']} S{o['sub']:3} D{o['del']:3} I{o['ins']:3}  {' '.join(o['top_subs'])}")

    if show_texts:
        print("\nNormalised texts:")
        for r in rows:
            print(f"\n== {r['call_id']} ({r['format']})\n  ref: {r['ref']}")
            if "a" in r:
                print(f"  (a): {r['a']['hyp']}")
            if "b" in r:
                print(f"  (b): {r['b']['hyp']}")
                for speaker, p in (r["b"].get("per_channel") or {}).items():
                    print(f"  ref {speaker}: {p['ref']}\n  (b) ch{p['channel']}: {p['hyp']}")


def totals_of(rows: list[dict], load_a: float, load_b: float) -> dict:
    groups: dict[str, dict] = {}
    for name, pick in (("all calls", lambda r: True), ("stereo", lambda r: r["stereo"]),
                       ("mono", lambda r: not r["stereo"])):
        sel = [r for r in rows if pick(r)]
        if not sel:
            continue
        g: dict = {"n_calls": len(sel)}
        if all("a" in r for r in sel):
            g["a"] = pooled(r["a"]["_score"] for r in sel)
            g["lost_a"] = sum(len(r["a"]["lost"]) for r in sel)
            g["wall_a"] = round(sum(r["a"]["wall_s"] for r in sel), 1)
        if all("b" in r for r in sel):
            g["b"] = pooled(r["b"]["_score"] for r in sel)
            g["lost_b"] = sum(len(r["b"]["lost"]) for r in sel)
            g["dropped"] = sum(len(r["b"].get("dropped", [])) for r in sel)
            g["wall_b"] = round(sum(r["b"]["wall_s"] for r in sel), 1)
            per = [r["b"]["per_channel"] for r in sel if r["b"].get("per_channel")]
            if per:
                g["b_agent"] = pooled(p["agent"]["_score"] for p in per)
                g["b_customer"] = pooled(p["customer"]["_score"] for p in per)
        groups[name] = g
    return {
        "groups": groups,
        "n_turns": sum(r["n_turns"] for r in rows),
        "audio_s": sum(r["duration_s"] or 0 for r in rows),
        "load_a": load_a, "load_b": load_b,
        "wall_a_total": sum(r["a"]["wall_s"] for r in rows if "a" in r),
        "wall_b_total": sum(r["b"]["wall_s"] for r in rows if "b" in r),
        "b_all_cached": all(r["b"]["from_cache"] for r in rows if "b" in r),
        "b_none_cached": not any(r["b"]["from_cache"] for r in rows if "b" in r),
    }


def _jsonable(x):
    if isinstance(x, Score):
        return x.as_dict()
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items() if not k.startswith("_")}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev-calls", type=Path, action="append", default=[],
                        help="a labelled folder (repeatable; default ../shared/dev-calls)")
    parser.add_argument("--fixtures", type=Path, action="append", default=[],
                        help="a folder of labelled folders, e.g. bench/noisy_calls.py's OUT: every condition in turn")
    parser.add_argument("--calls", help="comma-separated call ids (default: every call in the manifest)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--cache-dir", type=Path,
                        help="transcript cache for (b), e.g. /tmp/qa-tcache (default: a fresh temporary one, "
                             "so that (b) transcribes)")
    parser.add_argument("--beam-size", default=None,
                        help="(b) with this Whisper beam size (default: the stage's); a comma list (1,5) measures "
                             "each in the same run, the first one reported in full")
    parser.add_argument("--only", choices=("baseline", "stage"), help="run only (a) or only (b)")
    parser.add_argument("--show-texts", action="store_true", help="print the normalised reference and hypotheses")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    from qa_pipeline.audio.discover import read_manifest

    folders = list(args.dev_calls) + [p for root in args.fixtures for p in sorted(root.iterdir()) if (p / "labels.json").is_file()]
    folders = folders or [Path("../shared/dev-calls")]
    threads = os.cpu_count() or 1  # what Transcriber uses
    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="qa-bench-tcache-"))
    beams: list[int | None] = [int(b) for b in args.beam_size.split(",")] if args.beam_size else [None]
    summary: list[tuple[str, list]] = []
    payloads = {}
    try:
        for folder in folders:
            labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
            calls = read_manifest(folder / "manifest.csv", folder / "audio")
            if args.calls:
                wanted = [c.strip() for c in args.calls.split(",") if c.strip()]
                calls = [c for c in calls if c.call_id in wanted]
            missing = [c.call_id for c in calls if c.call_id not in labels]
            if missing:
                parser.error(f"{folder}: no labels for: {', '.join(missing)}")
            print(f"== {folder}: {len(calls)} calls; distances by {'rapidfuzz' if _RfLevenshtein else 'plain DP'}; "
                  f"{threads} CPU threads", file=sys.stderr)
            baseline, load_a = ({}, 0.0)
            if args.only != "stage":
                baseline, load_a = run_baseline(calls, threads)
            per_beam: list[tuple[int | None, dict]] = []
            for beam in beams if args.only != "baseline" else [None]:
                stage, load_b = ({}, 0.0)
                if args.only != "baseline":
                    stage, load_b = run_stage(calls, cache_dir, preload=args.cache_dir is None, beam_size=beam)
                rows = [measure_call(meta, labels[meta.call_id], baseline.get(meta.call_id), stage.get(meta.call_id))
                        for meta in calls]
                totals = totals_of(rows, load_a, load_b)
                if not per_beam:
                    print(f"\n===== {folder} =====")
                    print_report(rows, totals, args.show_texts)
                    payloads[str(folder)] = {"totals": _jsonable(totals), "calls": _jsonable(rows)}
                else:
                    payloads[str(folder)][f"beam {beam}"] = {"totals": _jsonable(totals), "calls": _jsonable(rows)}
                per_beam.append((beam, totals))
            summary.append((folder.name, per_beam))
    finally:
        if args.cache_dir is None:
            shutil.rmtree(cache_dir, ignore_errors=True)
    if len(summary) > 1 or len(beams) > 1:
        print("\n===== per folder: CER (a) plain faster-whisper, (b) our stage at each beam size; lost turns a/b; "
              "dropped (b); transcription seconds a/b (0: read from the cache) =====")
        for name, per_beam in summary:
            for beam, totals in per_beam:
                g = totals["groups"]["all calls"]
                print(f"{name:<14} beam {beam or 'default':<7} CER(a) {_pct(g.get('a')):>7}  CER(b) {_pct(g.get('b')):>7}  "
                      f"lost {g.get('lost_a', '-')}/{g.get('lost_b', '-')}  dropped {g.get('dropped', '-')}  "
                      f"wall {g.get('wall_a', '-')}/{g.get('wall_b', '-')} s  ({g['n_calls']} calls, "
                      f"{'cached' if totals['b_all_cached'] else 'transcribed'})")
    if args.json:
        payload = {
            "cache_dir": str(args.cache_dir) if args.cache_dir else None, "beam_size": args.beam_size,
            "normalisation": "qa_pipeline.scoring.normalize.normalize_text per turn/segment/utterance, concatenated",
            "min_fraction": MIN_FRACTION, "window_s": WINDOW_S, "cpu_threads": threads, "folders": payloads,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
