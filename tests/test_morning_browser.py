"""The morning's pages in headless Chromium: the mood curve on a call card, trends and reasons on the
index, de-escalation on the agent page, the reason pages — from a real `qa score` over five weeks
of calls (hand-built transcripts, the real recordings of tests/data/calls for the player)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

import pytest

from factories import make_meta, make_transcript
from qa_pipeline.batch.rescore import rescore
from qa_pipeline.batch.store import RUN_FILE
from qa_pipeline.output.tables import write_transcripts
from qa_pipeline.records import AGENT, CUSTOMER
from qa_pipeline.scoring.rubric import rubric_path_default
from test_browser import AUDIO_READY, XSS, Page, _assert_clean, artifacts_dir, browser, page  # noqa: F401 (the fixtures)

CALLS = Path(__file__).resolve().parent / "data" / "calls"
LAST = date(2025, 3, 31)
REQUESTS = ("你好，我们家从昨晚开始就停电了，整栋楼都是黑的。", "你好，我买的东西一个星期了还没收到，物流也不动。",
            "喂，你好，我家里突然没电了，什么时候能修好？", "我的包裹显示在路上，可是五天了还没送到。")


def call(call_id: str, request: str, angry: bool) -> tuple:
    middle = "你们这服务也太差了，说好的今天解决，到现在都没人管，我要投诉！" if angry else "好的，那我再等等看。"
    return make_transcript(call_id, (
        (AGENT, 0.4, 3.1, "您好，这里是客服中心，工号一零零一，请问有什么可以帮您？"),
        (CUSTOMER, 3.6, 7.9, request),
        (AGENT, 8.3, 11.0, "好的，我帮您查一下，请您稍等。"),
        (CUSTOMER, 11.4, 16.0, middle),
        (AGENT, 16.5, 21.0, "非常抱歉给您带来不便，我马上给您加急处理，今天之内给您回复。"),
        (CUSTOMER, 21.4, 23.0, f"好的，谢谢你{XSS}。" if call_id == "c_evil" else "好的，谢谢你。"),
        (AGENT, 23.4, 25.0, "感谢您的来电，再见。"),
    ), dropped=(), drop_reasons=(), duration_s=60.8)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("morning") / "out"
    out.mkdir()
    transcripts, metas = [], []
    for week in range(5):
        for k in range(6 if week == 0 else 3):
            day = LAST - timedelta(days=7 * week + k % 7)
            call_id = "c_evil" if (week, k) == (0, 5) else f"c{week}{k}"
            angry = week == 0 and k < 4  # this week is worse
            transcripts.append(call(call_id, REQUESTS[k % len(REQUESTS)], angry))
            metas.append(make_meta(call_id, path=CALLS / "dev_07.wav", agent_id="A1001" if k % 2 else "A1002",
                                   started_at=f"{day:%Y-%m-%d}T10:00:00+08:00"))
    write_transcripts(out, transcripts)
    (out / RUN_FILE).write_text(json.dumps({"audio_dir": str(CALLS), "model": "base", "calls": [
        {**asdict(m), "path": str(m.path)} for m in metas]}, ensure_ascii=False), encoding="utf-8")
    rescore(out, rubric_path_default())
    return out / "reports"


def test_the_call_card_draws_the_mood_and_its_points_seek(page: Page, site: Path):
    page.goto(site / "calls" / "c00.html")
    assert page.evaluate("document.querySelectorAll('#mood svg.mood circle').length") == 3  # one per customer turn
    assert page.evaluate("document.querySelectorAll('#mood circle.high').length") == 1  # the complaint
    text = page.evaluate("document.getElementById('mood').innerText")
    assert "客户情绪" in text and "峰值" in text and "情绪已缓和" in text
    page.evaluate(AUDIO_READY, await_promise=True)
    page.click("#mood circle.high")
    assert page.evaluate("document.getElementById('audio').currentTime") == pytest.approx(11.4, abs=0.5)
    page.evaluate("document.getElementById('audio').pause()")
    _assert_clean(page)


def test_the_index_shows_what_got_worse_and_why_people_called(page: Page, site: Path):
    page.goto(site / "index.html")
    trends = page.evaluate("document.getElementById('trends').innerText")
    assert "本周" in trends and "前四周" in trends and "客户不满程度" in trends
    worse = page.evaluate("[...document.querySelectorAll('#trends .trend-worse')].map(e => e.innerText)")
    assert any("↑" in w for w in worse)  # this week's customers are angrier, beyond noise
    reasons = page.evaluate("document.getElementById('reasons').innerText")
    assert "来电原因" in reasons and "停电" in reasons
    assert "客户明显不满的通话" in page.evaluate("document.getElementById('mood-stats').innerText")
    quotes = page.evaluate("[...document.querySelectorAll('#reasons .quotes a')].map(a => a.getAttribute('href'))")
    assert quotes and all((site / q).is_file() for q in quotes)
    hrefs = [page.evaluate(f"[...document.querySelectorAll('#reasons a')].find(a => a.innerText === '{link}').href")
             for link in ("最近一天", "本月")]
    for href in hrefs:
        page.goto(Path(href.removeprefix("file://")))
        assert "来电原因" in page.evaluate("document.querySelector('h1').innerText")
        assert page.evaluate("document.querySelectorAll('table.reasons tbody tr').length") >= 1
        _assert_clean(page)


def test_the_agent_page_counts_calmed_customers(page: Page, site: Path):
    page.goto(site / "agents" / "A1002.html")
    text = page.evaluate("document.getElementById('deescalation').innerText")
    assert "安抚成功" in text
    calmed = page.evaluate("document.querySelectorAll('#deescalation .num')[1].innerText")
    assert int(calmed) >= 1
    assert "本人趋势" in page.evaluate("document.body.innerText")
    _assert_clean(page)


def test_customer_words_in_the_mood_curve_stay_text(page: Page, site: Path):
    page.goto(site / "calls" / "c_evil.html")
    titles = page.evaluate("[...document.querySelectorAll('#mood circle title')].map(t => t.textContent)")
    assert any(XSS in t for t in titles)
    assert page.evaluate("document.querySelectorAll('.wrap script').length") == 0
    _assert_clean(page)


def test_screenshot_of_the_morning(page: Page, site: Path):
    for name, path in {"mood-card.png": site / "calls" / "c00.html", "index-trends.png": site / "index.html"}.items():
        page.goto(path)
        page.evaluate("document.fonts.ready.then(() => true)", await_promise=True)
        data = page.screenshot(artifacts_dir() / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    _assert_clean(page)
