"""Item agreement of a `qa run` on the labelled dev calls with the human inspector's verdicts.

    python bench/agreement.py --dev-calls ../shared/dev-calls --out /tmp/qa-dev-calls
    python bench/agreement.py --dev-calls ../shared/dev-calls --out /tmp/qa-dev-calls --no-run   # re-read only
    python bench/agreement.py --labels tests/data/dev_labels.json --out OUT --no-run              # any labels file

Runs `qa run` on every dev call (unless --no-run), then prints per-item agreement, the overall
figure, a confusion table (human verdict → ours), every disagreement with our reason, and the wall
time against the total audio duration. The figures come from the same code as `qa calibrate`
(qa_pipeline.calibration), so the two always agree; labels that match no verdict are listed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa_pipeline.calibration.compare import calibrate  # noqa: E402
from qa_pipeline.calibration.console import confusion_text  # noqa: E402
from qa_pipeline.calibration.labels import FileLabels  # noqa: E402
from qa_pipeline.output.tables import read_scores  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev-calls", type=Path, default=Path("../shared/dev-calls"))
    parser.add_argument("--labels", type=Path, default=None, help="labels file [default: DEV_CALLS/labels.json]")
    parser.add_argument("--out", type=Path, default=Path("/tmp/qa-dev-calls"))
    parser.add_argument("--no-run", action="store_true", help="only compare an existing OUT")
    parser.add_argument("--rescore", action="store_true", help="re-score OUT's transcripts (`qa score`) first")
    parser.add_argument("qa_args", nargs="*", help="extra arguments for `qa run` (after --)")
    args = parser.parse_args()

    labels_path = args.labels or args.dev_calls / "labels.json"
    raw = json.loads(labels_path.read_text(encoding="utf-8")) if labels_path.suffix == ".json" else {}
    qa = [sys.executable, str(ROOT / "cli.py")]
    wall = None
    if not args.no_run and not args.rescore:
        command = qa + ["run", str(args.dev_calls / "audio"), "--out", str(args.out),
                        "--manifest", str(args.dev_calls / "manifest.csv"), *args.qa_args]
        started = time.monotonic()
        subprocess.run(command, check=False)
        wall = time.monotonic() - started
    if args.rescore:
        subprocess.run(qa + ["score", str(args.out)], check=False)

    scores = read_scores(args.out)
    result = calibrate(FileLabels(labels_path).read(), scores, source=str(labels_path))
    print(f"\n{'item':<26}{'agree':>7}{'of':>5}   confusion (human→ours)")
    for item in result.items:
        if item.stats.n:
            print(f"{item.item_id:<26}{item.stats.agree:>7}{item.stats.n:>5}   {confusion_text(item)}")
    overall = result.overall.stats
    print(f"\noverall agreement: {overall.agree}/{overall.n} = {overall.rate:.1%}" if overall.n else "\nno label matched")
    failed = [s for s in scores if s.status != "ok"]
    print(f"calls scored: {len(scores) - len(failed)}/{len(scores)}" + "".join(f"\n  failed {s.call_id}: {s.error}" for s in failed))
    if raw:
        audio_s = sum(label.get("duration", 0.0) for label in raw.values())
        print(f"audio: {audio_s:.1f} s in {len(raw)} calls" + (f"; wall time of qa run: {wall:.1f} s ({audio_s / wall:.1f}× real time)" if wall else ""))
    for u in result.unmatched:
        print(f"  not compared: {u.label.call_id} {u.label.item_id}: {u.why}")
    misses = [j for j in result.judged if not j.agrees]
    if misses:
        print("\ndisagreements:")
        for j in misses:
            why = raw.get(j.label.call_id, {}).get("why", {}).get(j.label.item_id, "")
            print(f"  {j.label.call_id} {j.label.item_id}: human {j.label.result}, ours {j.machine} — ours: {j.reason} | human: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
