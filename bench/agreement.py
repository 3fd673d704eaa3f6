"""Item agreement of a `qa run` on the labelled dev calls with the human inspector's verdicts.

    python bench/agreement.py --dev-calls ../shared/dev-calls --out /tmp/qa-dev-calls
    python bench/agreement.py --dev-calls ../shared/dev-calls --out /tmp/qa-dev-calls --no-run   # re-read only

Runs `qa run` on every dev call (unless --no-run), then prints per-item agreement, the overall
figure, a confusion table (human verdict → ours), every disagreement with our reason, and the wall
time against the total audio duration.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq


def read_rows(dataset: Path) -> list[dict]:
    """All rows of a date-partitioned table (OUT/scores/<name>/call_date=…/…parquet)."""
    return pq.read_table(dataset, partitioning="hive").to_pylist()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev-calls", type=Path, default=Path("../shared/dev-calls"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/qa-dev-calls"))
    parser.add_argument("--no-run", action="store_true", help="only compare an existing OUT")
    parser.add_argument("--rescore", action="store_true", help="re-score OUT's transcripts (`qa score`) first")
    parser.add_argument("qa_args", nargs="*", help="extra arguments for `qa run` (after --)")
    args = parser.parse_args()

    labels = json.loads((args.dev_calls / "labels.json").read_text(encoding="utf-8"))
    qa = [sys.executable, str(Path(__file__).resolve().parent.parent / "cli.py")]
    wall = None
    if not args.no_run and not args.rescore:
        command = qa + ["run", str(args.dev_calls / "audio"), "--out", str(args.out),
                        "--manifest", str(args.dev_calls / "manifest.csv"), *args.qa_args]
        started = time.monotonic()
        subprocess.run(command, check=False)
        wall = time.monotonic() - started
    if args.rescore:
        subprocess.run(qa + ["score", str(args.out)], check=False)

    items = read_rows(args.out / "scores" / "items")
    calls = read_rows(args.out / "scores" / "calls")
    ours = {(r["call_id"], r["item_id"]): r for r in items}
    per_item: dict[str, Counter] = defaultdict(Counter)
    confusion: dict[str, Counter] = defaultdict(Counter)
    misses = []
    for call_id, label in sorted(labels.items()):
        for item_id, truth in label["items"].items():
            row = ours.get((call_id, item_id))
            got = row["result"] if row else "missing"
            per_item[item_id]["agree" if got == truth else "disagree"] += 1
            confusion[item_id][(truth, got)] += 1
            if got != truth:
                misses.append((call_id, item_id, truth, got, row["reason"] if row else "", label["why"].get(item_id, "")))

    total = sum(sum(c.values()) for c in per_item.values())
    agree = sum(c["agree"] for c in per_item.values())
    print(f"\n{'item':<26}{'agree':>7}{'of':>5}   confusion (human→ours)")
    for item_id, counts in per_item.items():
        n = sum(counts.values())
        pairs = ", ".join(f"{t}→{g}:{k}" for (t, g), k in sorted(confusion[item_id].items()) if t != g)
        print(f"{item_id:<26}{counts['agree']:>7}{n:>5}   {pairs}")
    print(f"\noverall agreement: {agree}/{total} = {agree / total:.1%}")
    failed = [c for c in calls if c["status"] != "ok"]
    print(f"calls scored: {len(calls) - len(failed)}/{len(calls)}" + "".join(f"\n  failed {c['call_id']}: {c['error']}" for c in failed))
    audio_s = sum(label["duration"] for label in labels.values())
    print(f"audio: {audio_s:.1f} s in {len(labels)} calls" + (f"; wall time of qa run: {wall:.1f} s ({audio_s / wall:.1f}× real time)" if wall else ""))
    if misses:
        print("\ndisagreements:")
        for call_id, item_id, truth, got, reason, why in misses:
            print(f"  {call_id} {item_id}: human {truth}, ours {got} — ours: {reason} | human: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
