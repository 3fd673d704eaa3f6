"""Whisper's confusions on the dev calls: reference turns against the cached transcript, per syllable.

    .venv/bin/python bench/confusions.py --corpus ../shared/dev-calls=/tmp/qa-dev-calls \\
        --corpus ../shared/dev-calls-2=/tmp/qa-dev-calls-2

Each reference turn (labels.json) is paired with the transcript utterances that overlap it in time
(any speaker), both normalised and turned into toneless pinyin, and aligned by edit distance.
Prints how many syllables came out right, the substituted pairs that share the initial or the
final, the most frequent initial and final confusions, and how the matcher's cost model
(qa_pipeline/phonetic.py) rates the substitutions Whisper actually made.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_pipeline.scoring.normalize import normalize_text, to_pinyin  # noqa: E402
from qa_pipeline.scoring.phonetic import CLOSE, HALF, cost, split  # noqa: E402


def align(a: list[str], b: list[str]) -> list[tuple[int | None, int | None]]:
    n, m = len(a), len(b)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    i, j, pairs = n, m, []
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (a[i - 1] != b[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i and d[i][j] == d[i - 1][j] + 1:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    return pairs[::-1]


def turn_pairs(corpus: Path, out: Path):
    import pyarrow.parquet as pq

    labels = json.loads((corpus / "labels.json").read_text(encoding="utf-8"))
    rows = [r for r in pq.read_table(out / "transcripts" / "transcripts.parquet").to_pylist() if not r["dropped"]]
    for call_id, lab in labels.items():
        hyps = [r for r in rows if r["call_id"] == call_id]
        for t in lab["turns"]:
            over = [r for r in hyps if min(r["end"], t["end"]) - max(r["start"], t["start"])
                    > 0.5 * min(r["end"] - r["start"], t["end"] - t["start"])]
            yield normalize_text(t["text"]), "".join(normalize_text(r["text"]) for r in over)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", required=True, help="DIR=OUT (OUT of a qa run on DIR)")
    args = parser.parse_args()
    subs, ini, fin, words = Counter(), Counter(), Counter(), Counter()
    total = same = deleted = inserted = 0
    for spec in args.corpus:
        corpus, _, out = spec.partition("=")
        for ref, hyp in turn_pairs(Path(corpus), Path(out)):
            rp, hp = to_pinyin(ref), to_pinyin(hyp)
            for i, j in align(rp, hp):
                if i is None:
                    inserted += 1
                    continue
                total += 1
                if j is None:
                    deleted += 1
                elif rp[i] == hp[j]:
                    same += 1
                else:
                    subs[(rp[i], hp[j])] += 1
                    words[(ref[i], hyp[j])] += 1
                    (ri, rf), (hi, hf) = split(rp[i]), split(hp[j])
                    if ri == hi:
                        fin[tuple(sorted((rf, hf)))] += 1
                    elif rf == hf:
                        ini[tuple(sorted((ri, hi)))] += 1
    n_sub = sum(subs.values())
    print(f"reference syllables {total}: same pinyin {same} ({same / total:.1%}), substituted {n_sub} "
          f"({n_sub / total:.1%}), deleted {deleted}, inserted {inserted}")
    print(f"substitutions with the same initial {sum(fin.values())}, same final {sum(ini.values())}: "
          f"{(sum(fin.values()) + sum(ini.values())) / n_sub:.1%} share one of the two")
    rated = Counter("close" if c <= CLOSE else "half" if c <= HALF else "full" for c in
                    (cost(a, b) for (a, b), k in subs.items() for _ in range(k)))
    print(f"cost model on Whisper's substitutions: close {rated['close']}, half {rated['half']}, full {rated['full']}")
    print("initials (final the same):", ", ".join(f"{a or '∅'}/{b}:{k}" for (a, b), k in ini.most_common(20)))
    print("finals (initial the same):", ", ".join(f"{a}/{b}:{k}" for (a, b), k in fin.most_common(25)))
    print("syllables:", ", ".join(f"{a}>{b}:{k}" for (a, b), k in subs.most_common(25)))
    print("characters:", ", ".join(f"{a}>{b}:{k}" for (a, b), k in words.most_common(30)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
