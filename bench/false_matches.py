"""False matches of the forbidden list and the greeting/closing phrases, over every turn of the dev calls.

    .venv/bin/python bench/false_matches.py --corpus ../shared/dev-calls=/tmp/qa-dev-calls \\
        --corpus ../shared/dev-calls-2=/tmp/qa-dev-calls-2 [--rubric rubrics/default.zh.yaml]

Every agent and customer turn of each corpus's reference transcript (labels.json), and the Whisper
text of the same turn (the cached transcript's utterances overlapping it, when `=OUT` is given), is
searched for every phrase of the rubric's forbidden_phrases, greeting and closing items, matched as
the scorer matches them (meaning variants, sound with the item's tolerance, `unless` exceptions).

A match is supported when the labels back it:
  * forbidden: in an agent turn of a call whose forbidden_phrases label is fail, and either the
    turn the label cites ("agent says '…' in the turn starting 26.7 s") or one whose reference text
    says the phrase in characters; anywhere else (any customer turn, any call labelled pass, an
    agent turn that does not say it) it is false.
  * greeting / closing: when the reference turn says, in characters, the phrase or another of the
    same group (the greeting's 您好 group, its 喂 group, each of the closing's two groups); a match
    the reference turn does not back is false, in the reference text (the matcher read too much
    into it) or in the Whisper text (a sound match of something else).
Prints the counts and every unsupported match.

Then the same turns against the forbidden item's examples (`examples:` / `near_misses:`, judged by
the sentence encoder as the scorer judges them: every clause and pair of clauses, the item's
threshold and margin): matches on agent turns, how many the labels do not back (0 expected on
turns of calls labelled clean), and, for reference, the same count on customer turns (the scorer
never judges those against the agent).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_pipeline.scoring.matching import BY_TEXT, find_all, prepare  # noqa: E402
from qa_pipeline.scoring.rubric import ForbiddenCheck, PhraseCheck, load_rubric, rubric_path_default  # noqa: E402

_CITED = re.compile(r"(?:in the turn starting|' at) ([\d.]+) s")  # dev-calls(-2) / dev-calls-3 wording


@dataclass(frozen=True)
class Probe:
    group: str  # forbidden | greeting | closing
    phrase: object  # matching.Phrase
    tolerance: float | None
    strict_you: bool
    unless: tuple = ()
    siblings: tuple = ()  # the phrases of the same meaning group


def probes(rubric) -> list[Probe]:
    out = []
    for item in rubric.items:
        c = item.check
        if isinstance(c, ForbiddenCheck):
            out += [Probe("forbidden", fp.phrase, c.tolerance, True, fp.unless, (fp.phrase,)) for fp in c.phrases]
        elif isinstance(c, PhraseCheck) and item.id in ("greeting", "closing"):
            for group in [c.any, c.none, *c.all]:
                out += [Probe(item.id, p, c.tolerance, c.strict_you, (), tuple(group)) for p in group]
    return out


def turns_of(corpus: Path, out: Path | None) -> list[dict]:
    labels = json.loads((corpus / "labels.json").read_text(encoding="utf-8"))
    rows = []
    if out is not None:
        import pyarrow.parquet as pq

        rows = [r for r in pq.read_table(out / "transcripts" / "transcripts.parquet").to_pylist() if not r["dropped"]]
    turns = []
    for call_id, lab in sorted(labels.items()):
        violated = lab["items"].get("forbidden_phrases") == "fail"
        cited = _CITED.findall(lab["why"].get("forbidden_phrases", "")) if violated else []
        for t in lab["turns"]:
            over = [r for r in rows if r["call_id"] == call_id
                    and min(r["end"], t["end"]) - max(r["start"], t["start"]) > 0.5 * min(r["end"] - r["start"], t["end"] - t["start"])]
            turns.append(dict(t, call_id=call_id, corpus=corpus.name,
                              whisper="，".join(r["text"] for r in over) if out is not None else None,
                              violated=violated and t["speaker"] == "agent",
                              cited=t["speaker"] == "agent" and any(
                                  t["start"] - 0.3 <= float(c) <= t["end"] + 0.3 for c in cited)))
    return turns


def matches(text: str, probe: Probe) -> list:
    p = prepare(text)
    found = list(find_all(p, probe.phrase, tolerance=probe.tolerance, strict_you=probe.strict_you))
    if probe.unless:
        excused = [m for u in probe.unless for m in find_all(p, u)]
        found = [m for m in found if not any(m.norm_start < e.norm_end and e.norm_start < m.norm_end for e in excused)]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", required=True, help="DIR or DIR=OUT")
    parser.add_argument("--rubric", type=Path, default=rubric_path_default())
    parser.add_argument("--sweep", action="store_true",
                        help="also count, per (threshold, margin), meaning matches on clean and on cited turns")
    args = parser.parse_args()
    rubric = load_rubric(args.rubric)
    report(args.corpus, rubric)
    meaning_report(args.corpus, rubric, sweep=args.sweep)
    model_report(args.corpus, rubric)
    return 0


def model_report(corpora: list[str], rubric) -> dict:
    """The forbidden item's intent model over every agent turn: for a range of thresholds, turns of calls
    labelled clean it flags (0 expected) and cited violation turns it finds; then each flagged turn at
    the rubric's threshold."""
    from qa_pipeline.scoring.checks.forbidden import MIN_MEANING_CHARS, intent_threshold
    from qa_pipeline.scoring.intents import load_model
    from qa_pipeline.scoring.normalize import normalize_text

    item = next((i for i in rubric.items if isinstance(i.check, ForbiddenCheck) and i.check.intent), None)
    if item is None:
        print("\nno intent model on the forbidden item")
        return {}
    model, label = load_model(), item.check.intent
    threshold = intent_threshold(item.check)
    short = item.check.intent_short_chars
    turns = [t for spec in corpora for t in turns_of(Path(spec.partition("=")[0]),
                                                     Path(spec.partition("=")[2]) if spec.partition("=")[2] else None)]
    agent = [t for t in turns if t["speaker"] == "agent"]

    def best(text: str) -> tuple[float, str, int]:
        # the turn as a whole, as the check judges an utterance
        norm = normalize_text(text)
        return (model.probability(label, text, norm=norm), text, len(norm)) if len(norm) >= MIN_MEANING_CHARS \
            else (0.0, "", 0)

    scores = {kind: [best(t["text"] if kind == "reference" else (t["whisper"] or "")) for t in agent]
              for kind in ("reference", "whisper")}
    cited = [n for n, t in enumerate(agent) if t["cited"]]
    print(f"\nforbidden by the intent model '{label}' over {len(agent)} agent turns ({len(cited)} cited violation "
          f"turns); rubric threshold {threshold:.2f}"
          + (f" ({intent_threshold(item.check, 0):.2f} under {short} characters)" if short else ""))
    print("  threshold   clean flagged (ref | whisper)   cited found (ref | whisper)")
    out = {}
    for th in sorted({0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, round(threshold, 2)}):
        clean = [sum(1 for n, t in enumerate(agent) if not t["violated"] and scores[k][n][0] >= th) for k in scores]
        found = [sum(1 for n in cited if scores[k][n][0] >= th) for k in scores]
        out[th] = (tuple(clean), tuple(found))
        print(f"  {th:9.2f}   {clean[0]:>6} | {clean[1]:<6}                 {found[0]:>4} | {found[1]:<4}")
    for kind in scores:
        for n, t in enumerate(agent):
            p, clause, chars = scores[kind][n]
            if chars and p >= intent_threshold(item.check, chars):
                ok = "cited" if t["cited"] else ("in a failed call" if t["violated"] else "CLEAN")
                print(f"  {kind:<9} {t['corpus']} {t['call_id']} {t['start']:6.1f} s  {p:.2f} {ok:<16} '{clause}'")
    return out


def meaning_report(corpora: list[str], rubric, sweep: bool = False) -> dict:
    """Forbidden examples matched by meaning over every turn: (speaker, text kind) → [matches, unsupported]."""
    from qa_pipeline.meaning.judge import default_judge

    item = next((i for i in rubric.items if isinstance(i.check, ForbiddenCheck) and i.meaning is not None), None)
    if item is None:
        print("\nno forbidden examples in the rubric")
        return {}
    judge = default_judge(rubric.encoder)
    turns = [t for spec in corpora for t in turns_of(Path(spec.partition("=")[0]),
                                                     Path(spec.partition("=")[2]) if spec.partition("=")[2] else None)]
    counts: dict[tuple[str, str], list[int]] = {}
    lines = []
    cited = found_cited = 0
    if sweep:
        _sweep(judge, item.meaning, turns)
    for kind in ("reference", "whisper"):
        texts = [t["text"] if kind == "reference" else (t["whisper"] or "") for t in turns]
        call = judge.call(texts)
        hits = {}
        for c in call.closest(item.meaning, range(len(turns))):
            if c.counts(item.meaning):
                hits.setdefault(c.seg, c)
        for n, t in enumerate(turns):
            if kind == "reference" and t["cited"]:
                cited += 1
                found_cited += n in hits
            if n not in hits:
                continue
            c = hits[n]
            ok = t["violated"] and t["cited"]
            row = counts.setdefault((t["speaker"], kind), [0, 0])
            row[0] += 1
            if not ok:
                row[1] += 1
                lines.append(f"  {kind:<9} {t['corpus']} {t['call_id']} {t['speaker']:<8} {t['start']:6.1f} s  "
                             f"'{texts[n][c.unit.start:c.unit.end]}' ~ '{c.example.text}' {c.similarity:.2f} "
                             f"(near-miss {c.near_similarity:.2f})")
    print(f"\nforbidden examples by meaning over {len(turns)} turns (threshold {item.meaning.threshold}, margin "
          f"{item.meaning.margin}, {len(item.meaning.examples)} examples, {len(item.meaning.near_misses)} near-misses)")
    print(f"  {'speaker':<10}{'text':<10}{'matches':>8}{'unsupported':>13}")
    for (speaker, kind), (n, bad) in sorted(counts.items()):
        print(f"  {speaker:<10}{kind:<10}{n:>8}{bad:>13}")
    print(f"  cited violation turns found by meaning (reference text): {found_cited}/{cited}")
    print("unsupported meaning matches:" if lines else "unsupported meaning matches: none")
    for line in lines:
        print(line)
    return {k: tuple(v) for k, v in counts.items()}


def report(corpora: list[str], rubric) -> dict:
    all_probes = probes(rubric)
    counts: dict[tuple[str, str], list[int]] = {}
    false: list[str] = []
    n_turns = 0
    for spec in corpora:
        corpus, _, out = spec.partition("=")
        for t in turns_of(Path(corpus), Path(out) if out else None):
            n_turns += 1
            for kind in ("reference", "whisper"):
                text = t["text"] if kind == "reference" else t["whisper"]
                if not text:
                    continue
                for probe in all_probes:
                    for m in matches(text, probe):
                        said = any(x.how == BY_TEXT for sib in probe.siblings
                                   for x in find_all(prepare(t["text"]), sib, tolerance=0, strict_you=probe.strict_you))
                        ok = t["violated"] and (t["cited"] or said) if probe.group == "forbidden" else said
                        c = counts.setdefault((probe.group, kind), [0, 0])
                        c[0] += 1
                        if not ok:
                            c[1] += 1
                            false.append(f"  {probe.group:<9} {kind:<9} {t['corpus']} {t['call_id']} {t['speaker']:<8} "
                                         f"{t['start']:6.1f} s  '{probe.phrase.source}' ({m.how}) in '{m.text}'  — {text[:50]}")
    print(f"\nfalse matches over {n_turns} turns (agent and customer) of {len(corpora)} corpora, "
          f"{len(all_probes)} phrases (forbidden, greeting, closing)")
    print(f"  {'group':<10}{'text':<10}{'matches':>8}{'unsupported':>13}")
    for (group, kind), (n, bad) in sorted(counts.items()):
        print(f"  {group:<10}{kind:<10}{n:>8}{bad:>13}")
    print("unsupported matches:" if false else "unsupported matches: none")
    for line in false:
        print(line)
    return {k: tuple(v) for k, v in counts.items()}


def _sweep(judge, meaning, turns) -> None:
    """Agent turns of calls labelled clean that some unit would flag, and cited violation turns
    found, for a grid of (threshold, margin); reference and Whisper text."""
    best = {}
    for kind in ("reference", "whisper"):
        texts = [t["text"] if kind == "reference" else (t["whisper"] or "") for t in turns]
        agent = [n for n, t in enumerate(turns) if t["speaker"] == "agent"]
        for c in judge.call(texts).closest(meaning, agent):
            best.setdefault((kind, c.seg), []).append((c.similarity, c.gap))
    print("\nsweep: clean agent turns flagged / cited violation turns found (reference | whisper)")
    for threshold in (0.55, 0.6, 0.62, 0.64, 0.66, 0.68, 0.7, 0.75):
        row = []
        for margin in (0.0, 0.05, 0.1, 0.15):
            cells = []
            for kind in ("reference", "whisper"):
                hit = {n for (k, n), v in best.items() if k == kind and any(s >= threshold and g >= margin for s, g in v)}
                clean = sum(1 for n in hit if not turns[n]["violated"])
                cited = [n for n, t in enumerate(turns) if t["cited"]]
                cells.append(f"{clean}/{sum(n in hit for n in cited)}")
            row.append(f"m {margin:.2f}: {' | '.join(cells):<11}")
        print(f"  t {threshold:.2f}  " + "  ".join(row))
    print(f"  ({sum(1 for t in turns if t['cited'])} cited violation turns)")


if __name__ == "__main__":
    sys.exit(main())
