"""Review desk speed: `qa review` on a night of N calls (synthetic transcripts, real scoring).

    .venv/bin/python bench/review.py --calls 1000

Builds OUT as `qa run` would leave it for N calls made from the labelled dev calls' reference
transcripts (bench/scoring.py's generator: 40 agents, 4 teams; here all on one night), scores it
with the real `qa score` code and adds an inspector. Then it starts `qa review OUT` as a user
would and measures, from the moment the process is started:

- time until the desk answers at all, and until an inspector has signed in and the day's queue
  page has come back with its entries ("usable queue");
- the load time of call-card pages (GET /calls/<id>, server time + local HTTP), the first one
  (it reads the night's transcripts) and then --cards more on random calls: median and p95.
The bound in issue 16: p95 under 200 ms on the 2-core machine.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PASSWORD = "bench-password"


def build(out: Path, n: int) -> None:
    from scoring import reference_transcripts, synthetic

    from qa_pipeline.batch.rescore import rescore
    from qa_pipeline.review.export import DESK_REVIEWS
    from qa_pipeline.batch.store import RUN_FILE
    from qa_pipeline.review.auth import hash_password
    from qa_pipeline.review.db import ReviewDB
    from qa_pipeline.scoring.rubric import rubric_path_default
    from qa_pipeline.output.tables import write_transcripts

    base = reference_transcripts(json.loads((ROOT / "tests" / "data" / "dev_labels.json").read_text(encoding="utf-8")))
    metas, transcripts = zip(*synthetic(n, base))
    metas = [replace(m, started_at="2025-04-07" + m.started_at[10:]) for m in metas]  # one night
    out.mkdir(parents=True, exist_ok=True)
    write_transcripts(out, list(transcripts))
    (out / RUN_FILE).write_text(json.dumps({"audio_dir": "/nonexistent", "model": "reference", "calls": [
        {**asdict(m), "path": str(m.path)} for m in metas]}, ensure_ascii=False), encoding="utf-8")
    rescore(out, rubric_path_default(), reviews=DESK_REVIEWS)
    ReviewDB.open(out).put_user("bench", "inspector", None, hash_password(PASSWORD))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--cards", type=int, default=200, help="call cards to load after the first")
    parser.add_argument("--out", type=Path, default=None, help="keep the OUT folder here (default: a temp dir)")
    args = parser.parse_args()

    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "out"
        t0 = time.monotonic()
        build(out, args.calls)
        print(f"built and scored {args.calls} calls in {time.monotonic() - t0:.1f} s", flush=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "qa"), "review", str(out), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=os.environ.copy())
        try:
            client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
            while True:
                try:
                    login_page = client.get("/login")
                    break
                except httpx.TransportError:
                    if server.poll() is not None:
                        raise SystemExit("qa review exited")
                    time.sleep(0.02)
            up = time.monotonic() - started
            token = html.unescape(re.search(r'name="csrftoken" value="([^"]+)"', login_page.text).group(1))
            client.post("/login", data={"name": "bench", "password": PASSWORD, "next": "/", "csrftoken": token})
            queue = client.get("/queue")
            usable = time.monotonic() - started
            entries = len(re.findall(r'<tr class="entry ', queue.text))
            assert queue.status_code == 200 and entries, queue.status_code
            print(f"qa review start → desk answers: {up:.2f} s; → signed in, queue of {entries} entries shown: {usable:.2f} s")
            ids = sorted(set(re.findall(r'data-call="([^"]+)"', queue.text)))
            all_ids = [f"c{k:06d}" for k in range(args.calls)]
            t = time.monotonic()
            assert client.get(f"/calls/{ids[0]}").status_code == 200
            print(f"first call card (reads the night's transcripts): {(time.monotonic() - t) * 1000:.0f} ms")
            rng = random.Random(1)
            times = []
            for call_id in rng.sample(all_ids, min(args.cards, len(all_ids))):
                t = time.monotonic()
                response = client.get(f"/calls/{call_id}")
                times.append((time.monotonic() - t) * 1000)
                assert response.status_code == 200, call_id
            times.sort()
            p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
            print(f"call card page load over {len(times)} cards: median {statistics.median(times):.0f} ms, "
                  f"p95 {p95:.0f} ms, max {times[-1]:.0f} ms")
            t = time.monotonic()
            client.get("/queue?day=all&state=all")
            print(f"queue page, every day and state: {(time.monotonic() - t) * 1000:.0f} ms")
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
