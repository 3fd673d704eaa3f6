"""Verdicts on wording nobody wrote into the rubric (issue 2/6): every figure in one run.

    .venv/bin/python bench/generalisation.py \\
        --corpus ../shared/dev-calls=/tmp/qa-dev-calls --corpus ../shared/dev-calls-2=/tmp/qa-dev-calls-2

Each `--corpus DIR=OUT` names a labelled corpus and the OUT folder of a `qa run` on it (made here
with `qa run DIR/audio --manifest DIR/manifest.csv` when OUT has no run yet; transcripts are cached,
so later runs only score).  The cached transcripts are scored in-process with:

  default          rubrics/default.zh.yaml, no per-corpus configuration
  centre           DIR/centre.yaml, else bench/centres/<corpus>.yaml: the default plus the centre's company names
  centre only      the centre's names alone name the company (the default's generic forms removed)
  strict 您好      the greeting requires 您 heard as 您 (strict_you: true): the cost of strictness
  no model         the complaint classifier switched off (customer_says and waits only)
  ask: listed only the ask-need item with its listed sentences only (no 什么…帮 patterns, no 请讲)
  read-back        the agent repeating 4 syllables of the customer's words also confirms

and prints per-item agreement with the inspector's labels for each, every disagreement of the
default and centre rubrics, complaint precision/recall on the customer turns (bench/complaints.py)
and the false-match report of the forbidden, greeting and closing phrases (bench/false_matches.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import complaints  # noqa: E402
import false_matches  # noqa: E402

from qa_pipeline.records import CallMeta  # noqa: E402
from qa_pipeline.scoring.matching import NEAR  # noqa: E402
from qa_pipeline.scoring.rubric import (  # noqa: E402
    ConfirmationCheck,
    IntroductionCheck,
    PhraseCheck,
    Rubric,
    load_rubric,
    rubric_path_default,
)
from qa_pipeline.scoring.score import score_call  # noqa: E402
from qa_pipeline.output.tables import read_transcripts  # noqa: E402


def _with_check(rubric: Rubric, item_id: str, **changes) -> Rubric:
    items = tuple(dataclasses.replace(i, check=dataclasses.replace(i.check, **changes)) if i.id == item_id else i
                  for i in rubric.items)
    return dataclasses.replace(rubric, items=items)


def variants(corpus: Path) -> dict[str, Rubric]:
    default = load_rubric(rubric_path_default())
    out = {"default": default}
    centre_file = corpus / "centre.yaml"
    if not centre_file.is_file():
        centre_file = ROOT / "bench" / "centres" / f"{corpus.name}.yaml"
    if centre_file.is_file():
        centre = load_rubric(centre_file)
        out["centre"] = centre
        intro = next(i for i in centre.items if isinstance(i.check, IntroductionCheck))
        out["centre only"] = _with_check(centre, intro.id, company=(), organisations=())
    greeting = next(i for i in default.items if i.id == "greeting" and isinstance(i.check, PhraseCheck))
    out["strict 您好"] = _with_check(default, greeting.id, strict_you=True)
    items = tuple(dataclasses.replace(i, when=dataclasses.replace(i.when, customer_intent=()))
                  if i.when is not None and i.when.customer_intent else i for i in default.items)
    out["no model"] = dataclasses.replace(default, items=items)
    ask = next((i for i in default.items if i.id == "ask_need" and isinstance(i.check, PhraseCheck)), None)
    if ask is not None:
        listed = tuple(p for p in ask.check.any if p.kind != NEAR and p.source not in ("请讲", "请说"))
        out["ask: listed only"] = _with_check(default, ask.id, any=listed)
    confirm = next(i for i in default.items if isinstance(i.check, ConfirmationCheck))
    out["read-back"] = _with_check(default, confirm.id, read_back_syllables=4)
    return out


def ensure_run(corpus: Path, out: Path) -> None:
    if (out / "run.json").is_file():
        return
    qa = [sys.executable, str(ROOT / "cli.py")]
    subprocess.run(qa + ["run", str(corpus / "audio"), "--out", str(out), "--manifest", str(corpus / "manifest.csv")],
                   check=False)


def metas(out: Path) -> list[CallMeta]:
    data = json.loads((out / "run.json").read_text(encoding="utf-8"))
    fields = {f.name for f in dataclasses.fields(CallMeta)}
    return [CallMeta(**{k: (Path(v) if k == "path" else v) for k, v in c.items() if k in fields}) for c in data["calls"]]


def agreement(labels: dict, transcripts: dict, calls: list[CallMeta], rubric: Rubric):
    per_item: dict[str, Counter] = {}
    misses = []
    started = time.perf_counter()
    for meta in calls:
        if meta.call_id not in labels or meta.call_id not in transcripts:
            continue
        score = score_call(transcripts[meta.call_id], meta, rubric, processed_at="bench")
        got = {r.item_id: r for r in score.items}
        for item_id, truth in labels[meta.call_id]["items"].items():
            r = got.get(item_id)
            ok = r is not None and r.result == truth
            per_item.setdefault(item_id, Counter())["agree" if ok else "disagree"] += 1
            if not ok:
                misses.append(f"    {meta.call_id} {item_id}: human {truth}, ours {r.result if r else 'missing'} — {r.reason if r else ''}")
    return per_item, misses, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", required=True, help="DIR=OUT")
    args = parser.parse_args()
    for spec in args.corpus:
        corpus, _, out = spec.partition("=")
        corpus, out = Path(corpus), Path(out)
        ensure_run(corpus, out)
        labels = json.loads((corpus / "labels.json").read_text(encoding="utf-8"))
        transcripts = read_transcripts(out)
        calls = metas(out)
        results = {name: agreement(labels, transcripts, calls, rubric) for name, rubric in variants(corpus).items()}
        names = list(results)
        items = list(next(iter(results.values()))[0])
        print(f"\n== {corpus.name}: {len(labels)} calls, per-item agreement with the inspector")
        print(f"  {'item':<25}" + "".join(f"{n:>17}" for n in names))
        for item_id in items:
            row = "".join(f"{results[n][0][item_id]['agree']:>14}/{sum(results[n][0][item_id].values()):<2}" for n in names)
            print(f"  {item_id:<25}{row}")
        totals = []
        for n in names:
            agree = sum(c["agree"] for c in results[n][0].values())
            total = sum(sum(c.values()) for c in results[n][0].values())
            totals.append(f"{agree}/{total} {agree / total:.1%}".rjust(17))
        print(f"  {'overall':<25}" + "".join(totals))
        print(f"  {'scoring time':<25}" + "".join(f"{results[n][2]:>16.2f}s" for n in names))
        for n in ("default", "centre"):
            if n in results:
                print(f"  disagreements ({n}):" + ("" if results[n][1] else " none"))
                for line in results[n][1]:
                    print(line)
    print("\n== complaint detection on the customer turns (bench/complaints.py)")
    found = complaints.methods(rubric_path_default())
    for spec in args.corpus:
        corpus, _, out = spec.partition("=")
        turns = complaints.labelled_turns(Path(corpus))
        complaints.whisper_text(Path(out), turns)
        truth = [t["truth"] for t in turns]
        print(f"  {Path(corpus).name}: {len(turns)} customer turns, {sum(truth)} complaints")
        for name, fn in found.items():
            for kind, key in (("reference", "text"), ("Whisper", "asr")):
                print(f"    {name:<26} {kind:<10} {complaints.prf([fn(t[key]) for t in turns], truth)}")
    print("\n== false matches (bench/false_matches.py)")
    false_matches.report(args.corpus, load_rubric(rubric_path_default()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
