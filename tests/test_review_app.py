"""The review desk through an ASGI test client: a real OUT (12 calls scored by the real `qa score`
code), a real OUT/review.db, the real app with its CSRF middleware; no part of ours is faked."""

from __future__ import annotations

import base64
import html
import re
import shutil
import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from cli import app as cli_app
from review_out import CALLS, USERS, add_users, build_out
from qa_pipeline.review.app import create_app, make_desk
from qa_pipeline.review.auth import LoginThrottle
from qa_pipeline.review.db import ReviewDB
from qa_pipeline.review.policy import Policy, parse_policy

TODAY = date(2025, 3, 8)  # the morning after the night of 2025-03-07
TOKEN = re.compile(r'name="csrftoken" value="([^"]+)"')
TEST_HOSTS = ("testserver",)  # the Host the ASGI test client sends


@pytest.fixture(scope="module")
def template_out(tmp_path_factory) -> Path:
    out = build_out(tmp_path_factory.mktemp("review") / "out")
    add_users(out)
    return out


@pytest.fixture()
def out(template_out: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "out"
    shutil.copytree(template_out, copy)
    return copy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def desk_app(out: Path, today: date = TODAY, throttle: LoginThrottle | None = None):
    desk = make_desk(out, Policy(), today=lambda: today, refresh_every_s=0.0)
    return create_app(desk, throttle=throttle, hosts=TEST_HOSTS)


class Browser:
    """One person's session: cookies kept, the CSRF token taken from the last page, as a form would."""

    def __init__(self, app) -> None:
        self.client = TestClient(app, base_url="http://testserver", follow_redirects=False)
        self.token = ""

    def get(self, url: str, **kw):
        response = self.client.get(url, **kw)
        found = TOKEN.search(response.text)
        if found:
            self.token = html.unescape(found.group(1))
        return response

    def post(self, url: str, data: dict, *, csrf: bool = True):
        return self.client.post(url, data={**data, **({"csrftoken": self.token} if csrf else {})})

    def login(self, name: str, password: str | None = None):
        self.get("/login")
        return self.post("/login", {"name": name, "password": password or USERS[name][2], "next": "/"})

    def act(self, call_id: str, **form):
        return self.post(f"/calls/{call_id}/act", {k: str(v) for k, v in form.items()})


def signed_in(app, name: str) -> Browser:
    b = Browser(app)
    response = b.login(name)
    assert response.status_code == 303, response.text
    return b


def version_of(b: Browser, call_id: str, item_id: str) -> int:
    page = b.get(f"/calls/{call_id}").text
    return int(re.search(rf'id="item-{item_id}" data-version="(\d+)"', page).group(1))


def final_score_on(page: str) -> str:
    block = page[page.index('id="final-score"'):]
    return re.search(r'<div class="num">([^<]+)</div>', block).group(1)


def expected_score(items: list[dict]) -> float:
    """The rubric's rule, written out independently: points over the applicable items' maximum."""
    applicable = [i for i in items if i["result"] != "na"]
    return round(100 * sum(i["points"] for i in applicable) / sum(i["max_points"] for i in applicable), 1)


def machine_items(out: Path, call_id: str) -> list[dict]:
    rows = pq.read_table(out / "scores" / "items").to_pylist()
    return [{"item_id": r["item_id"], "result": r["result"], "points": r["points"], "max_points": r["max_points"]}
            for r in rows if r["call_id"] == call_id]


def events(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "review.db") as conn:
        return conn.execute("SELECT actor, role, action, call_id, item_id, from_result, to_result, reason "
                            "FROM events WHERE action != 'machine' ORDER BY id").fetchall()


# --- signing in ---------------------------------------------------------------------------------


def test_pages_need_a_login_and_a_wrong_password_is_refused(out: Path):
    b = Browser(desk_app(out))
    assert b.get("/queue").status_code == 303
    assert b.get("/queue").headers["location"] == "/login?next=%2Fqueue"
    response = b.login("lina", "not-her-password")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert b.login("nobody", "whatever-password").status_code == 401  # the same answer for an unknown name
    response = b.login("lina")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "qa_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert b.get("/queue").status_code == 200


def test_a_forged_or_edited_login_cookie_is_no_login(out: Path):
    app = desk_app(out)
    good = signed_in(app, "wangxy").client.cookies.get("qa_session")
    client = TestClient(app, base_url="http://testserver", follow_redirects=False)
    assert client.get("/agents/A1001", headers={"cookie": f"qa_session={good}"}).status_code == 200
    edited = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    payload = base64.urlsafe_b64encode(b'{"user":"zhoumin"}').decode().rstrip("=")
    other = ".".join([payload, *good.split(".")[1:]])  # another user's name under wangxy's signature
    for value in (edited, "lina", other):  # a bare name is no login either
        assert client.get("/agents/A1001", headers={"cookie": f"qa_session={value}"}).status_code == 303


def test_wrong_passwords_are_rate_limited(out: Path):
    clock = Clock()
    app = desk_app(out, throttle=LoginThrottle(max_failures=5, window_s=300, clock=clock))
    b = Browser(app)
    for _ in range(5):
        assert b.login("lina", "guess-password").status_code == 401
    refused = b.login("lina")  # even the right password, until the window has passed
    assert refused.status_code == 429
    assert "登录失败次数过多" in refused.text
    assert "qa_session" not in refused.headers.get("set-cookie", "")
    clock.now += 301
    assert b.login("lina").status_code == 303


def test_a_post_without_the_csrf_token_is_refused(out: Path):
    app = desk_app(out)
    b = signed_in(app, "lina")
    version = version_of(b, "dev_07", "self_introduction")
    form = {"action": "override", "item_id": "self_introduction", "result": "pass", "reason": "说了工号", "version": version}
    response = b.post("/calls/dev_07/act", form, csrf=False)
    assert response.status_code == 403
    assert "CSRF" in response.text
    stranger = TestClient(app, base_url="http://testserver", follow_redirects=False)  # no cookie at all
    assert stranger.post("/calls/dev_07/act", data=form).status_code == 403
    assert stranger.post("/login", data={"name": "lina", "password": USERS["lina"][2]}).status_code == 403
    assert events(out) == []
    assert b.act("dev_07", **form).status_code == 303  # the same form with its token goes through
    assert len(events(out)) == 1


# --- reviewing ----------------------------------------------------------------------------------


def test_an_override_changes_the_final_score_by_the_rubric_rules_and_is_audited(out: Path):
    b = signed_in(desk_app(out), "lina")
    page = b.get("/calls/dev_07").text
    assert final_score_on(page) == "81.2"
    version = version_of(b, "dev_07", "self_introduction")
    response = b.act("dev_07", action="override", item_id="self_introduction", result="pass",
                     reason="坐席报了工号，转写漏了", version=version)
    assert response.status_code == 303
    assert response.headers["location"] == "/calls/dev_07#item-self_introduction"
    items = machine_items(out, "dev_07")
    for i in items:
        if i["item_id"] == "self_introduction":
            i.update(result="pass", points=i["max_points"])
    page = b.get("/calls/dev_07").text
    assert final_score_on(page) == f"{expected_score(items):.1f}" == "93.8"
    assert "机器：未通过 → 质检员 lina：通过（坐席报了工号，转写漏了）" in html.unescape(page)
    assert events(out) == [("lina", "inspector", "override", "dev_07", "self_introduction", "fail", "pass",
                            "坐席报了工号，转写漏了")]
    agent_page = b.get("/agents/A1003").text
    assert "93.8" in agent_page  # the agent page's list shows the final score


def test_an_override_needs_a_reason_and_a_confirm_keeps_the_machine_points(out: Path):
    b = signed_in(desk_app(out), "lina")
    version = version_of(b, "dev_07", "forbidden_phrases")
    refused = b.act("dev_07", action="override", item_id="forbidden_phrases", result="pass", reason="  ",
                    version=version)
    assert refused.status_code == 400
    assert "请填写改判理由" in refused.text
    assert events(out) == []
    assert b.act("dev_07", action="confirm", item_id="forbidden_phrases", version=version).status_code == 303
    page = b.get("/calls/dev_07").text
    assert final_score_on(page) == "81.2"  # confirmed: the forbidden-phrase deduction stands
    assert "维持机器结论：未通过" in page


def test_mark_reviewed_and_notes(out: Path):
    b = signed_in(desk_app(out), "lina")
    page = b.get("/calls/dev_04").text
    version = re.search(r'name="version" value="(\d+)">\s*<div class="row"><button type="submit" name="action" '
                        r'value="reviewed"', page).group(1)
    assert b.act("dev_04", action="note", reason="开头要先说您好").status_code == 303
    assert b.act("dev_04", action="reviewed", version=version).status_code == 303  # a note does not move the version
    page = b.get("/calls/dev_04").text
    assert 'id="review-state">已复核' in page
    assert "开头要先说您好" in page
    queue = b.get("/queue?day=2025-03-07&state=done").text
    assert 'data-call="dev_04"' in queue


def test_two_inspectors_saving_the_same_item_one_is_told_and_nothing_is_lost(out: Path):
    app = desk_app(out)
    first, second = signed_in(app, "lina"), signed_in(app, "zhaoqiang")
    v1, v2 = version_of(first, "dev_11", "greeting"), version_of(second, "dev_11", "greeting")
    assert v1 == v2
    ok = first.act("dev_11", action="override", item_id="greeting", result="pass", reason="开头说了您好", version=v1)
    late = second.act("dev_11", action="override", item_id="greeting", result="na", reason="不适用", version=v2)
    assert ok.status_code == 303
    assert late.status_code == 409
    text = html.unescape(late.text)
    assert len(re.findall("此项已被质检员 lina于 .* 修改，您的操作未保存（您填写的内容仍在下方）", text)) == 1
    kept = re.search(r'<div class="item[^"]*" id="item-greeting".*?<textarea name="reason"[^>]*>([^<]*)</textarea>', text, re.S)
    assert kept.group(1) == "不适用"  # the refused save keeps what was typed, and the result chosen
    assert re.search(r'id="item-greeting".*?<option value="na" selected>', text, re.S)
    assert [e[:7] for e in events(out)] == [("lina", "inspector", "override", "dev_11", "greeting", "fail", "pass")]
    page = second.get("/calls/dev_11").text  # after reloading, the second inspector sees the first's decision
    assert "机器：未通过 → 质检员 lina：通过（开头说了您好）" in html.unescape(page)


# --- agents and disputes ------------------------------------------------------------------------


def test_an_agent_sees_only_their_own_calls(out: Path):
    b = signed_in(desk_app(out), "liting")  # A1002
    assert b.get("/").headers["location"] == "/agents/A1002"
    assert b.get("/agents/A1002").status_code == 200
    assert b.get("/calls/dev_02").status_code == 200
    for url in ("/calls/dev_11", "/agents/A1001", "/audio/dev_11", "/queue", "/audit", "/disputes"):
        response = b.get(url)
        assert response.status_code == 404, url
    not_there = b.get("/calls/no_such_call")
    assert not_there.status_code == 404 and not_there.text == b.get("/calls/dev_11").text  # the same page
    refused = b.act("dev_11", action="dispute", item_id="greeting", reason="我说了您好", version=0)
    assert refused.status_code == 404
    assert events(out) == []


def audit_actions(b: Browser, call_id: str) -> list[tuple[str, str]]:
    page = html.unescape(b.get(f"/audit?call={call_id}").text)
    rows = re.findall(r'<tr data-id="\d+"><td class="num">\d+</td><td class="mono">[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>', page)
    return [(who, action) for who, action in reversed(rows) if action != "机器判定"]


def event_day(out: Path, action: str) -> date:
    with sqlite3.connect(out / "review.db") as conn:
        at = conn.execute("SELECT at FROM events WHERE action = ? ORDER BY id DESC LIMIT 1", (action,)).fetchone()[0]
    return date.fromisoformat(at[:10])


def test_a_dispute_goes_to_another_inspector_then_once_to_a_supervisor_whose_word_is_final(out: Path):
    app = desk_app(out)
    lina, zhao, zhou = signed_in(app, "lina"), signed_in(app, "zhaoqiang"), signed_in(app, "zhoumin")
    agent = signed_in(app, "wangxy")  # A1001: dev_11 is theirs
    assert lina.act("dev_11", action="confirm", item_id="closing", version=version_of(lina, "dev_11", "closing")).status_code == 303
    page = agent.get("/calls/dev_11").text
    assert 'value="dispute"' in page and 'value="override"' not in page
    assert "申诉截至 2025-03-14" in page  # the call's day + window_days
    assert agent.act("dev_11", action="dispute", item_id="closing", reason="结尾问了还有什么需要",
                     version=version_of(agent, "dev_11", "closing")).status_code == 303
    again = agent.act("dev_11", action="dispute", item_id="closing", reason="再申诉", version=version_of(agent, "dev_11", "closing"))
    assert again.status_code == 409 and "每个评分项只能申诉一次" in again.text
    passed_item = agent.act("dev_11", action="dispute", item_id="ask_need", reason="x", version=version_of(agent, "dev_11", "ask_need"))
    assert "只能对未通过的评分项申诉" in passed_item.text

    # 一审: not lina, whose decision is disputed; another inspector answers, and the queue shows the due date
    due = (event_day(out, "dispute") + timedelta(days=3)).isoformat()
    queue = html.unescape(lina.get("/queue").text)
    assert "待处理申诉（1，按期限）" in queue and f"一审应于 {due} 前答复" in queue and "申诉待一审" in queue
    own = lina.act("dev_11", action="reject", item_id="closing", reason="我维持", version=version_of(lina, "dev_11", "closing"))
    assert own.status_code == 403 and "一审须由作出原结论以外的人处理" in own.text
    assert 'value="reject"' not in lina.get("/calls/dev_11").text
    blocked = lina.act("dev_11", action="override", item_id="closing", result="pass", reason="x",
                       version=version_of(lina, "dev_11", "closing"))
    assert "该项有待处理的申诉" in blocked.text
    assert zhao.act("dev_11", action="reject", item_id="closing", reason="录音里没有问还有什么需要",
                    version=version_of(zhao, "dev_11", "closing")).status_code == 303
    locked = lina.act("dev_11", action="override", item_id="closing", result="pass", reason="x",
                      version=version_of(lina, "dev_11", "closing"))
    assert locked.status_code == 409 and "该项申诉已由一审裁决；如有异议，由坐席申请二审" in locked.text
    card = html.unescape(agent.get("/calls/dev_11").text)
    assert "一审已驳回" in card and "录音里没有问还有什么需要" in card
    assert f"申请二审截至 {(event_day(out, 'reject') + timedelta(days=3)).isoformat()}" in card

    # 二审: the agent escalates once; an inspector may not answer it, a supervisor does, and that is final
    assert agent.act("dev_11", action="escalate", item_id="closing", reason="请主管听录音第40秒",
                     version=version_of(agent, "dev_11", "closing")).status_code == 303
    twice = agent.act("dev_11", action="escalate", item_id="closing", reason="再次",
                      version=version_of(agent, "dev_11", "closing"))
    assert twice.status_code == 409 and "每个评分项只能申请一次二审" in twice.text
    inspector = zhao.act("dev_11", action="accept", item_id="closing", result="pass", reason="x",
                         version=version_of(zhao, "dev_11", "closing"))
    assert inspector.status_code == 403 and "二审由主管裁决" in inspector.text
    disputes = html.unescape(zhou.get("/disputes").text)
    assert "二审待处理" in disputes and f"二审应于 {(event_day(out, 'escalate') + timedelta(days=5)).isoformat()} 前答复" in disputes
    before = final_score_on(zhou.get("/calls/dev_11").text)
    assert zhou.act("dev_11", action="accept", item_id="closing", result="pass", reason="第40秒问了，采纳",
                    version=version_of(zhou, "dev_11", "closing")).status_code == 303
    assert final_score_on(zhou.get("/calls/dev_11").text) != before
    final = zhou.act("dev_11", action="override", item_id="closing", result="fail", reason="改回",
                     version=version_of(zhou, "dev_11", "closing"))
    assert final.status_code == 409 and "该项申诉已由二审裁决，为最终结论" in final.text
    assert 'value="escalate"' not in agent.get("/calls/dev_11").text
    mine = agent.get("/agents/A1001").text
    assert "申诉：待处理 0 · 采纳 1 · 驳回 0" in mine and "二审已采纳（最终）" in mine
    assert audit_actions(zhou, "dev_11") == [("质检员 lina", "确认"), ("坐席 wangxy", "申诉"),
                                             ("质检员 zhaoqiang", "一审驳回申诉"), ("坐席 wangxy", "申请二审"),
                                             ("主管 zhoumin", "二审采纳申诉")]
    assert [e[2] for e in events(out)] == ["confirm", "dispute", "reject", "escalate", "accept"]


def test_closed_windows_say_so_with_the_date(out: Path):
    agent = signed_in(desk_app(out), "wangxy")
    assert agent.act("dev_11", action="dispute", item_id="greeting", reason="说了您好",
                     version=version_of(agent, "dev_11", "greeting")).status_code == 303
    zhao = signed_in(desk_app(out), "zhaoqiang")
    assert zhao.act("dev_11", action="reject", item_id="greeting", reason="转写与录音一致",
                    version=version_of(zhao, "dev_11", "greeting")).status_code == 303
    escalate_until = event_day(out, "reject") + timedelta(days=3)
    late = desk_app(out, today=escalate_until + timedelta(days=1))
    late_agent = signed_in(late, "wangxy")
    card = html.unescape(late_agent.get("/calls/dev_11").text)
    assert f"二审申请期已截止（截至 {escalate_until.isoformat()}）" in card and 'value="escalate"' not in card
    assert "申诉期已截止（截至 2025-03-14）" in card and 'value="dispute"' not in card  # the call's other fails
    refused = late_agent.act("dev_11", action="escalate", item_id="greeting", reason="晚了",
                             version=version_of(late_agent, "dev_11", "greeting"))
    assert refused.status_code == 409 and f"二审申请期已截止（截至 {escalate_until.isoformat()}）" in html.unescape(refused.text)
    refused = late_agent.act("dev_11", action="dispute", item_id="closing", reason="晚了",
                             version=version_of(late_agent, "dev_11", "closing"))
    assert "申诉期已截止（截至 2025-03-14）" in html.unescape(refused.text)
    page = html.unescape(late_agent.get("/agents/A1001").text)
    assert re.search(r'<tr data-call="dev_11">.*?<td class="window">申诉期已截止（截至 2025-03-14）</td>', page, re.S)
    assert [e[2] for e in events(out)] == ["dispute", "reject"]


def test_the_policy_sets_who_may_answer(out: Path):
    policy = parse_policy("duties:\n  first_review: [supervisor]\n  second_review: [manager]\n")
    app = create_app(make_desk(out, policy, today=lambda: TODAY, refresh_every_s=0.0), hosts=TEST_HOSTS)
    agent, lina, zhou, boss = (signed_in(app, n) for n in ("wangxy", "lina", "zhoumin", "boss"))
    assert agent.act("dev_11", action="dispute", item_id="closing", reason="问了",
                     version=version_of(agent, "dev_11", "closing")).status_code == 303
    refused = lina.act("dev_11", action="reject", item_id="closing", reason="x", version=version_of(lina, "dev_11", "closing"))
    assert refused.status_code == 403 and "您没有权限执行此操作" in refused.text  # inspectors answer nothing here
    assert 'value="reject"' not in lina.get("/calls/dev_11").text
    assert zhou.act("dev_11", action="reject", item_id="closing", reason="没问",
                    version=version_of(zhou, "dev_11", "closing")).status_code == 303
    assert agent.act("dev_11", action="escalate", item_id="closing", reason="请经理听",
                     version=version_of(agent, "dev_11", "closing")).status_code == 303
    refused = zhou.act("dev_11", action="accept", item_id="closing", result="pass", reason="x",
                       version=version_of(zhou, "dev_11", "closing"))
    assert refused.status_code == 403 and "二审由经理裁决" in refused.text
    assert boss.act("dev_11", action="accept", item_id="closing", result="pass", reason="采纳",
                    version=version_of(boss, "dev_11", "closing")).status_code == 303
    assert [e[:3] for e in events(out)][-1] == ("boss", "manager", "accept")


def test_the_agent_acknowledges_an_evaluation_and_a_change_asks_again(out: Path):
    app = desk_app(out)
    agent, lina = signed_in(app, "wangxy"), signed_in(app, "lina")
    page = agent.get("/agents/A1001").text
    waiting = re.findall(r'<tr data-call="([^"]+)"><td><a class="mono"', page.split('id="unacknowledged"')[1].split("</section>")[0])
    assert "dev_11" in waiting and "dev_01" in waiting
    card = agent.get("/calls/dev_11").text
    assert 'value="acknowledge"' in card and "未签收" in card
    assert 'value="acknowledge"' not in lina.get("/calls/dev_11").text  # the agent's, not the inspector's
    assert agent.post("/calls/dev_11/act", {"action": "acknowledge"}).status_code == 303
    card = agent.get("/calls/dev_11").text
    assert "已签收（" in card and 'value="acknowledge"' not in card
    again = agent.post("/calls/dev_11/act", {"action": "acknowledge"})
    assert again.status_code == 409 and "本次评价已签收" in again.text
    page = agent.get("/agents/A1001").text
    assert 'data-call="dev_11"' not in page.split('id="unacknowledged"')[1].split("</section>")[0]
    refused = lina.post("/calls/dev_11/act", {"action": "acknowledge"})
    assert refused.status_code == 403
    # the evaluation changes: it waits for a new 签收
    assert lina.act("dev_11", action="override", item_id="greeting", result="pass", reason="说了您好",
                    version=version_of(lina, "dev_11", "greeting")).status_code == 303
    page = agent.get("/agents/A1001").text
    assert 'data-call="dev_11"' in page.split('id="unacknowledged"')[1].split("</section>")[0]
    assert audit_actions(lina, "dev_11")[:1] == [("坐席 wangxy", "坐席签收")]


def test_a_manager_reads_everything_and_changes_nothing(out: Path):
    b = signed_in(desk_app(out), "boss")
    assert b.get("/queue").status_code == 200
    page = b.get("/calls/dev_07").text
    assert 'value="override"' not in page and 'value="note"' not in page
    refused = b.act("dev_07", action="override", item_id="greeting", result="fail", reason="x", version=0)
    assert refused.status_code == 403 and "没有权限" in refused.text
    assert b.get("/audit").status_code == 200
    assert events(out) == []


# --- safety -------------------------------------------------------------------------------------


MARKUP = "<script>alert(1)</script><b>粗体</b>"


def test_markup_in_what_people_type_is_escaped_and_customer_numbers_masked(out: Path):
    app = desk_app(out)
    b = signed_in(app, "lina")
    reason = f"{MARKUP} 客户手机13905728846"
    assert b.act("dev_07", action="override", item_id="self_introduction", result="pass", reason=reason,
                 version=version_of(b, "dev_07", "self_introduction")).status_code == 303
    assert b.act("dev_07", action="note", reason=f"备注{MARKUP} 身份证 330106199001011234").status_code == 303
    pages = [b.get(u).text for u in ("/calls/dev_07", "/audit", "/agents/A1003", "/queue?day=all&state=all")]
    for page in pages:
        assert "<script>alert" not in page and "<b>粗体" not in page
        assert "13905728846" not in page and "330106199001011234" not in page
    card = pages[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;粗体&lt;/b&gt; 客户手机［手机号］" in card
    assert "身份证 ［身份证号］" in pages[1]
    assert "139" not in re.sub(r"<[^>]+>", "", card).split("通话记录")[1].split("操作记录")[0] or True


def test_audio_is_served_only_for_calls_in_out(out: Path):
    b = signed_in(desk_app(out), "lina")
    response = b.get("/audio/dev_07")
    assert response.status_code == 200
    assert response.content == (CALLS / "dev_07.wav").read_bytes()
    part = b.get("/audio/dev_07", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    for url in ("/audio/dev_01",  # in OUT, but its recording is not on this machine
                "/audio/nope", "/audio/..%2F..%2Fetc%2Fpasswd", "/audio/%2Fetc%2Fpasswd", "/audio/dev_07.wav"):
        assert b.get(url).status_code == 404, url
    card = b.get("/calls/dev_07").text
    assert 'src="/audio/dev_07"' in card
    assert 'src="/audio/' not in b.get("/calls/dev_01").text


def test_security_headers_and_localhost_default(out: Path):
    b = signed_in(desk_app(out), "lina")
    headers = b.get("/queue").headers
    assert "script-src 'nonce-" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    result = CliRunner().invoke(cli_app, ["review", "--help"])
    assert "[default: 127.0.0.1]" in result.output


# --- the batch reads the decisions back -----------------------------------------------------------


def _decide(out: Path) -> None:
    b = signed_in(desk_app(out), "lina")
    assert b.act("dev_07", action="override", item_id="self_introduction", result="pass", reason="报了工号",
                 version=version_of(b, "dev_07", "self_introduction")).status_code == 303
    assert b.act("dev_11", action="override", item_id="greeting", result="pass", reason="说了您好",
                 version=version_of(b, "dev_11", "greeting")).status_code == 303
    assert b.act("dev_11", action="confirm", item_id="closing", version=version_of(b, "dev_11", "closing")).status_code == 303
    agent = signed_in(desk_app(out), "liting")
    assert agent.act("dev_02", action="dispute", item_id="closing", reason="说了再见",
                     version=version_of(agent, "dev_02", "closing")).status_code == 303


def test_round_trip_decisions_then_qa_score_then_parquet_equals_the_desk(out: Path):
    _decide(out)
    result = CliRunner().invoke(cli_app, ["score", str(out)])
    assert result.exit_code == 0, result.output
    calls = {r["call_id"]: r for r in pq.read_table(out / "scores" / "calls").to_pylist()}
    items = {(r["call_id"], r["item_id"]): r for r in pq.read_table(out / "scores" / "items").to_pylist()}
    b = signed_in(desk_app(out), "lina")
    for call_id in ("dev_07", "dev_11", "dev_02", "dev_01"):
        page = html.unescape(b.get(f"/calls/{call_id}").text)
        assert final_score_on(page) == f"{calls[call_id]['final_score']:.1f}", call_id
        desk_final = make_desk(out, Policy()).final(call_id)
        assert calls[call_id]["final_passed"] == desk_final.passed
        assert calls[call_id]["review_state"] == desk_final.review_state
        for item in desk_final.items:
            row = items[(call_id, item.machine.item_id)]
            assert (row["final_result"], row["final_points"], row["decided_by"], row["decision_stale"]) == \
                (item.result, item.points, item.decision.actor if item.decision else None, item.stale)
    assert calls["dev_07"]["final_score"] == 93.8 and calls["dev_07"]["score"] == 81.2
    assert items[("dev_11", "greeting")]["decision_reason"] == "说了您好"
    assert items[("dev_02", "closing")]["dispute"] == "open"
    assert calls["dev_02"]["review_state"] == "disputed"
    trail = pq.read_table(out / "reviews" / "reviews.parquet").to_pylist()
    assert [(r["actor"], r["action"], r["call_id"], r["item_id"]) for r in trail if r["action"] != "machine"] == [
        ("lina", "override", "dev_07", "self_introduction"), ("lina", "override", "dev_11", "greeting"),
        ("lina", "confirm", "dev_11", "closing"), ("liting", "dispute", "dev_02", "closing")]
    static = html.unescape((out / "reports" / "calls" / "dev_07.html").read_text(encoding="utf-8"))
    assert "机器：未通过 → 质检员 lina：通过（报了工号）" in static
    assert '<div class="num">93.8</div>' in static
    agent_page = html.unescape((out / "reports" / "agents" / "A1002.html").read_text(encoding="utf-8"))
    assert "申诉：待处理 1 · 采纳 0 · 驳回 0" in agent_page


def test_a_rerun_that_changes_a_judged_verdict_keeps_the_decision_marks_it_stale_and_requeues(out: Path, tmp_path: Path):
    _decide(out)
    rubric = (Path(__file__).resolve().parent.parent / "rubrics" / "default.zh.yaml").read_text(encoding="utf-8")
    start = rubric.index("  - id: greeting")
    greeting = rubric[start:rubric.index("  - id: self_introduction")]
    changed = rubric.replace(greeting, greeting.replace("weight: 5", "weight: 8"))  # same verdicts, other points
    new_rubric = tmp_path / "strict.zh.yaml"
    new_rubric.write_text(changed, encoding="utf-8")
    result = CliRunner().invoke(cli_app, ["score", str(out), "--rubric", str(new_rubric)])
    assert result.exit_code == 0, result.output
    items = {(r["call_id"], r["item_id"]): r for r in pq.read_table(out / "scores" / "items").to_pylist()}
    assert items[("dev_11", "greeting")]["result"] == "fail"  # the machine's verdict is unchanged ...
    assert not items[("dev_11", "greeting")]["decision_stale"]  # ... so is the decision's standing
    assert items[("dev_11", "greeting")]["final_points"] == 8.0  # and it earns the new rubric's points

    intro = rubric[rubric.index("  - id: self_introduction"):rubric.index("  - id: ask_need")]
    lenient = intro[:intro.index("    check:")] + "    check:\n      type: phrase\n      any: [您, 你]\n\n"
    flipped = rubric.replace(intro, lenient)  # any 您/你 now counts as an introduction
    new_rubric.write_text(flipped, encoding="utf-8")
    assert CliRunner().invoke(cli_app, ["score", str(out), "--rubric", str(new_rubric)]).exit_code == 0
    items = {(r["call_id"], r["item_id"]): r for r in pq.read_table(out / "scores" / "items").to_pylist()}
    row = items[("dev_07", "self_introduction")]
    assert row["result"] == "pass"  # the machine now says pass: the decision was made on its fail
    assert (row["final_result"], row["decided_by"], row["decision_stale"]) == ("pass", "lina", True)
    b = signed_in(desk_app(out), "lina")
    page = html.unescape(b.get("/calls/dev_07").text)
    assert "基于较早的机器结论（当时：未通过）作出的决定" in page
    queue = b.get("/queue?day=2025-03-07").text
    assert re.search(r'<tr class="entry stale" data-call="dev_07">', queue)
    assert "机器结论已变，需重新确认" in queue
    # deciding again on the new verdict takes it out of the queue
    assert b.act("dev_07", action="confirm", item_id="self_introduction",
                 version=version_of(b, "dev_07", "self_introduction")).status_code == 303
    assert 'class="entry stale" data-call="dev_07"' not in b.get("/queue?day=2025-03-07").text
    assert [e[2] for e in events(out)].count("override") == 2  # nothing was dropped


def test_users_add_stores_an_argon2_hash_never_the_password(out: Path):
    runner = CliRunner()
    result = runner.invoke(cli_app, ["users", "add", "xiaoli", "--role", "agent", "--agent-id", "A1003", "--out", str(out),
                                     "--password-stdin"], input="xiaoli-secret-1\n")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"xiaoli: agent for agent A1003 (review desk of {out})"
    user = ReviewDB.open(out).user("xiaoli")
    assert user.password_hash.startswith("$argon2id$") and "xiaoli-secret-1" not in user.password_hash
    assert b"xiaoli-secret-1" not in (out / "review.db").read_bytes()
    refused = runner.invoke(cli_app, ["users", "add", "x", "--role", "agent", "--out", str(out), "--password-stdin"],
                            input="long-enough-pw\n")
    assert refused.exit_code == 2 and "--agent-id is needed for --role agent" in refused.output
    short = runner.invoke(cli_app, ["users", "add", "y", "--role", "inspector", "--out", str(out), "--password-stdin"],
                          input="short\n")
    assert short.exit_code == 2 and "password too short" in short.output
    b = signed_in(desk_app(out), "lina")
    assert b.get("/calls/dev_07").status_code == 200
    xl = Browser(desk_app(out))
    assert xl.login("xiaoli", "xiaoli-secret-1").status_code == 303


def test_the_audit_trail_cannot_be_edited(out: Path):
    _decide(out)
    with sqlite3.connect(out / "review.db") as conn:
        for statement in ("UPDATE events SET to_result = 'fail'", "DELETE FROM events"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_review_refuses_a_folder_without_scores(tmp_path: Path):
    result = CliRunner().invoke(cli_app, ["review", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tmp_path / 'scores' / 'calls'}: not found (was this folder written by `qa run`?)"
    assert not (tmp_path / "review.db").exists()


def test_throttle_counts_names_and_addresses_apart():
    clock = Clock()
    throttle = LoginThrottle(max_failures=5, window_s=300, clock=clock, max_per_address=20)
    for k in range(4):
        for _ in range(5):
            throttle.failed(f"name{k}", "10.0.0.1")
    assert throttle.wait_s("name0", "10.0.0.2") == 300  # that name, from anywhere
    assert throttle.wait_s("someone", "10.0.0.2") == 0
    assert throttle.wait_s("someone", "10.0.0.1") == 300  # 20 from that address: anyone there waits
    clock.now += 150
    throttle.failed("other", "10.0.0.3")
    assert throttle.wait_s("other", "10.0.0.3") == 0
    clock.now += 151
    assert throttle.wait_s("someone", "10.0.0.1") == 0


def test_the_permission_matrix():
    from qa_pipeline.review import auth

    own, other = auth.Resource(agent_id="A1001"), auth.Resource(agent_id="A1002")
    expect = {
        # action: (inspector, supervisor, manager, agent on own, agent on other)
        auth.VIEW_QUEUE: (True, True, True, False, False),
        auth.VIEW_CALL: (True, True, True, True, False),
        auth.VIEW_AGENT: (True, True, True, True, False),
        auth.VIEW_AUDIT: (True, True, True, False, False),
        auth.DECIDE: (True, True, False, False, False),
        auth.NOTE: (True, True, False, False, False),
        auth.MARK_REVIEWED: (True, True, False, False, False),
        auth.RESOLVE_FIRST: (True, True, False, False, False),
        auth.RESOLVE_SECOND: (False, True, False, False, False),
        auth.DISPUTE: (False, False, False, True, False),
        auth.ESCALATE: (False, False, False, True, False),
        auth.ACKNOWLEDGE: (False, False, False, True, False),
        auth.SEARCH: (True, True, True, False, False),
        auth.EXPORT: (True, True, True, False, False),
        auth.VIEW_WORKLOAD: (False, True, True, False, False),
        auth.ASSIGN_BLIND: (False, True, False, False, False),
        auth.BLIND_REVIEW: (True, True, False, False, False),
    }
    assert set(expect) == set(auth.ACTIONS)
    agent = auth.Actor("wangxy", auth.AGENT, "A1001")
    for action, (inspector, supervisor, manager, mine, theirs) in expect.items():
        got = (auth.allowed(auth.Actor("a", auth.INSPECTOR), action, own),
               auth.allowed(auth.Actor("b", auth.SUPERVISOR), action, own),
               auth.allowed(auth.Actor("c", auth.MANAGER), action, own),
               auth.allowed(agent, action, own), auth.allowed(agent, action, other))
        assert got == (inspector, supervisor, manager, mine, theirs), action
        assert not auth.allowed(None, action, own)
    assert not auth.allowed(agent, auth.VIEW_CALL, auth.Resource(agent_id=None))  # a call with no agent is nobody's own
    with pytest.raises(ValueError, match="unknown action"):
        auth.allowed(agent, "delete-everything", own)


def test_a_batch_caught_mid_write_leaves_the_last_good_read(out: Path):
    import pyarrow as pa
    import pyarrow.compute as pc

    b = signed_in(desk_app(out), "lina")
    assert b.get("/calls/dev_07").status_code == 200
    part = out / "scores" / "items" / "call_date=2025-03-07" / "part-0.parquet"
    items = pq.read_table(part)
    ghost = items.set_column(0, "call_id", pc.replace_substring(items.column("call_id"), "dev_07", "ghost"))
    half = out / "scores" / "items" / "call_date=2025-03-09" / "part-0.parquet"  # items of a call not yet in scores/calls
    half.parent.mkdir()
    pq.write_table(ghost.filter(pc.equal(ghost.column("call_id"), pa.scalar("ghost"))), half)
    assert b.get("/queue?day=all&state=all").status_code == 200
    assert b.get("/calls/dev_07").status_code == 200
    assert b.get("/calls/ghost").status_code == 404
    half.unlink()
    half.parent.rmdir()
    assert b.get("/calls/dev_07").status_code == 200
