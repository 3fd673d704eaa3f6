"""Review desk speed: `qa review` on a night of N calls (synthetic transcripts, real scoring).

    .venv/bin/python bench/review.py --calls 1000

Builds OUT as `qa run` would leave it for N calls made from the labelled dev calls' reference
transcripts (bench/scoring.py's generator: 40 agents, 4 teams; here all on one night), scores it
with the real `qa score` code and adds an inspector. Then it starts `qa review OUT` as a user
would and measures, from the moment the process is started:

- time until the desk answers at all, and until an inspector has signed in and the day's queue
  page has come back with its entries ("usable queue");
- the load time of call-card pages (GET /calls/<id>, server time + local HTTP), the first one
  (it reads the night's transcripts) and then --cards more on random calls: median and p95, while
  the desk builds its search index (started with the desk when the transcripts changed) and again
  once it is built.
The bound in issue 16: p95 under 200 ms on the 2-core machine.

Search (issue 22): the desk's search page over HTTP on the same OUT (after its index is built), and,
with --search-calls N (default 10000), the index itself on N synthetic calls: build time, size, and
the latency of what a QA lead types (phrases of 2 to 8 characters, several terms, the second page),
median and p95 over --repeat runs. It also compares the trigram index with jieba-segmented text
(FTS5 unicode61, the query segmented the same way; jieba is a dependency for the groups of requests):
recall and precision against the plain substring truth.

    .venv/bin/python bench/review.py --calls 1000 --search-calls 10000
    .venv/bin/python bench/review.py --calls 0 --search-calls 10000     # the search index alone
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


QUERIES = ("不归我管", "没办法", "稍等", "久等了", "投诉", "工号", "您好", "请问还有", "营业厅", "退款", "账单",
           "这是规定", "还有什么可以帮您", "身份证", "请问 宽带", "宽带 账单")


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[max(0, int(round(q * len(values))) - 1)]


def search_bench(n: int, repeat: int) -> None:
    """The search index on ``n`` synthetic calls: build, size, latency; trigram vs jieba when it can."""
    import sqlite3

    from scoring import reference_transcripts, synthetic

    from qa_pipeline.review.search import SearchIndex, _where, build_index, terms_of

    base = reference_transcripts(json.loads((ROOT / "tests" / "data" / "dev_labels.json").read_text(encoding="utf-8")))
    calls = list(synthetic(n, base))
    transcripts = {t.call_id: t for _, t in calls}
    days = {m.call_id: m.started_at[:10] for m, _ in calls}
    n_utt = sum(len(t.utterances) for t in transcripts.values())
    with tempfile.TemporaryDirectory() as tmp:
        index = SearchIndex(Path(tmp))
        t = time.monotonic()
        build_index(index.path, transcripts, days, "bench")
        built = time.monotonic() - t
        print(f"search index of {n} calls ({n_utt} utterances): built in {built:.1f} s, "
              f"{index.path.stat().st_size / 1e6:.1f} MB", flush=True)
        all_times, first_pages = [], []
        print(f"{'query':<16} {'hits':>7} {'median ms':>10} {'p95 ms':>8} {'page 2 ms':>10}")
        for q in QUERIES:
            times = []
            for _ in range(repeat):
                t = time.monotonic()
                found = index.search(q)
                times.append((time.monotonic() - t) * 1000)
            t = time.monotonic()
            index.search(q, page=2)
            page2 = (time.monotonic() - t) * 1000
            all_times += times
            first_pages.append(statistics.median(times))
            print(f"{q:<16} {found.total:>7} {statistics.median(times):>10.1f} {percentile(times, 0.95):>8.1f} {page2:>10.1f}")
        print(f"every query, every run ({len(all_times)}): median {statistics.median(all_times):.1f} ms, "
              f"p95 {percentile(all_times, 0.95):.1f} ms, max {max(all_times):.1f} ms")

        try:
            import jieba
        except ImportError:
            print("jieba is not installed: trigram vs jieba not compared (pip install jieba)")
            return
        jieba.setLogLevel(60)
        conn = sqlite3.connect(index.path)
        rows = conn.execute("SELECT rowid, text FROM utterances").fetchall()
        seg = sqlite3.connect(":memory:")
        seg.execute("CREATE VIRTUAL TABLE u USING fts5(text, tokenize = 'unicode61')")
        t = time.monotonic()
        seg.executemany("INSERT INTO u (rowid, text) VALUES (?, ?)", ((r, " ".join(jieba.cut(x))) for r, x in rows))
        seg_built = time.monotonic() - t
        print(f"jieba-segmented index: built in {seg_built:.1f} s (segmenting included)")
        print(f"{'query':<16} {'truth':>7} {'trigram recall':>15} {'precision':>10} {'jieba recall':>13} {'precision':>10}")
        totals = {"truth": 0, "tri": 0, "tri_ok": 0, "jb": 0, "jb_ok": 0}
        for q in QUERIES:
            terms = terms_of(q)
            truth = {r for r, x in rows if all(term in x for term in terms)}
            where, args = _where(terms, None)
            tri = {r for (r,) in conn.execute(f"SELECT rowid FROM utterances WHERE {where}", args)}
            phrase = " AND ".join('"' + " ".join(w for w in jieba.cut(term) if w.strip()) + '"' for term in terms)
            jb = {r for (r,) in seg.execute("SELECT rowid FROM u WHERE u MATCH ?", (phrase,))}
            for key, found in (("tri", tri), ("jb", jb)):
                totals[key] += len(found)
                totals[f"{key}_ok"] += len(found & truth)
            totals["truth"] += len(truth)

            def rate(a: int, b: int) -> str:
                return f"{a / b:.1%}" if b else "—"

            print(f"{q:<16} {len(truth):>7} {rate(len(tri & truth), len(truth)):>15} {rate(len(tri & truth), len(tri)):>10} "
                  f"{rate(len(jb & truth), len(truth)):>13} {rate(len(jb & truth), len(jb)):>10}")
        print(f"all queries: trigram recall {totals['tri_ok'] / totals['truth']:.1%}, precision "
              f"{totals['tri_ok'] / max(1, totals['tri']):.1%}; jieba recall {totals['jb_ok'] / totals['truth']:.1%}, "
              f"precision {totals['jb_ok'] / max(1, totals['jb']):.1%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--cards", type=int, default=200, help="call cards to load after the first")
    parser.add_argument("--out", type=Path, default=None, help="keep the OUT folder here (default: a temp dir)")
    parser.add_argument("--search-calls", type=int, default=10000, help="calls for the search index measure (0: none)")
    parser.add_argument("--repeat", type=int, default=20, help="runs of each search query")
    args = parser.parse_args()
    if args.calls <= 0:
        if args.search_calls:
            search_bench(args.search_calls, args.repeat)
        return 0

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
            t = time.monotonic()
            page = client.get("/search?q=" + QUERIES[0])
            while "search-building" in page.text:
                time.sleep(0.2)
                page = client.get("/search?q=" + QUERIES[0])
            print(f"search page, first query (the index built since the desk started): {(time.monotonic() - t) * 1000:.0f} ms")
            times = []
            for _ in range(max(1, args.repeat // 4)):
                for q in QUERIES:
                    t = time.monotonic()
                    assert client.get("/search", params={"q": q}).status_code == 200
                    times.append((time.monotonic() - t) * 1000)
            print(f"search page over HTTP, {len(times)} queries on {args.calls} calls: median "
                  f"{statistics.median(times):.0f} ms, p95 {percentile(times, 0.95):.0f} ms")
            times = []  # the same cards again, now that the search index is built (it is built at start)
            for call_id in rng.sample(all_ids, min(args.cards, len(all_ids))):
                t = time.monotonic()
                assert client.get(f"/calls/{call_id}").status_code == 200, call_id
                times.append((time.monotonic() - t) * 1000)
            print(f"call card page load over {len(times)} cards, search index built: median "
                  f"{statistics.median(times):.0f} ms, p95 {percentile(times, 0.95):.0f} ms")
        finally:
            server.terminate()
            server.wait(timeout=10)
    if args.search_calls:
        search_bench(args.search_calls, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
