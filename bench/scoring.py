"""Scoring and reporting speed: `qa score` on N already-transcribed synthetic calls.

    .venv/bin/python bench/scoring.py --calls 10000

Builds an OUT folder as `qa run` would leave it (transcripts, recordings, run.json) holding N calls
made from the labelled dev calls' reference transcripts (each copy gets its own call_id, one of 40
agents in 4 teams, a date in a 30-day month, and small time jitter), then times
`pipeline.rescore(OUT, default rubric)`: scoring every call, writing the partitioned Parquet
tables and rendering every call card, agent page and the index. The bound in issue 7/8: under 60 s
for 10,000 calls on the 2-core machine; issue 23: at least 300 calls/s.  Besides wall time it prints
the CPU seconds of this process and its scoring workers (a shared machine's wall time says little),
and with --profile the CPU seconds of the parts of `qa score`, scoring itself measured apart
(score_with_moods: the workers score each call and read its mood and request; of_night then only
gathers them).  The default rubric judges clauses by meaning: the first pass encodes every call's
clauses into --embeddings, a second run finds them there (warm).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import resource  # noqa: E402

from qa_pipeline.records import AGENT, AudioEvent, CallMeta, CallTranscript, Utterance, Word  # noqa: E402


def reference_transcripts(labels: dict) -> list[tuple[dict, CallTranscript]]:
    out = []
    for call_id, label in sorted(labels.items()):
        utterances = []
        for n, turn in enumerate(label["turns"]):
            text = turn["text"]
            step = (turn["end"] - turn["start"]) / max(len(text), 1)
            words = tuple(Word(ch, turn["start"] + i * step, turn["start"] + (i + 1) * step, 0.9) for i, ch in enumerate(text))
            utterances.append(Utterance(f"{call_id}-{n:05d}", call_id, turn["speaker"], 0 if turn["speaker"] == AGENT else 1,
                                        turn["start"], turn["end"], text, text, -0.3, 0.05, words))
        events = tuple(AudioEvent("busy_tone", e["start"], e["end"], e.get("channel")) for e in label["events"] if e["type"] == "busy_tone")
        out.append((label, CallTranscript(call_id, label["duration"], 2, tuple(utterances), "reference", events, 0, "manifest")))
    return out


def _vary(text: str, rng: random.Random, alphabet: str) -> str:
    """Swap two of the text's characters for others from the corpus, so that no two synthetic calls
    share an utterance (no cache inside the scorer gets an unfair hit)."""
    chars = list(text)
    for _ in range(2):
        at = rng.randrange(len(chars))
        if "\u4e00" <= chars[at] <= "\u9fff":
            chars[at] = rng.choice(alphabet)
    return "".join(chars)


def synthetic(n: int, base: list[tuple[dict, CallTranscript]], seed: int = 7):
    rng = random.Random(seed)
    alphabet = "".join(sorted({ch for _l, t in base for u in t.utterances for ch in u.text if "\u4e00" <= ch <= "\u9fff"}))
    agents = [(f"A{2000 + i}", f"坐席{i:02d}", f"第{i % 4 + 1}组") for i in range(40)]
    for k in range(n):
        label, t = base[k % len(base)]
        call_id = f"c{k:06d}"
        shift = rng.uniform(-0.2, 0.2)
        utterances = []
        for i, u in enumerate(t.utterances):
            text = _vary(u.text, rng, alphabet)
            words = tuple(Word(ch, max(0.0, w.start + shift), max(0.0, w.end + shift), w.prob) for ch, w in zip(text, u.words))
            utterances.append(Utterance(f"{call_id}-{i:05d}", call_id, u.speaker, u.channel, max(0.0, u.start + shift),
                                        max(0.0, u.end + shift), text, text, u.avg_logprob, u.no_speech_prob, words))
        utterances = tuple(utterances)
        agent_id, name, team = agents[rng.randrange(len(agents))]
        day = 1 + rng.randrange(30)
        meta = CallMeta(call_id=call_id, path=Path(f"/nonexistent/{call_id}.wav"), agent_id=agent_id, agent_name=name,
                        team=team, started_at=f"2025-04-{day:02d}T{9 + rng.randrange(9):02d}:00:00+08:00",
                        direction="inbound", hangup_by=rng.choice(["agent", "customer", None]))
        yield meta, CallTranscript(call_id, t.duration_s, t.n_channels, utterances, t.model, t.events, 0, "manifest")


def write_synthetic_out(out: Path, calls) -> list[CallMeta]:
    """OUT as `qa transcribe` leaves it for (meta, transcript) pairs: the transcripts table and run.json."""
    from qa_pipeline.batch.store import RUN_FILE
    from qa_pipeline.output.tables import write_transcripts

    metas, transcripts = zip(*calls)
    write_transcripts(out, list(transcripts))
    (out / RUN_FILE).write_text(json.dumps({"audio_dir": "/nonexistent", "model": "reference", "calls": [
        {**asdict(m), "path": str(m.path)} for m in metas]}, ensure_ascii=False), encoding="utf-8")
    return list(metas)


def meaning_share(calls) -> int:
    """CPU seconds per call of score_call with the default rubric and with its examples taken out."""
    from dataclasses import replace

    from qa_pipeline.scoring.rubric import load_rubric, rubric_path_default
    from qa_pipeline.scoring.score import score_call

    rubric = load_rubric(rubric_path_default())
    plain = replace(rubric, items=tuple(replace(i, meaning=None, when=replace(i.when, meaning=None) if i.when else None)
                                        for i in rubric.items))
    for meta, t in calls:  # warm: every call's vectors encoded and stored once
        score_call(t, meta, rubric, processed_at="bench")
    spent = {"with examples": 0.0, "without": 0.0}
    for _round in range(2):
        for name, r in (("with examples", rubric), ("without", plain)):
            started = time.process_time()
            for meta, t in calls:
                score_call(t, meta, r, processed_at="bench")
            spent[name] += time.process_time() - started
    n = 2 * len(calls)
    a, b = spent["with examples"] / n * 1000, spent["without"] / n * 1000
    print(f"score_call, warm vectors, {len(calls)} calls x 2 rounds: {a:.2f} ms CPU per call with examples, "
          f"{b:.2f} without: the meaning layer is {(a - b) / a:.0%} of scoring")
    return 0


def cpu_seconds() -> float:
    """User + system CPU of this process and of its finished children (the scoring workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# the parts of write_outputs: batch.store's functions, then the morning's steps (methods of Morning)
WRITE_PARTS = ("write_transcripts", "write_scores", "render_reports", "of_night", "write", "pages", "notify")


def profile_parts(module, names, spent: dict[str, float], walls: dict[str, float]) -> None:
    """Wrap module.<name> (a module's function or a class's method) for each name so that its CPU
    seconds add up in `spent` and its wall seconds in `walls`."""
    for name in names:
        fn = getattr(module, name)

        def timed(*args, _fn=fn, _name=name, **kwargs):
            before, started = cpu_seconds(), time.monotonic()
            try:
                return _fn(*args, **kwargs)
            finally:
                spent[_name] = spent.get(_name, 0.0) + cpu_seconds() - before
                walls[_name] = walls.get(_name, 0.0) + time.monotonic() - started

        setattr(module, name, timed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--dev-labels", type=Path, default=ROOT / "tests" / "data" / "dev_labels.json")
    parser.add_argument("--out", type=Path, default=None, help="keep the OUT folder here (default: a temp dir)")
    parser.add_argument("--embeddings", type=Path, default=Path(tempfile.gettempdir()) / "qa-bench-embeddings",
                        help="cache root for the sentence vectors (kept between runs, so a second run is warm)")
    parser.add_argument("--meaning-share", type=int, default=0, metavar="N",
                        help="only time score_call in this process on N calls (warm vectors), the default rubric "
                             "against the same without examples, interleaved: the meaning layer's share of scoring")
    parser.add_argument("--profile", action="store_true",
                        help="also print the CPU seconds of reading, scoring and writing, and of scoring "
                             "the same calls in this process alone")
    args = parser.parse_args()
    # The scorer keeps vectors in <cache root>/transcripts/embeddings: a bench root of its own, so that
    # "warm" means warmed by this bench; the first pass encodes what is missing, the second is warm.
    os.environ["QA_CACHE_DIR"] = str(args.embeddings)

    from qa_pipeline.batch import rescore as rescoring, store
    from qa_pipeline.batch.rescore import rescore
    from qa_pipeline.scoring.rubric import load_rubric, rubric_path_default
    from qa_pipeline.scoring.score import score_call

    spent: dict[str, float] = {}
    walls: dict[str, float] = {}
    if args.profile:
        from qa_pipeline.morning import Morning

        profile_parts(rescoring, ["read_transcripts", "score_with_moods", "write_outputs"], spent, walls)
        profile_parts(store, WRITE_PARTS[:3], spent, walls)
        profile_parts(Morning, WRITE_PARTS[3:], spent, walls)

    base = reference_transcripts(json.loads(args.dev_labels.read_text(encoding="utf-8")))
    if args.meaning_share:
        return meaning_share(list(synthetic(args.meaning_share, base)))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "out"
        out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        write_synthetic_out(out, synthetic(args.calls, base))
        print(f"built {args.calls} transcribed calls in {time.monotonic() - started:.1f} s", flush=True)
        started, cpu = time.monotonic(), cpu_seconds()
        summary = rescore(out, rubric_path_default())  # a second run with the same --embeddings is warm
        wall, cpu = time.monotonic() - started, cpu_seconds() - cpu
        pages = sum(1 for _ in (out / "reports").rglob("*.html"))
        print(f"qa score: {summary.total} calls scored ({summary.failed} failed), {pages} HTML pages, in {wall:.1f} s "
              f"= {summary.total / wall:.0f} calls/s; CPU {cpu:.1f} s (this process and its workers)")
        if args.profile:
            for name in ("read_transcripts", "score_with_moods", "write_outputs", *WRITE_PARTS):
                inside = name in WRITE_PARTS
                print(f"  {'  ' * inside}{name:<{20 - 2 * inside}} CPU {spent.get(name, 0.0):6.1f} s, "
                      f"wall {walls.get(name, 0.0):6.1f} s")
            outside = wall - walls.get("score_with_moods", 0.0)
            print(f"  outside score_with_moods (this process; the call cards' workers from of_night on): "
                  f"wall {outside:.1f} s")
            rubric = load_rubric(rubric_path_default())
            calls = list(synthetic(args.calls, base))
            before = time.process_time()
            for meta, transcript in calls:
                score_call(transcript, meta, rubric, processed_at="bench")
            alone = time.process_time() - before
            print(f"  scoring alone, one process: CPU {alone:.1f} s = {1000 * alone / len(calls):.2f} ms per call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
