"""`qa calibrate --rubric CANDIDATE` on N labelled, already-transcribed calls (synthetic).

    .venv/bin/python bench/calibrate.py --calls 1000

Builds an OUT folder as `qa run` would leave it with N calls made from the labelled dev calls'
reference transcripts (bench/scoring.py's generator), scores it with the default rubric, labels
every call with the inspector verdicts of the dev call it was made from (9 items a call), then times
`qa calibrate OUT --labels … --rubric CANDIDATE` (the default rubric without the forbidden phrase
你没听明白): reading the labels and OUT's verdicts, re-scoring every labelled call from its stored
transcript with the candidate (no model), comparing, writing OUT/calibration/*.parquet and
OUT/reports/calibration.html. Prints the wall time, the re-scoring share and what changed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scoring import reference_transcripts, synthetic, write_synthetic_out  # noqa: E402


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished children (the forked scoring workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--dev-labels", type=Path, default=ROOT / "tests" / "data" / "dev_labels.json")
    parser.add_argument("--out", type=Path, default=None, help="keep the OUT folder here (default: a temp dir)")
    args = parser.parse_args()

    from qa_pipeline.batch.rescore import rescore
    from qa_pipeline.review.export import DESK_REVIEWS
    from qa_pipeline.calibration.command import calibrate_out
    from qa_pipeline.calibration.labels import FileLabels
    from qa_pipeline.scoring.rubric import rubric_path_default

    raw = json.loads(args.dev_labels.read_text(encoding="utf-8"))
    base = reference_transcripts(raw)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "out"
        out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        metas = write_synthetic_out(out, synthetic(args.calls, base))
        rescore(out, rubric_path_default(), reviews=DESK_REVIEWS)
        labels = Path(tmp) / "labels.csv"
        with labels.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["call_id", "item_id", "result"])
            for k, meta in enumerate(metas):
                label, _t = base[k % len(base)]
                for item_id, result in label["items"].items():
                    writer.writerow([meta.call_id, item_id, result])
        text = rubric_path_default().read_text(encoding="utf-8")
        candidate = Path(tmp) / "candidate.yaml"
        candidate.write_text("".join(line for line in text.splitlines(keepends=True) if "你没听明白" not in line),
                             encoding="utf-8")
        print(f"built and scored {args.calls} transcribed calls in {time.monotonic() - started:.1f} s", flush=True)

        started, cpu = time.monotonic(), _cpu_s()
        run = calibrate_out(out, FileLabels(labels), rubric=candidate)
        wall, cpu = time.monotonic() - started, _cpu_s() - cpu
        cand = run.candidate
        c = run.calibration
        print(f"qa calibrate --rubric: {c.overall.stats.n} labels on {cand.n_calls} calls in {wall:.1f} s "
              f"(reading transcripts + re-scoring with the candidate: {cand.seconds:.1f} s); "
              f"CPU {cpu:.1f} s in this process and its scoring workers; load average {os.getloadavg()[0]:.1f}")
        print(f"agreement before → after: {c.overall.stats.rate:.1%} → {cand.after.overall.stats.rate:.1%}; "
              f"{len(cand.changes)} verdicts change, on items {sorted({ch.item_id for ch in cand.changes})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
