"""Masking check: no customer number in any report page, even one Whisper split over utterances.

    python bench/masking.py                        # qa run on both dev corpora and the demo, then audit
    python bench/masking.py --no-run               # audit the earlier outputs only
    python bench/masking.py --audit OUT/reports    # audit any report folder

Every page under OUT/reports is read as a person sees it (text, not markup) and searched for a run
of 7 or more digits: Arabic, full-width or Chinese digit readings (零〇一…九, 幺, 两, 洞), joined by
spaces, commas, 、, 。 or dashes; the bubbles of one speaker are first joined end to end in their
order on the page (whatever the other side said in between), so a number split over utterances
counts as one. Calendar dates written 2025-03-03 and percentages (100%) are not numbers. This check is written apart from
qa_pipeline/redact.py on purpose: it is the yardstick, not the masker.

Prints, per corpus: pages and calls audited, mask tokens seen, runs of 7+ digits exposed (each
exposed run is listed); exits 1 when any run is exposed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIGITS = "0123456789０１２３４５６７８９零〇一二三四五六七八九幺两洞"
SEPARATORS = " \t\n\u3000\u00a0,，、。-－–—"
MIN_DIGITS = 7
_RUN = re.compile(f"[{DIGITS}](?:[{re.escape(SEPARATORS)}]{{0,3}}[{DIGITS}])*")
_DATE = re.compile(r"(?<![0-9])(?:19|20)[0-9]{2}-[0-9]{1,2}-[0-9]{1,2}(?![0-9])")
_PERCENT = re.compile(r"[0-9０-９]+(?:\.[0-9]+)?\s*[%％]")
_EDGE = " \t\n\u3000?？!！.。,，、"
_TOKEN = re.compile(r"［(?:手机号|电话|身份证号|银行卡号|号码|地址)］")
SPEAKER_LABELS = ("坐席", "客户", "未知")


class _Page(HTMLParser):
    """Text nodes of a page; the chat bubbles and dropped lines kept apart with their speaker."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.said: list[tuple[str, str]] = []  # (speaker, text) in page order
        self._stack: list[tuple[str, str]] = []  # (tag, class)
        self._side = ""
        self._in_dropped = False

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        if tag == "div" and cls.startswith("msg "):
            self._side = cls.split()[1]
        if tag == "details" and "dropped" in cls.split():
            self._in_dropped = True
        if tag not in ("br", "meta", "img", "input", "link", "audio", "source", "hr"):
            self._stack.append((tag, cls))

    def handle_endtag(self, tag):
        while self._stack:
            open_tag, cls = self._stack.pop()
            if open_tag == "details" and "dropped" in cls.split():
                self._in_dropped = False
            if open_tag == tag:
                break

    def handle_data(self, data):
        if not data.strip() or any(t in ("script", "style") for t, _c in self._stack):
            return
        tag, cls = self._stack[-1] if self._stack else ("", "")
        if tag == "div" and "bubble" in cls.split():
            self.said.append((self._side, data))
        elif self._in_dropped and tag == "li" and "：" in data:
            label, _, text = data.strip().partition("：")
            if label in SPEAKER_LABELS:
                self.said.append(("dropped-" + label, text))
            else:
                self.texts.append(data)
        else:
            self.texts.append(data)


def exposed_runs(text: str) -> list[str]:
    """Runs of 7+ digits in ``text`` (dates and percentages excepted)."""
    text = _PERCENT.sub(" # ", _DATE.sub(" # ", text))
    return [m.group() for m in _RUN.finditer(text) if sum(ch in DIGITS for ch in m.group()) >= MIN_DIGITS]


def page_streams(html: str) -> list[str]:
    """What a reader sees, as strings to search: every text node, and each speaker's bubbles
    joined end to end (and the dropped lines of each speaker, likewise)."""
    page = _Page()
    page.feed(html)
    page.close()
    streams: dict[str, list[str]] = {}
    for speaker, text in page.said:
        streams.setdefault(speaker, []).append(text.strip(_EDGE))
    return page.texts + ["".join(parts) for parts in streams.values()]


@dataclass
class Audit:
    pages: int = 0
    calls: int = 0
    tokens: int = 0
    exposed: list[tuple[str, str]] = None  # (page, run)


def audit(reports: Path) -> Audit:
    result = Audit(exposed=[])
    for page in sorted(reports.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        result.pages += 1
        result.calls += page.parent.name == "calls"
        streams = page_streams(html)
        result.tokens += sum(len(_TOKEN.findall(s)) for s in streams)
        for stream in streams:
            result.exposed.extend((str(page.relative_to(reports)), run) for run in exposed_runs(stream))
    return result


def _run(name: str, command: list[str]) -> None:
    print(f"$ {' '.join(command)}", file=sys.stderr)
    done = subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{name}: qa exited {done.returncode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev-calls", type=Path, default=ROOT.parent / "shared" / "dev-calls")
    parser.add_argument("--dev-calls-2", type=Path, default=ROOT.parent / "shared" / "dev-calls-2")
    parser.add_argument("--out", type=Path, default=Path("/tmp/qa-masking"))
    parser.add_argument("--no-run", action="store_true", help="audit the earlier outputs in --out only")
    parser.add_argument("--audit", type=Path, help="audit this report folder only")
    parser.add_argument("qa_args", nargs="*", help="extra arguments for `qa run` (after --)")
    args = parser.parse_args()

    if args.audit:
        corpora = {str(args.audit): args.audit}
    else:
        corpora = {"dev-calls": args.out / "dev-calls", "dev-calls-2": args.out / "dev-calls-2", "demo": args.out / "demo"}
        if not args.no_run:
            qa = [sys.executable, str(ROOT / "cli.py")]
            for name, corpus in (("dev-calls", args.dev_calls), ("dev-calls-2", args.dev_calls_2)):
                _run(name, qa + ["run", str(corpus / "audio"), "--out", str(corpora[name]),
                                 "--manifest", str(corpus / "manifest.csv"), *args.qa_args])
            _run("demo", qa + ["demo", "--out", str(corpora["demo"])])
        corpora = {name: out / "reports" for name, out in corpora.items()}

    print(f"{'corpus':<14} {'pages':>5} {'calls':>5} {'masked':>6} {'exposed 7+ digit runs':>22}")
    exposed = 0
    for name, reports in corpora.items():
        result = audit(reports)
        exposed += len(result.exposed)
        print(f"{name:<14} {result.pages:>5} {result.calls:>5} {result.tokens:>6} {len(result.exposed):>22}")
        for page, run in result.exposed:
            print(f"    {page}: {run}")
    return 1 if exposed else 0


if __name__ == "__main__":
    sys.exit(main())
