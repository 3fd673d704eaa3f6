"""Masking check: no customer number in any report page, even one Whisper split over utterances.

    python bench/masking.py                        # qa run on both dev corpora and the demo, then audit
    python bench/masking.py --no-run               # audit the earlier outputs only
    python bench/masking.py --audit OUT/reports    # audit any report folder

Every page under OUT/reports is read as a person sees it (text, not markup), and so is its file
name, and searched for a run of 7 or more digits: Arabic, full-width or Chinese digit readings
(零〇一…九, 幺, 两, 洞), once the spaces, commas, dots, 、, 。, dashes and fillers (呃, 额, 嗯, 啊, 唔,
那个) between digit groups are taken out (135呃2468呃9753, 137.1234.5678 and 3301.062,198.7 are
runs); the bubbles of one speaker are first joined end to end in their order on the page
(whatever the other side said in between), so a number split over utterances counts as one.
Calendar dates (2025-03-03, 2025/3/3, 2025.03.03) and quantities with their unit (100%, 12.5 秒,
233.2-236.4 s, 12,800 元) are not numbers. This
check is written apart from qa_pipeline/redact.py on purpose: it is the yardstick, not the masker.

A fourth corpus, "forms", is one call card written through qa_pipeline's report writer with every
form a number takes on a page that issue 21 found unmasked: fillers inside a number, digit groups
with dots and commas (in a bubble and in an evidence quote), an order number mixing letters and
digits, an ID card read with 幺/洞 and ending in 艾克斯, a home address without a cue word, and a
phone number as the call_id (index, card, card file name). Besides runs of 7+ digits, its pages
are searched for the order number and the street address themselves.

Prints, per corpus: pages and calls audited, mask tokens seen, runs of 7+ digits (and, for the
forms, other secrets) exposed, each listed; exits 1 when any is exposed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIGITS = "0123456789０１２３４５６７８９零〇一二三四五六七八九幺两洞"
SEPARATORS = " \t\n\u3000\u00a0,，、。.．-－–—"
FILLERS = ("呃", "额", "嗯", "啊", "唔", "那个")
MIN_DIGITS = 7
_BETWEEN = f"(?:[{re.escape(SEPARATORS)}]|{'|'.join(FILLERS)})"
_RUN = re.compile(f"[{DIGITS}](?:{_BETWEEN}{{0,3}}[{DIGITS}])*")
_DATE = re.compile(r"(?<![0-9])(?:19|20)[0-9]{2}([-/.])[0-9]{1,2}\1[0-9]{1,2}(?![0-9])")
# a quantity with its unit: 100%, 12.5 秒, 233.2-236.4 s, 12,800 元
_QUANTITY = re.compile(r"[0-9０-９]+(?:[,，][0-9]{3})*(?:\.[0-9]+)?(?:\s*[-–~至到]\s*[0-9]+(?:[,，][0-9]{3})*(?:\.[0-9]+)?)?"
                       r"\s*(?:[%％]|秒|毫秒|分钟|小时|元|块|(?:s|ms|dB)(?![A-Za-z]))")
_EDGE = " \t\n\u3000?？!！.。,，、"
_TOKEN = re.compile(r"［(?:手机号|电话|身份证号|银行卡号|号码|地址|单号)］")
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
    text = _QUANTITY.sub(" # ", _DATE.sub(" # ", text))
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


def audit(reports: Path, secrets: tuple[str, ...] = ()) -> Audit:
    """Every page under ``reports``: its text and its file name searched for runs of 7+ digits,
    and for each of ``secrets`` (words that must never show)."""
    result = Audit(exposed=[])
    for page in sorted(reports.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        result.pages += 1
        result.calls += page.parent.name == "calls"
        streams = page_streams(html) + [page.stem]
        result.tokens += sum(len(_TOKEN.findall(s)) for s in streams)
        for stream in streams:
            result.exposed.extend((str(page.relative_to(reports)), run) for run in exposed_runs(stream))
            result.exposed.extend((str(page.relative_to(reports)), secret) for secret in secrets if secret in stream)
    return result


# issue 21's forms: (speaker, what Whisper wrote); the phone number is also the call_id
FORMS_CALL_ID = "13905728846"
FORMS = (
    ("agent", "您好，这里是客服中心，请问有什么可以帮您？"),
    ("customer", "我的手机号是135呃2468呃9753"),
    ("agent", "跟您确认一下，号码是137.1234.5678对吗？"),
    ("customer", "身份证号是3301.062,198.7"),
    ("customer", "还有订单号SF1234AB5678"),
    ("customer", "我的身份证是幺幺洞幺洞幺幺九九洞洞三洞七幺二三艾克斯"),
    ("customer", "我家是杭州市西湖区文三路100号3单元"),
    ("agent", "好的，已经为您登记。"),
)
FORMS_SECRETS = ("SF1234AB5678", "1234AB", "文三路100号")


def write_forms(out: Path) -> Path:
    """OUT/reports of one call card holding every form of FORMS, written by qa_pipeline's report
    writer (the installed one: this checkout's, or another's with PYTHONPATH=that checkout)."""
    from qa_pipeline.output.report import render_reports
    from qa_pipeline.records import CallMeta, CallScore, CallTranscript, ItemResult, Utterance

    shutil.rmtree(out, ignore_errors=True)
    call_id = FORMS_CALL_ID
    utterances = tuple(
        Utterance(f"{call_id}-{n:05d}", call_id, speaker, 0 if speaker == "agent" else 1, 3.0 * n, 3.0 * n + 2.5,
                  text, text, -0.2, 0.05)
        for n, (speaker, text) in enumerate(FORMS))
    transcript = CallTranscript(call_id, 30.0, 2, utterances, "base")
    item = ItemResult(call_id, "confirm_details", "复述确认", "pass", 15.0, 15.0,
                      "坐席复述了客户的号码 137.1234.5678", evidence_text="号码是137.1234.5678对吗",
                      evidence_start=6.0, evidence_end=8.5, matched_by="text")
    score = CallScore(call_id, "ok", agent_id="A1001", agent_name="王晓雨", team="宽带服务组",
                      started_at="2025-03-07T10:41:55+08:00", duration_s=30.0, rubric_id="default.zh",
                      rubric_version="1", score=100.0, passed=True, critical_failed=False, pass_score=80.0,
                      model="base", processed_at="2025-03-07T03:00:00+00:00", items=(item,))
    meta = CallMeta(call_id, out / f"{call_id}.wav", agent_id="A1001", started_at=score.started_at)
    render_reports(out, [score], {call_id: transcript}, {call_id: meta})
    return out


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
    parser.add_argument("--no-run", action="store_true", help="audit the earlier outputs in --out only (and the forms)")
    parser.add_argument("--audit", type=Path, help="audit this report folder only")
    parser.add_argument("qa_args", nargs="*", help="extra arguments for `qa run` (after --)")
    args = parser.parse_args()

    if args.audit:
        corpora = {str(args.audit): args.audit}
    else:
        corpora = {"dev-calls": args.out / "dev-calls", "dev-calls-2": args.out / "dev-calls-2", "demo": args.out / "demo",
                   "forms": args.out / "forms"}
        if not args.no_run:
            qa = [sys.executable, str(ROOT / "cli.py")]
            for name, corpus in (("dev-calls", args.dev_calls), ("dev-calls-2", args.dev_calls_2)):
                _run(name, qa + ["run", str(corpus / "audio"), "--out", str(corpora[name]),
                                 "--manifest", str(corpus / "manifest.csv"), *args.qa_args])
            _run("demo", qa + ["demo", "--out", str(corpora["demo"])])
        write_forms(corpora["forms"])  # no model: written again every time
        corpora = {name: out / "reports" for name, out in corpora.items()}

    print(f"{'corpus':<14} {'pages':>5} {'calls':>5} {'masked':>6} {'exposed 7+ digit runs':>22}")
    exposed = 0
    for name, reports in corpora.items():
        result = audit(reports, FORMS_SECRETS if name == "forms" else ())
        exposed += len(result.exposed)
        print(f"{name:<14} {result.pages:>5} {result.calls:>5} {result.tokens:>6} {len(result.exposed):>22}")
        for page, run in result.exposed:
            print(f"    {page}: {run}")
    return 1 if exposed else 0


if __name__ == "__main__":
    sys.exit(main())
