"""The work of a QA lead's morning on the desk, through the ASGI test client over a real OUT (the 12
dev calls scored by the real `qa score` code) and a real OUT/review.db: next-in-queue, search,
filters and paging, exports, workload, blind double review, the refused save, the agent with no
calls, the Host allowlist; and `qa calibrate` reporting the blind reviewers' κ."""

from __future__ import annotations

import csv
import html
import io
import re
import shlex
import sqlite3
from dataclasses import replace
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import openpyxl
import pytest
from typer.testing import CliRunner

from cli import app as cli_app
from review_out import reference_transcript
from test_review_app import (TEST_HOSTS, TODAY, Browser, desk_app, events, out, signed_in,  # noqa: F401
                             template_out, version_of)
from test_review_security import running_desk
from qa_pipeline.output.tables import read_scores
from qa_pipeline.review.app import create_app, make_desk
from qa_pipeline.review.db import ReviewDB
from qa_pipeline.review.guard import desk_hosts, host_name
from qa_pipeline.review.policy import Policy
from qa_pipeline.review.search import SearchIndex, build_index, terms_of

ROOT = Path(__file__).resolve().parent.parent


def page_text(response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", response.text))


# --- next in queue --------------------------------------------------------------------------------


def queue_hrefs(b: Browser, query: str = "") -> list[str]:
    page = b.get(f"/queue{query}").text
    return [html.unescape(h) for h in re.findall(r'<tr class="entry [^"]+" data-call="[^"]+">.*?<a class="mono" href="([^"]+)"',
                                                 page, re.S)]


def test_a_decision_made_from_the_queue_leads_to_the_next_entry(out: Path):
    lina = signed_in(desk_app(out), "lina")
    hrefs = queue_hrefs(lina)
    first, second = hrefs[0], hrefs[1]
    assert first.startswith("/calls/dev_03?") and "#item-" in first  # machine-unsure items first
    card = lina.get(first.split("#")[0])
    item = first.split("#item-")[1]
    context = parse_qs(urlparse(first).query)
    assert context["q"] == ["day=2025-03-07"] and context["entry"] == [item]
    assert f'<input type="hidden" name="go" value="next">' in card.text
    done = lina.act("dev_03", action="confirm", item_id=item, version=version_of(lina, "dev_03", item),
                    q=context["q"][0], entry=item, go="next")
    assert done.status_code == 303 and done.headers["location"] == second  # the entry is done: the next one
    assert queue_hrefs(lina)[0] == second

    # skipping ("n" on the card): /queue/next after the entry, the entry itself never again
    skipped = lina.get(f"/queue/next?day=2025-03-07&call=dev_03&entry={hrefs[1].split('#item-')[1]}")
    assert skipped.status_code == 303 and skipped.headers["location"] == hrefs[2]
    # the call-level entry stays until the call is marked reviewed: a decision there keeps you on it
    call_entry = next(h for h in hrefs if "#" not in h)
    call_id = urlparse(call_entry).path.rsplit("/", 1)[1]
    page = lina.get(call_entry).text
    item_id = re.search(r'<input type="hidden" name="item_id" value="([^"]+)">', page).group(1)
    stay = lina.act(call_id, action="confirm", item_id=item_id, version=version_of(lina, call_id, item_id),
                    q="day=2025-03-07", entry="", go="next")
    assert stay.status_code == 303 and urlparse(stay.headers["location"]).path == f"/calls/{call_id}"
    assert stay.headers["location"].split("#item-")[1] != item_id  # on to the call's next undecided item
    # an agent has no queue to go next in
    assert signed_in(desk_app(out), "wangxy").get("/queue/next?call=dev_11").status_code == 404


def test_the_card_documents_its_keyboard_shortcuts(out: Path):
    page = signed_in(desk_app(out), "lina").get("/calls/dev_11").text
    helpbox = page[page.index('id="keys-help"'):page.index("</table>", page.index('id="keys-help"'))]
    for key in ("j", "k", "p", "c", "o", "n", "?"):
        assert f"<kbd>{key}</kbd>" in helpbox
    assert 'id="speed"' in page and 'id="next-entry"' in page
    assert "按 <kbd>?</kbd> 查看快捷键" in page
    agent_page = signed_in(desk_app(out), "wangxy").get("/calls/dev_11").text
    assert 'id="keys-help"' not in agent_page and 'id="next-entry"' not in agent_page


# --- search ---------------------------------------------------------------------------------------


def test_search_finds_a_phrase_with_its_second_masked_and_paged(out: Path):
    lina = signed_in(desk_app(out), "lina")
    found = lina.get("/search?q=" + "宽带")
    assert found.status_code == 200
    rows = re.findall(r'<tr class="hit" data-call="([^"]+)" data-t="([^"]+)"><td><a class="mono" href="([^"]+)">', found.text)
    assert rows and all(href == f"/calls/{c}#t={t}" for c, t, href in rows)
    labels = __import__("json").loads((ROOT / "tests" / "data" / "dev_labels.json").read_text(encoding="utf-8"))
    said = sorted((c, f"{turn['start']:.2f}") for c, lab in labels.items() for turn in lab["turns"] if "宽带" in turn["text"])
    assert sorted((c, t) for c, t, _ in rows) == said  # every utterance that said it, at the second it began
    assert "<mark>宽带</mark>" in found.text
    assert f"找到 {len(said)} 句" in page_text(found)

    many = lina.get("/search?q=请问")  # 28 utterances: two pages of 20
    assert "找到 28 句，第 1 / 2 页" in page_text(many) and len(re.findall('class="hit"', many.text)) == 20
    nxt = html.unescape(re.search(r'id="next-page" href="([^"]+)"', many.text).group(1))
    second = lina.get(nxt)
    assert len(re.findall('class="hit"', second.text)) == 8 and "第 2 / 2 页" in page_text(second)
    both = lina.get("/search?q=" + "请问 宽带")  # every term in the same utterance
    assert 0 < len(re.findall('class="hit"', both.text)) < len(rows)
    short = lina.get("/search?q=工号")  # two characters: below a trigram, still found
    assert len(re.findall('class="hit"', short.text)) == 9
    day = lina.get("/search?q=请问&day=2025-03-06")
    assert set(re.findall(r'data-call="([^"]+)"', day.text)) <= {"dev_09", "dev_10", "dev_12"}
    assert signed_in(desk_app(out), "wangxy").get("/search?q=请问").status_code == 404  # agents cannot search
    assert oct((out / "review-search.db").stat().st_mode & 0o777) == oct(0o600)


def test_the_index_holds_masked_text_and_a_number_cannot_be_searched(tmp_path: Path):
    label = {"turns": [
        {"speaker": "agent", "start": 1.0, "end": 3.0, "text": "请问您的手机号是多少"},
        {"speaker": "customer", "start": 3.5, "end": 6.0, "text": "一三八一二三四"},
        {"speaker": "customer", "start": 6.2, "end": 8.0, "text": "五六七八"},
        {"speaker": "customer", "start": 8.5, "end": 11.0, "text": "我的手机是13812345678，你们这个不归我管吗"},
    ], "events": [], "duration": 12.0}
    t = reference_transcript("c1", label)
    index = SearchIndex(tmp_path)
    build_index(index.path, {"c1": t}, {"c1": "2025-03-07"}, "sig")
    assert index.ready("sig") and not index.ready("other")
    assert index.search("13812345678").total == 0 and index.search("12345678").total == 0
    hits = index.search("不归我管").hits
    assert len(hits) == 1 and hits[0].start == 8.5 and "13812345678" not in hits[0].text and "［手机号］" in hits[0].text
    assert all("一三八一二三四" not in h.text and "五六七八" not in h.text for h in index.search("手机号").hits + index.search("手机").hits)
    assert index.search("不歸我管").total == 1  # traditional characters typed: the same phrase
    assert index.search('" OR 1 --').total == 0 and index.search("%").total == 0  # query text is data, never syntax
    assert index.search("吗").total == 1 and index.search("管吗").total == 1  # one character: a scan; a pair: the pairs table
    assert terms_of("  请问\u3000宽带  请问 ") == ("请问", "宽带")


# --- filters and paging ---------------------------------------------------------------------------


def test_disputes_and_audit_filter_by_person_action_and_date(out: Path):
    app = desk_app(out)
    lina, zhao, agent = (signed_in(app, n) for n in ("lina", "zhaoqiang", "wangxy"))
    assert lina.act("dev_11", action="confirm", item_id="closing", version=version_of(lina, "dev_11", "closing")).status_code == 303
    assert agent.act("dev_11", action="dispute", item_id="closing", reason="问了",
                     version=version_of(agent, "dev_11", "closing")).status_code == 303
    assert agent.act("dev_04", action="dispute", item_id=failed_item(out, "dev_04"), reason="有异议",
                     version=version_of(agent, "dev_04", failed_item(out, "dev_04"))).status_code == 303
    assert zhao.act("dev_11", action="reject", item_id="closing", reason="没问",
                    version=version_of(zhao, "dev_11", "closing")).status_code == 303

    def dispute_calls(query: str) -> list[str]:
        return re.findall(r'<tr class="[^"]*" data-call="([^"]+)"><td class="state">', lina.get(f"/disputes{query}").text)

    assert sorted(dispute_calls("")) == ["dev_04", "dev_11"]
    assert dispute_calls("?person=zhaoqiang") == ["dev_11"]  # who answered it
    assert dispute_calls("?person=lina") == ["dev_11"]  # whose decision was disputed
    assert dispute_calls("?stage=open1") == ["dev_04"] and dispute_calls("?stage=rejected") == ["dev_11"]
    today = date.today().isoformat()
    assert sorted(dispute_calls(f"?since={today}&until={today}")) == ["dev_04", "dev_11"]
    assert dispute_calls("?until=2000-01-01") == [] and "没有符合条件的申诉（共 2 条）" in page_text(lina.get("/disputes?until=2000-01-01"))

    def audit(query: str) -> list[tuple[str, str]]:
        page = html.unescape(lina.get(f"/audit{query}").text)
        return re.findall(r'<tr data-id="\d+">.*?<td>([^<]*)</td><td>([^<]*)</td>', page)

    assert audit("") == [("质检员 zhaoqiang", "一审驳回申诉"), ("坐席 wangxy", "申诉"), ("坐席 wangxy", "申诉"),
                         ("质检员 lina", "确认")]  # people's rows only, newest first
    assert audit("?person=wangxy") == [("坐席 wangxy", "申诉")] * 2
    assert audit("?action=reject") == [("质检员 zhaoqiang", "一审驳回申诉")]
    assert audit(f"?since={today}&until={today}&person=lina") == [("质检员 lina", "确认")]
    assert audit("?since=2000-01-01&until=2000-01-02") == []
    assert all(who == "机器" for who, _ in audit("?action=machine"))


def failed_item(out: Path, call_id: str) -> str:
    score = next(s for s in read_scores(out) if s.call_id == call_id)
    return next(i.item_id for i in score.items if i.result == "fail")


def test_machine_rows_do_not_drown_peoples_rows_and_the_trail_pages(out: Path):
    lina = signed_in(desk_app(out), "lina")
    assert lina.act("dev_11", action="confirm", item_id="greeting", version=version_of(lina, "dev_11", "greeting")).status_code == 303
    db = ReviewDB.open(out)
    scores = read_scores(out)
    for points in (0.5, 0.25):  # two re-scores later: hundreds of machine rows newer than the decision
        db.record_machine([replace(s, items=tuple(replace(i, points=i.points + points) for i in s.items)) for s in scores])
    n_machine = db.conn.execute("SELECT count(*) FROM events WHERE action = 'machine'").fetchone()[0]
    assert n_machine > 300
    first = lina.get("/audit").text
    assert re.findall(r'<tr data-id="\d+">', first) and "质检员 lina" in html.unescape(first)  # there, on page one
    assert 'id="older-page"' not in first
    with_machine = lina.get("/audit?machine=1").text
    ids = [int(i) for i in re.findall(r'<tr data-id="(\d+)">', with_machine)]
    assert len(ids) == 100 and ids == sorted(ids, reverse=True) and "质检员 lina" not in html.unescape(with_machine)
    seen, page = set(ids), with_machine
    while 'id="older-page"' in page:  # older pages: every row exactly once, the decision among them
        page = lina.get(html.unescape(re.search(r'id="older-page" href="([^"]+)"', page).group(1))).text
        more = [int(i) for i in re.findall(r'<tr data-id="(\d+)">', page)]
        assert more and not seen & set(more) and max(more) < min(seen)
        seen |= set(more)
    total = db.conn.execute("SELECT count(*) FROM events").fetchone()[0]
    assert len(seen) == total


# --- exports --------------------------------------------------------------------------------------


def test_exports_are_masked_and_no_cell_is_a_formula(out: Path):
    app = desk_app(out)
    lina = signed_in(app, "lina")
    formula = '=HYPERLINK("http://evil.example","点此")，客户手机13812345678'
    assert lina.act("dev_11", action="override", item_id="greeting", result="pass", reason=formula,
                    version=version_of(lina, "dev_11", "greeting")).status_code == 303
    assert lina.act("dev_11", action="reviewed", version=call_version(lina, "dev_11")).status_code == 303

    calls = lina.get("/export/calls.csv?day=2025-03-07")
    assert calls.status_code == 200 and calls.headers["content-type"].startswith("text/csv")
    assert 'filename="qa-review-2025-03-07-calls.csv"' in calls.headers["content-disposition"]
    assert calls.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(calls.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["通话", "日期", "坐席工号"] and [r[0] for r in rows[1:]] == ["dev_11"]
    row = dict(zip(rows[0], rows[1]))
    assert row["复核状态"] == "已复核" and row["复核人"] == "lina" and row["改判项数"] == "1" and row["最终评分"] == "62.5"

    decisions = list(csv.reader(io.StringIO(lina.get("/export/decisions.csv").content.decode("utf-8-sig"))))
    reason = next(r for r in decisions if r[4] == "改判")[9]
    assert reason.startswith("'=HYPERLINK(") and "13812345678" not in reason and "［手机号］" in reason

    book = openpyxl.load_workbook(io.BytesIO(lina.get("/export/review.xlsx").content))
    assert book.sheetnames == ["复核通话", "复核记录"]
    cells = [c for row in book["复核记录"].iter_rows() for c in row if isinstance(c.value, str) and "HYPERLINK" in c.value]
    assert len(cells) == 1 and cells[0].data_type == "s" and cells[0].value.startswith("=HYPERLINK(")  # text, not a formula
    assert "13812345678" not in cells[0].value
    assert book["复核通话"]["G2"].value == 62.5  # numbers stay numbers

    assert signed_in(app, "wangxy").get("/export/calls.csv").status_code == 404
    assert lina.get("/export/..%2F..%2Freview.key").status_code == 404


def call_version(b: Browser, call_id: str) -> int:
    page = b.get(f"/calls/{call_id}").text
    form = page[:page.index('value="reviewed"')]
    return int(re.findall(r'name="version" value="(\d+)"', form)[-1])


# --- workload -------------------------------------------------------------------------------------


def test_the_supervisor_sees_each_reviewers_day(out: Path):
    app = desk_app(out)
    lina, zhao, zhou, agent = (signed_in(app, n) for n in ("lina", "zhaoqiang", "zhoumin", "wangxy"))
    assert lina.act("dev_11", action="override", item_id="greeting", result="pass", reason="说了您好",
                    version=version_of(lina, "dev_11", "greeting")).status_code == 303
    assert lina.act("dev_11", action="confirm", item_id="closing", version=version_of(lina, "dev_11", "closing")).status_code == 303
    assert agent.act("dev_11", action="dispute", item_id="closing", reason="问了",
                     version=version_of(agent, "dev_11", "closing")).status_code == 303
    assert zhao.act("dev_11", action="accept", item_id="closing", result="pass", reason="确实问了",
                    version=version_of(zhao, "dev_11", "closing")).status_code == 303
    today = date.today().isoformat()
    page = zhou.get(f"/workload?day={today}").text

    def row(name: str) -> dict[str, str]:
        found = re.search(rf'<tr data-name="{name}">(.*?)</tr>', page, re.S).group(1)
        return dict(re.findall(r'<td class="num (\w+)">(\d+)</td>', found))

    assert row("lina") == {"decided": "2", "overrides": "1", "reviewed": "0", "answered": "0", "disputed": "1",
                           "lost": "1", "overturned": "0", "blind": "0"}
    assert row("zhaoqiang")["answered"] == "1" and row("zhaoqiang")["decided"] == "0"
    assert row("zhoumin")["decided"] == "0"
    assert re.search(r"<tr data-name=\"lina\">.*?<td class=\"num\">50%</td>", page, re.S)  # her override rate
    yesterday = zhou.get("/workload?day=2000-01-01").text
    assert re.search(r'<tr data-name="lina">.*?<td class="num decided">0</td>', yesterday, re.S)
    assert signed_in(app, "lina").get("/workload").status_code == 404  # for the supervisor (and manager)
    assert signed_in(app, "boss").get("/workload").status_code == 200


# --- blind double review --------------------------------------------------------------------------


def blind_ids(b: Browser) -> list[tuple[str, str, str]]:
    page = b.get("/blind").text
    return re.findall(r'<tr data-call="([^"]+)" data-id="(\d+)">.*?<td class="status">([^<]*)</td>', page, re.S)


def hand_in(b: Browser, rid: str, verdicts: dict[str, str], reason: str = ""):
    form = {f"result-{k}": v for k, v in verdicts.items()}
    form.update({f"reason-{k}": reason for k in verdicts})
    return b.post(f"/blind/{rid}/hand-in", form)


def items_of(out: Path, call_id: str) -> list[str]:
    return [i.item_id for s in read_scores(out) if s.call_id == call_id for i in s.items]


def test_blind_double_review_keeps_each_verdict_from_the_other_until_both_hand_in(out: Path):
    app = desk_app(out)
    zhou, lina, zhao = (signed_in(app, n) for n in ("zhoumin", "lina", "zhaoqiang"))
    assert lina.get("/blind").status_code == 200 and 'id="blind-assign"' not in lina.get("/blind").text
    assert 'id="blind-assign"' in zhou.get("/blind").text
    assert lina.post("/blind/assign", {"day": "2025-03-07", "n": "2", "first": "lina", "second": "zhaoqiang"}).status_code == 404
    made = zhou.post("/blind/assign", {"day": "2025-03-07", "n": "2", "first": "lina", "second": "zhaoqiang"})
    assert made.status_code == 303
    assert zhou.post("/blind/assign", {"day": "2025-03-07", "n": "2", "first": "lina", "second": "lina"}).status_code == 400
    mine = blind_ids(lina)
    assert len(mine) == 2 and all(status == "待您提交" for *_, status in mine)
    days = {s.call_id: s.started_at[:10] for s in read_scores(out)}
    assert all(days[c] == "2025-03-07" for c, _, _ in mine)
    call_id, rid, _ = mine[0]

    to_card = lina.get(f"/calls/{call_id}")  # the ordinary card would show verdicts
    assert to_card.status_code == 303 and to_card.headers["location"] == f"/blind/{rid}"
    form = lina.get(f"/blind/{rid}").text
    assert 'id="blind-form"' in form and "机器结论" not in form and "badge pass" not in form and "badge fail" not in form
    items = items_of(out, call_id)
    partial = hand_in(lina, rid, {i: "pass" for i in items[:-1]}, "甲的理由")
    assert partial.status_code == 400 and "还有 1 项未选" in page_text(partial)
    assert 'value="甲的理由"' in partial.text  # what was chosen and typed stays
    lina_verdicts = {i: ("fail" if k % 3 == 0 else "pass") for k, i in enumerate(items)}
    assert hand_in(lina, rid, lina_verdicts, "甲的理由").status_code == 303
    assert hand_in(lina, rid, lina_verdicts).status_code == 409  # once

    assert [s for c, r, s in blind_ids(lina) if r == rid] == ["等待对方提交"]
    other = zhao.get(f"/blind/{rid}").text
    assert "甲的理由" not in other and 'id="blind-form"' in other
    assert "甲的理由" not in zhou.get("/blind").text and zhou.get(f"/blind/{rid}").status_code == 404  # not yet
    assert "甲的理由" not in zhao.get("/audit").text and "甲的理由" not in zhou.get(f"/calls/{call_id}").text

    zhao_verdicts = {i: "pass" for i in items}
    assert hand_in(zhao, rid, zhao_verdicts, "乙的理由").status_code == 303
    revealed = lina.get(f"/blind/{rid}").text
    assert "甲的理由" in revealed and "乙的理由" in revealed
    agree = sum(lina_verdicts[i] == zhao_verdicts[i] for i in items)
    assert re.findall(r'<tr data-item="[^"]+" class="(agree|disagree)">', revealed).count("agree") == agree
    card = zhou.get(f"/calls/{call_id}").text
    assert 'id="blind-results"' in card and "乙的理由" in card
    assert events(out) == []  # the final verdicts are untouched: nothing in the audit trail

    # the second call, both hand in; then qa calibrate reports their κ beside the machine's
    second_id, second_rid, _ = mine[1]
    second_items = items_of(out, second_id)
    assert hand_in(lina, second_rid, {i: "pass" for i in second_items}).status_code == 303
    assert hand_in(zhao, second_rid, {i: ("na" if k == 0 else "pass") for k, i in enumerate(second_items)}).status_code == 303
    result = CliRunner().invoke(cli_app, ["calibrate", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index("blind double review"):]
    line = next(ln for ln in table.splitlines() if "lina" in ln and "zhaoqiang" in ln)
    n_items = len(items) + len(second_items)
    assert re.search(rf"lina\s*│\s*zhaoqiang\s*│\s*2\s*│\s*{n_items}\s*│", line), line
    page = (out / "reports" / "calibration.html").read_text(encoding="utf-8")
    assert 'id="blind"' in page and "双盲复核" in page


def test_blind_kappa_is_cohens_over_the_pairs():
    from qa_pipeline.calibration.compare import blind_agreement
    from qa_pipeline.records import BlindPair, CallScore, ItemResult

    items = tuple(ItemResult("c1", f"i{k}", f"item {k}", "pass" if k < 5 else "fail", 1.0, 1.0, "") for k in range(10))
    score = CallScore("c1", "ok", agent_id="A", started_at="2025-03-07T09:00:00+08:00", score=50.0,
                      processed_at="2025-03-07T10:00:00+00:00", items=items)
    a = ["pass"] * 5 + ["fail"] * 5
    b = ["pass"] * 4 + ["fail"] * 6
    pairs = [BlindPair("c1", f"i{k}", "zhaoqiang", b[k], "lina", a[k]) for k in range(10)]
    [found] = blind_agreement(pairs, [score])
    assert (found.first, found.second, found.calls) == ("lina", "zhaoqiang", 1)  # one pair whatever the order
    assert found.between.n == 10 and found.between.agree == 9
    assert found.between.kappa == pytest.approx(0.8)  # p_o .9, p_e .5
    assert found.first_machine.kappa == pytest.approx(1.0) and found.second_machine.agree == 9


# --- the smaller things ---------------------------------------------------------------------------


def test_an_agent_with_no_calls_sees_an_empty_page(out: Path):
    from qa_pipeline.review.auth import hash_password

    ReviewDB.open(out).put_user("newbie", "agent", "A1999", hash_password("newbie-password"))
    app = desk_app(out)
    b = Browser(app)
    b.get("/login")
    assert b.post("/login", {"name": "newbie", "password": "newbie-password", "next": "/"}).status_code == 303
    home = b.get("/")
    assert home.headers["location"] == "/agents/A1999"
    page = b.get("/agents/A1999")
    assert page.status_code == 200 and "A1999" in page.text and "待签收的评价（0）" in page_text(page)
    assert b.get("/agents/A1001").status_code == 404  # still not someone else's
    zhou = signed_in(app, "zhoumin")
    assert zhou.get("/agents/A1999").status_code == 200  # a known agent's empty page
    assert zhou.get("/agents/A0000").status_code == 404  # nobody by that id


def test_the_readme_shows_password_stdin_and_it_works(tmp_path: Path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(ln for ln in readme.splitlines() if "--password-stdin" in ln and ln.lstrip().startswith("printf"))
    command = line.split("#")[0].strip()
    printf, pipe, qa = command.partition(" | ")
    args = shlex.split(qa)[1:]  # after `.venv/bin/qa` / `qa`
    out = tmp_path / "qa-demo"
    out.mkdir()
    args[args.index("--out") + 1] = str(out)
    result = CliRunner().invoke(cli_app, args, input="a-long-enough-password\n")
    assert result.exit_code == 0, result.output
    user = ReviewDB.open(out).user(args[args.index("add") + 1])
    assert user is not None
    from qa_pipeline.review.auth import check_password
    assert check_password(user.password_hash, "a-long-enough-password")


# --- DNS rebinding ----------------------------------------------------------------------------------


def test_only_the_desks_own_names_are_answered(out: Path):
    app = create_app(make_desk(out, Policy(), today=lambda: TODAY, refresh_every_s=0.0))  # the default: localhost
    from starlette.testclient import TestClient

    for host in ("127.0.0.1:8377", "localhost:8377", "[::1]:8377", "LOCALHOST."):
        client = TestClient(app, base_url=f"http://{host}", follow_redirects=False)
        assert client.get("/login").status_code == 200, host
    for host in ("evil.example:8377", "127.0.0.1.evil.example", "testserver"):
        client = TestClient(app, base_url=f"http://{host}", follow_redirects=False)
        refused = client.get("/login")
        assert refused.status_code == 400 and "--allow-host" in refused.text and "evil" not in refused.text, host
        assert client.post("/login", data={"name": "lina", "password": "x"}).status_code == 400
    assert host_name("[::1]:8377") == "::1" and host_name("Desk.Example.:80") == "desk.example" and host_name("") is None
    assert desk_hosts("127.0.0.1") == frozenset({"127.0.0.1", "localhost", "::1"})
    assert desk_hosts("10.1.2.3", ["qa.centre.local"]) == frozenset({"10.1.2.3", "qa.centre.local"})
    assert {"localhost", "127.0.0.1"} <= desk_hosts("0.0.0.0")


def test_qa_review_answers_the_names_it_is_given_and_no_other(out: Path):
    with running_desk(out, "--allow-host", "qa-desk.centre.local") as (base, _):
        port = base.rsplit(":", 1)[1]
        ok = httpx.get(f"{base}/login", headers={"host": f"qa-desk.centre.local:{port}"})
        assert ok.status_code == 200 and "登录" in ok.text
        assert httpx.get(f"{base}/login", headers={"host": f"localhost:{port}"}).status_code == 200
        rebound = httpx.get(f"{base}/login", headers={"host": f"attacker.example:{port}"})  # DNS rebinding
        assert rebound.status_code == 400 and 'name="csrftoken"' not in rebound.text
        assert httpx.get(f"{base}/queue", headers={"host": f"attacker.example:{port}"}).status_code == 400
