"""The masking check of bench/masking.py: no run of 7+ digits in any report page, a number split
over one speaker's utterances counted as one. The yardstick first, then cards built to leak, then
the real demo and test calls through the real model."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest

from factories import make_meta, make_score, make_transcript
from qa_pipeline.batch.config import Inputs, RunConfig, TranscribeConfig
from qa_pipeline.batch.engine import run_batch
from qa_pipeline.batch.local import LocalEngine
from qa_pipeline.demo import demo_dir
from qa_pipeline.output import report
from qa_pipeline.records import AGENT, CUSTOMER, PASS, ItemResult
from qa_pipeline.scoring.rubric import rubric_path_default

_PATH = Path(__file__).resolve().parent.parent / "bench" / "masking.py"
_spec = importlib.util.spec_from_file_location("bench_masking", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_masking"] = bench
_spec.loader.exec_module(bench)


def _chat(*bubbles: tuple[str, str]) -> str:
    body = "".join(f'<div class="msg {side}"><div class="who">x</div><div class="bubble">{text}</div></div>'
                   for side, text in bubbles)
    return f'<html><body><div class="chat">{body}</div></body></html>'


def test_the_yardstick_joins_one_speakers_bubbles_and_finds_the_number():
    html = _chat((CUSTOMER, "请号是0571"), (AGENT, "嗯"), (CUSTOMER, "5938"), (CUSTOMER, "1260。"))
    assert [run for s in bench.page_streams(html) for run in bench.exposed_runs(s)] == ["057159381260"]
    assert bench.exposed_runs("幺三九洞五七二八八四六") and bench.exposed_runs("139-052-8846")
    assert not bench.exposed_runs("2025-03-03 09:14，静默 12.5 秒，得分 85.5，工号1001")
    assert not bench.exposed_runs("03-03 0%；03-06 100%；03-07 100%")  # a sparkline's days and rates
    assert bench.exposed_runs("03-06 1001234")
    assert not [r for s in bench.page_streams(_chat((CUSTOMER, "0571"), (AGENT, "5938"))) for r in bench.exposed_runs(s)]


def test_the_yardstick_takes_fillers_dots_and_commas_out_between_digit_groups():
    for exposed in ("135呃2468呃9753", "137.1234.5678", "3301.062,198.7", "一三五那个二四六八嗯九七五三"):
        assert bench.exposed_runs(f"号码是{exposed}对吗") != [], exposed
    for kept in ("233.2-236.4 秒出现忙音", "[busy tone 233.2-236.4 s]", "2025.03.07", "一共12,800元", "得分 85.5"):
        assert bench.exposed_runs(kept) == [], kept


def test_every_form_issue_21_found_is_masked_on_every_page_and_in_the_card_file_name(tmp_path: Path):
    """The bench's forms card (fillers, dots and commas, an order number, an ID read with 幺/洞 and
    艾克斯, a home address, a phone number as the call_id), written by the real report writer."""
    reports = bench.write_forms(tmp_path) / "reports"
    result = bench.audit(reports, bench.FORMS_SECRETS)
    assert (result.pages, result.calls) == (3, 1)
    assert result.exposed == []
    assert result.tokens >= len(bench.FORMS) - 2
    (card,) = (reports / "calls").iterdir()
    assert bench.FORMS_CALL_ID not in card.name and "5728846" not in card.read_text(encoding="utf-8")
    index = (reports / "index.html").read_text(encoding="utf-8")
    assert f'href="calls/{quote(card.name)}"' in index  # the index still links to it


def _split_number_call(call_id: str = "split"):
    lines = (
        (AGENT, 0.4, 3.0, "您好，请问有什么可以帮您"),
        (CUSTOMER, 3.5, 5.0, "我的账号是0571"),
        (AGENT, 5.1, 5.4, "嗯"),
        (CUSTOMER, 5.5, 6.5, "5938"),
        (CUSTOMER, 6.8, 7.9, "1260"),
        (AGENT, 8.3, 10.0, "跟您确认一下 手机号是139"),
        (AGENT, 10.1, 12.0, "0572 8846 对吗?"),
        (CUSTOMER, 12.5, 14.0, "对，幺三九洞五七二"),
        (CUSTOMER, 14.1, 15.0, "八八四六"),
        (CUSTOMER, 15.5, 17.0, "139-052-8846"),
    )
    transcript = make_transcript(call_id, lines=lines, dropped=((CUSTOMER, 17.5, 18.0, "7788 9900"),))
    items = (
        ItemResult(call_id, "confirm_details", "复述确认", PASS, 15, 15,
                   "agent repeats the number 0572 at 10.1 s (customer said 0571 at 3.5 s)",
                   "手机号是139 … 0572 8846", 8.3, 12.0, matched_by="text"),
    )
    return transcript, replace(make_score(call_id), items=items)


def test_a_card_with_numbers_split_over_bubbles_exposes_none(tmp_path: Path):
    transcript, score = _split_number_call()
    report.render_reports(tmp_path, [score], {"split": transcript}, {"split": make_meta("split")})
    result = bench.audit(tmp_path / "reports")
    assert result.pages == 3 and result.exposed == []
    card = (tmp_path / "reports" / "calls" / "split.html").read_text(encoding="utf-8")
    assert "5938" not in card and "1260" not in card and "139" not in card and "8846" not in card
    assert "您好，请问有什么可以帮您" in card and ">嗯<" in card


@pytest.mark.slow
def test_demo_and_test_calls_expose_no_number(tmp_path: Path, calls_dir: Path, transcript_cache: Path):
    """Every page of the bundled demo (dev_01, dev_10, dev_12: phone and account numbers dictated
    in pieces) and of the two test calls, through the real model."""
    for name, folder in (("demo", demo_dir()), ("calls", calls_dir)):
        out = tmp_path / name
        config = RunConfig(Inputs(folder, manifest=folder / "manifest.csv"), out,
                           TranscribeConfig(cache_dir=transcript_cache), rubric=rubric_path_default())
        summary = run_batch(config, LocalEngine())
        assert summary.failed == 0
        result = bench.audit(out / "reports")
        assert result.calls == summary.total
        assert result.exposed == [], name
        if name == "demo":
            assert result.tokens > 0  # the demo's customers do give numbers
