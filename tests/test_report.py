from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from factories import make_failed_score, make_items, make_meta, make_score, make_transcript
from qa_pipeline.output import report
from qa_pipeline.records import AGENT, CUSTOMER, FAIL, UNKNOWN, ItemResult

XSS = "<script>alert(1)</script>"
BOLD = "<b>粗体</b>"


class _Collect(HTMLParser):
    """Tags, attributes and script bodies of a page, to check structure without regexes on HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def _parse(path: Path) -> _Collect:
    c = _Collect()
    c.feed(path.read_text(encoding="utf-8"))
    return c


def _critical_fail_items(call_id: str):
    items = make_items(call_id)
    rude = ItemResult(call_id, "forbidden_phrases", "禁用语", FAIL, 0, 20, "说了禁用语“这是规定”", "这是规定",
                      20.0, 21.0, critical=True, matched_by="text")
    return tuple(rude if i.item_id == "forbidden_phrases" else i for i in items)


def _batch(audio_dir: Path = Path("/data/rec")):
    scores = [
        make_score("call_001", score=85.0, passed=True),
        make_score("call_002", score=52.0, passed=False, critical_failed=True, started_at="2025-03-04T10:00:00+08:00",
                   items=_critical_fail_items("call_002")),
        make_score("call_003", score=90.0, agent_id="A1002", agent_name="李婷"),
        make_failed_score("call_bad", error="decode failed: file is empty (0 bytes)"),
    ]
    transcripts = {cid: make_transcript(cid) for cid in ("call_001", "call_002", "call_003")}
    metas = {
        s.call_id: make_meta(s.call_id, path=audio_dir / f"{s.call_id}.wav", agent_id=s.agent_id)
        for s in scores
    }
    return scores, transcripts, metas


@pytest.fixture()
def rendered(tmp_path: Path) -> Path:
    audio_dir = tmp_path / "rec"
    audio_dir.mkdir()
    for cid in ("call_001", "call_002", "call_003"):  # call_bad's recording is missing
        (audio_dir / f"{cid}.wav").write_bytes(b"RIFF")
    scores, transcripts, metas = _batch(audio_dir)
    report.render_reports(tmp_path, scores, transcripts, metas)
    return tmp_path / "reports"


def test_files_exist(rendered: Path):
    assert (rendered / "index.html").is_file()
    for cid in ("call_001", "call_002", "call_003", "call_bad"):
        assert (rendered / "calls" / f"{cid}.html").is_file()
    assert sorted(p.name for p in (rendered / "agents").iterdir()) == ["A1001.html", "A1002.html"]
    leftovers = [p for p in rendered.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def test_pages_are_self_contained(rendered: Path):
    for page in rendered.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        parsed = _parse(page)
        assert "<style>" in html and "--accent" in html  # CSS inlined
        assert not [t for t, a in parsed.tags if t == "link"]
        assert not [a for t, a in parsed.tags if t == "script" and "src" in a]
        assert "http://" not in html and "https://" not in html
        assert "@font-face" not in html and "@import" not in html


def test_call_card_contents(rendered: Path):
    html = (rendered / "calls" / "call_002.html").read_text(encoding="utf-8")
    for text in ("王晓雨", "宽带服务组", "2025-03-04 10:00:00", "0:36", "52.0", "不合格"):
        assert text in html
    assert "关键项未通过：</strong>禁用语" in html
    for name in ("开头问候", "复述确认", "等待礼仪", "致歉", "禁用语", "客户先挂机"):
        assert name in html
    assert "不适用原因：客户没有投诉，也没有久等" in html
    assert "需复核" in html and "needs-review" in html
    assert "已剔除的疑似幻觉片段" in html


def test_chat_sides(rendered: Path):
    parsed = _parse(rendered / "calls" / "call_001.html")
    sides = [a["class"].split()[1] for t, a in parsed.tags if t == "div" and (a.get("class") or "").startswith("msg ")]
    assert sides == [AGENT, CUSTOMER, AGENT, CUSTOMER, AGENT, AGENT, CUSTOMER, AGENT]


def test_unknown_speaker_centred(tmp_path: Path):
    t = make_transcript("c1", lines=((UNKNOWN, 0.0, 1.0, "喂？"),), dropped=(), drop_reasons=())
    report.render_reports(tmp_path, [make_score("c1")], {"c1": t}, {"c1": make_meta("c1")})
    assert 'class="msg unknown"' in (tmp_path / "reports" / "calls" / "c1.html").read_text(encoding="utf-8")


def test_evidence_and_timestamps_seek(rendered: Path):
    parsed = _parse(rendered / "calls" / "call_001.html")
    evidence = [a for t, a in parsed.tags if t == "a" and "evidence" in (a.get("class") or "")]
    assert [float(a["data-t"]) for a in evidence] == [0.4, 8.3, 13.5]
    assert all("seek" in a["class"] and a["href"].startswith("#t=") for a in evidence)
    stamps = [a for t, a in parsed.tags if t == "a" and (a.get("class") or "").startswith("ts seek")]
    assert [float(a["data-t"]) for a in stamps][:3] == [0.4, 3.6, 8.3]
    (audio,) = [a for t, a in parsed.tags if t == "audio"]
    assert audio["id"] == "audio" and "controls" in audio
    assert "currentTime" in "".join(parsed.scripts)


def test_default_audio_src_is_relative_to_card(rendered: Path, tmp_path: Path):
    parsed = _parse(rendered / "calls" / "call_001.html")
    (audio,) = [a for t, a in parsed.tags if t == "audio"]
    src = audio["src"]
    assert not src.startswith("/") and src == "../../rec/call_001.wav"
    assert (rendered / "calls" / src).resolve() == (tmp_path / "rec" / "call_001.wav").resolve()


def test_no_player_for_a_missing_recording(rendered: Path):
    html = (rendered / "calls" / "call_bad.html").read_text(encoding="utf-8")
    assert "<audio" not in html


def test_custom_audio_href(tmp_path: Path):
    scores, transcripts, metas = _batch()
    report.render_reports(tmp_path, scores, transcripts, metas, audio_href=lambda m: f"audio/{m.call_id}.mp3")
    parsed = _parse(tmp_path / "reports" / "calls" / "call_003.html")
    assert [a["src"] for t, a in parsed.tags if t == "audio"] == ["audio/call_003.mp3"]


def test_pii_masked_everywhere(rendered: Path):
    for page in rendered.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "13905728846" not in html
        assert "139,0572,8846" not in html
        assert "0572" not in html
        assert "文三路" not in html
    card = (rendered / "calls" / "call_001.html").read_text(encoding="utf-8")
    assert "我的手机号是［手机号］" in card
    assert "地址是［地址］" in card
    assert "工号一零零一" in card  # the agent's id is not customer data
    assert "九点到十二点" in card


def test_markup_is_escaped(tmp_path: Path):
    cid = f"evil{XSS}"
    t = make_transcript(cid, lines=((CUSTOMER, 1.0, 2.0, f"你好{XSS}{BOLD}"),), dropped=(), drop_reasons=())
    s = make_score(cid, agent_id=f"A{XSS}", agent_name=f"王{XSS}{BOLD}", team=f"组{XSS}")
    failed = make_failed_score("bad", error=f"cannot decode {XSS}")
    report.render_reports(tmp_path, [s, failed], {cid: t}, {cid: make_meta(cid, agent_id=s.agent_id)})
    pages = list((tmp_path / "reports").rglob("*.html"))
    assert len(pages) == 5  # 2 calls, 2 agents, index
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert XSS not in html and "<b>" not in html, page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, page
    for name in (p.name for p in pages):
        assert "<" not in name and ">" not in name and "/" not in name
    card = (tmp_path / "reports" / "calls" / f"{report.safe_name(cid)}.html").read_text(encoding="utf-8")
    assert "你好&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;粗体&lt;/b&gt;" in card  # the utterance, as text
    assert "王&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;粗体&lt;/b&gt;" in card  # the agent name, as text


def test_earlier_nights_stay_in_index_and_agent_pages(tmp_path: Path):
    night_1 = [make_score("n1", score=80.0, started_at="2025-03-03T09:00:00+08:00")]
    night_2 = [make_score("n2", score=60.0, passed=False, started_at="2025-03-04T09:00:00+08:00")]
    report.render_reports(tmp_path, night_1, {"n1": make_transcript("n1")}, {"n1": make_meta("n1")})
    card_1 = (tmp_path / "reports" / "calls" / "n1.html").read_bytes()
    report.render_reports(tmp_path, night_2, {}, {}, all_scores=night_1 + night_2)
    assert (tmp_path / "reports" / "calls" / "n1.html").read_bytes() == card_1  # not re-rendered without transcript
    index = (tmp_path / "reports" / "index.html").read_text(encoding="utf-8")
    assert 'href="calls/n1.html"' in index and 'href="calls/n2.html"' in index
    assert "共 2 通通话 · 2025-03-03 至 2025-03-04（2 天）" in index
    agent = (tmp_path / "reports" / "agents" / "A1001.html").read_text(encoding="utf-8")
    assert "03-03" in agent and "03-04" in agent and "70.0" in agent  # trend over both nights, average


def test_latest_scores_replace_earlier_ones_of_the_same_call():
    earlier = [make_score("c1", score=10.0), make_score("c2")]
    merged = report.merge_scores(earlier, [make_score("c1", score=90.0), make_score("c3")])
    assert [(s.call_id, s.score) for s in merged] == [("c1", 90.0), ("c2", 85.0), ("c3", 85.0)]


def test_safe_name():
    assert report.safe_name("call_001") == "call_001"
    assert report.safe_name("dev-01.a") == "dev-01.a"
    assert report.safe_name("王晓雨") == "王晓雨"
    odd = report.safe_name("../../etc/passwd")
    assert "/" not in odd and not odd.startswith(".")
    assert report.safe_name("a/b") != report.safe_name("a_b")
    assert report.safe_name(None) == "_unknown"


def test_failed_call_in_index_with_error(rendered: Path):
    html = (rendered / "index.html").read_text(encoding="utf-8")
    assert "处理失败的通话（1）" in html
    assert "decode failed: file is empty (0 bytes)" in html
    assert 'href="calls/call_bad.html"' in html
    card = (rendered / "calls" / "call_bad.html").read_text(encoding="utf-8")
    assert "无法评分" in card and "decode failed: file is empty (0 bytes)" in card


def test_index_totals_and_links(rendered: Path):
    html = (rendered / "index.html").read_text(encoding="utf-8")
    numbers = re.findall(r'<div class="num">([^<]*)</div><div class="lbl">([^<]*)</div>', html)
    stats = {label: value for value, label in numbers}
    assert stats["通话总数"] == "4"
    assert stats["已评分"] == "3"
    assert stats["处理失败"] == "1"
    assert stats["平均分"] == "75.7"
    assert stats["合格率"] == "67%"
    parsed = _parse(rendered / "index.html")
    links = {a["href"] for t, a in parsed.tags if t == "a"}
    assert {"calls/call_001.html", "calls/call_bad.html", "agents/A1001.html", "agents/A1002.html"} <= links
    # agents ranked by average score: 李婷 (90) before 王晓雨 (68.5)
    assert html.index("agents/A1002.html") < html.index("agents/A1001.html")


def test_agent_page(rendered: Path):
    page = rendered / "agents" / "A1001.html"
    html = page.read_text(encoding="utf-8")
    assert "王晓雨（A1001）" in html
    assert "68.5" in html  # average of 85 and 52
    assert "50%" in html  # pass rate
    assert "<svg" in html and "<polyline" in html  # two days -> a line
    assert "03-03" in html and "03-04" in html
    parsed = _parse(page)
    calls = [a["href"] for t, a in parsed.tags if t == "a" and a.get("href", "").startswith("../calls/")]
    assert calls[0] == "../calls/call_002.html"  # worst first
    assert "等待礼仪" in html and "对比宽带服务组" in html


def test_autoescape_really_on_for_html_j2():
    env = report.make_environment()
    tpl = env.get_template("call.html.j2")
    assert tpl.environment.autoescape("call.html.j2") is True
    assert env.from_string("{{ x }}").render(x=XSS) == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_missing_transcript_and_meta(tmp_path: Path):
    report.render_reports(tmp_path, [make_score("lonely")], {}, {})
    html = (tmp_path / "reports" / "calls" / "lonely.html").read_text(encoding="utf-8")
    assert "没有转写文本" in html and "<audio" not in html


def test_packaged_templates_fallback(tmp_path: Path, monkeypatch):
    """When the top-level reports/ folder is absent (installed wheel), templates load from the package."""
    folder = Path(report.__file__).resolve().parents[2] / "reports"
    monkeypatch.setattr(report, "_template_dir", lambda: None)
    monkeypatch.setattr(report, "_load_packaged", lambda name: (folder / name).read_text(encoding="utf-8"))
    env = report.make_environment()
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    report.render_reports(tmp_path, [make_score("c1")], {}, {})
    assert (tmp_path / "reports" / "calls" / "c1.html").is_file()
