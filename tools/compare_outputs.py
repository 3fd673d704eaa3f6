"""Do two versions of the code give the same outputs? Runs `qa run` from two git refs on the same
calls and compares everything they wrote.

Each ref is checked out with `git worktree add` into a temp folder and run from there
(`python <checkout>/cli.py`, so its own qa_pipeline is imported) with this interpreter, so both use
the same installed dependencies; each gets a fresh transcript cache of its own unless --cache-dir
is given, so each really transcribes. Compared:

- every Parquet file (transcripts, recordings, scores/calls/…, scores/items/…): the same schema, the
  same rows in the same order, cell by cell, every column except processed_at;
- every report page and other text file (run.json, failed.csv, …): the same text once the
  processed_at values of the runs (as stored, and as a page shows them) are replaced by a placeholder;
- every part (parts/*.json): the same JSON once score.processed_at is set aside;
- the same set of files (the run logs and the lock file aside: times and process ids).

Exit 0 when identical, 1 when anything differs (each difference is printed), 2 on a failed run.

    .venv/bin/python tools/compare_outputs.py --base main --head HEAD --calls ../shared/dev-calls
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
SKIP = ("logs/", ".lock")
TIME = "processed_at"


def checkout(ref: str, where: Path) -> str:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(where), ref], check=True)
    return subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def run(code: Path, calls: Path, manifest: Path | None, out: Path, cache: Path, extra: list[str]) -> float:
    command = [sys.executable, str(code / "cli.py"), "run", str(calls), "--out", str(out), "--cache-dir", str(cache)]
    command += ["--manifest", str(manifest)] if manifest else []
    env = {**os.environ, "PYTHONPATH": str(code)}
    check = subprocess.run([sys.executable, "-c", "import qa_pipeline; print(qa_pipeline.__file__)"], cwd=code,
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not Path(check).resolve().is_relative_to(code.resolve()):
        sys.exit(f"{code}: imports qa_pipeline from {check}, not from the checkout")
    result = subprocess.run(command + extra, cwd=code, env=env, capture_output=True, text=True)
    print(result.stdout.strip().splitlines()[0] if result.stdout.strip() else "(no output)", flush=True)
    if result.returncode not in (0, 1):
        print(result.stdout + result.stderr, file=sys.stderr)
        sys.exit(2)
    return result.returncode


def files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()
            and not str(p.relative_to(out)).startswith(SKIP)}


def times(out: Path) -> set[str]:
    """Every processed_at value in the run's score tables, as stored and as a page shows it."""
    table = pq.read_table(out / "scores" / "calls", partitioning="hive")
    stamps = {v for v in table.column(TIME).to_pylist() if v}
    return stamps | {datetime.fromisoformat(v).strftime("%Y-%m-%d %H:%M:%S") for v in stamps}


def compare_parquet(a: Path, b: Path) -> list[str]:
    ta, tb = pq.read_table(a), pq.read_table(b)
    if ta.schema != tb.schema:
        return [f"schema differs:\n  {ta.schema}\n  {tb.schema}"]
    if ta.num_rows != tb.num_rows:
        return [f"{ta.num_rows} rows vs {tb.num_rows}"]
    diffs = []
    for name in ta.column_names:
        if name == TIME:
            continue
        for row, (x, y) in enumerate(zip(ta.column(name).to_pylist(), tb.column(name).to_pylist())):
            if x != y:
                diffs.append(f"row {row} {name}: {x!r} vs {y!r}")
    return diffs


def compare_text(a: Path, b: Path, stamps: set[str]) -> list[str]:
    def clean(path: Path) -> list[str]:
        text = path.read_text(encoding="utf-8")
        for stamp in stamps:
            text = text.replace(stamp, f"<{TIME}>")
        return text.splitlines()

    la, lb = clean(a), clean(b)
    diffs = [f"line {n + 1}: {x!r} vs {y!r}" for n, (x, y) in enumerate(zip(la, lb)) if x != y]
    if len(la) != len(lb):
        diffs.append(f"{len(la)} lines vs {len(lb)}")
    return diffs


def compare_part(a: Path, b: Path) -> list[str]:
    def load(path: Path) -> dict:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["score"].pop(TIME, None)
        return data

    da, db = load(a), load(b)
    return [f"{key}: differs" for key in sorted(set(da) | set(db)) if da.get(key) != db.get(key)]


def compare(a: Path, b: Path) -> tuple[int, dict[str, list[str]]]:
    """(files compared, {file: differences})."""
    fa, fb = files(a), files(b)
    problems: dict[str, list[str]] = {}
    for name in sorted(fa ^ fb):
        problems[name] = [f"only in {'base' if name in fa else 'head'}"]
    stamps = times(a) | times(b)
    for name in sorted(fa & fb):
        if name.endswith(".parquet"):
            diffs = compare_parquet(a / name, b / name)
        elif name.startswith("parts/") and name.endswith(".json"):
            diffs = compare_part(a / name, b / name)
        else:
            diffs = compare_text(a / name, b / name, stamps)
        if diffs:
            problems[name] = diffs
    return len(fa & fb), problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="main", help="git ref of the reference version")
    parser.add_argument("--head", default="HEAD", help="git ref of the version under test")
    parser.add_argument("--calls", type=Path, default=ROOT.parent / "shared" / "dev-calls",
                        help="a folder with audio/ and manifest.csv (the dev calls), or a folder of recordings")
    parser.add_argument("--manifest", type=Path, default=None, help="default: CALLS/manifest.csv when there is one")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="one transcript cache for both runs (default: a fresh one each, so each transcribes)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the two output folders here")
    parser.add_argument("qa_args", nargs="*", help="extra arguments for `qa run` (after --)")
    args = parser.parse_args()

    calls = args.calls.resolve()
    audio = calls / "audio" if (calls / "audio").is_dir() else calls
    manifest = args.manifest or (calls / "manifest.csv" if (calls / "manifest.csv").is_file() else None)
    with tempfile.TemporaryDirectory(prefix="qa-compare-") as tmp:
        work = args.keep or Path(tmp)
        outs = []
        try:
            for label, ref in (("base", args.base), ("head", args.head)):
                code = Path(tmp) / f"code-{label}"
                commit = checkout(ref, code)
                out = work / f"out-{label}"
                print(f"{label}: {ref} ({commit}) → {out}", flush=True)
                run(code, audio, manifest, out, args.cache_dir or Path(tmp) / f"cache-{label}", args.qa_args)
                outs.append(out)
        finally:
            for label in ("base", "head"):
                if (Path(tmp) / f"code-{label}").exists():
                    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                    str(Path(tmp) / f"code-{label}")], check=False)
        n, problems = compare(*outs)
    for name, diffs in problems.items():
        print(f"DIFFERS {name}: {len(diffs)} difference(s)")
        for line in diffs[:10]:
            print(f"  {line}")
    print(f"{n} files compared: " + ("identical (processed_at aside)" if not problems else f"{len(problems)} differ"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
