"""The review desk in a real headless Chromium, as the people who use it click through it.

The desk runs under uvicorn on 127.0.0.1 over a real OUT (the 12 labelled dev calls scored by the
real `qa score` code; dev_11 plays its real recording) and a real OUT/review.db. Chromium is the
one the report tests drive (tests/test_browser.py's DevTools-over-a-pipe client); forms are
filled in and submitted with real mouse clicks, so CSRF tokens, cookies and redirects are the
browser's own.

Scenario: an inspector opens the queue, opens a call, plays the evidence, overrides an item with
a reason and sees the score change on the card and on the agent page; the agent disputes another
item (申诉); another inspector rejects it (一审); the agent escalates (二审); a supervisor accepts
it, finally; the agent signs for the evaluation (签收) and it leaves their list of unacknowledged
ones; another agent gets a 404 for that call.

Attack: a page served from 127.0.0.1:<another port> (same site, another origin; cookies ignore
ports) plants the cookie and token it fetched anonymously from the desk and auto-submits an
override in a signed-in supervisor's browser: refused, nothing recorded.
"""

from __future__ import annotations

import html
import json
import re
import socket
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import uvicorn

from review_out import USERS, add_users, build_out
from test_browser import AUDIO_READY, CHROMIUM_FLAGS, Browser, Page, artifacts_dir, chromium_binary, open_page
from qa_pipeline.review.app import create_app, make_desk
from qa_pipeline.review.policy import Policy

TODAY = date(2025, 3, 8)
# the report tests' flags, but the desk on 127.0.0.1 may be reached; any other host still may not
FLAGS = tuple("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" if f.startswith("--host-resolver-rules")
              else f for f in CHROMIUM_FLAGS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def desk_out(tmp_path_factory) -> Path:
    return build_out(tmp_path_factory.mktemp("desk") / "out")


@pytest.fixture(scope="module")
def desk_url(desk_out: Path) -> Iterator[str]:
    out = desk_out
    add_users(out)
    app = create_app(make_desk(out, Policy(), today=lambda: TODAY, refresh_every_s=0.0))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the desk did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    binary = chromium_binary()
    folder = tmp_path_factory.mktemp("chromium-desk")
    started = Browser(binary, folder / "profile", folder / "chromium.log", FLAGS)
    try:
        started.call("Browser.getVersion")
        yield started
    finally:
        started.close()


def _loads(page: Page) -> int:
    return sum(1 for e in page.browser.events if page._is_load(e))


def _wait_load(page: Page, before: int) -> None:
    count = [0]

    def nth(event) -> bool:
        if page._is_load(event):
            count[0] += 1
        return count[0] > before

    page.browser.wait_for(nth) if _loads(page) <= before else None


def goto(page: Page, url: str) -> None:
    before = _loads(page)
    page.call("Page.navigate", {"url": url})
    _wait_load(page, before)


def _where(page: Page, selector: str, scroll: bool) -> dict:
    return page.evaluate(
        f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
        + (" el.scrollIntoView({block: 'center', behavior: 'instant'});" if scroll else "")
        + " const r = el.getBoundingClientRect(); const x = r.left + r.width / 2, y = r.top + r.height / 2;"
        " const hit = document.elementFromPoint(x, y); return {x, y, ok: hit === el || el.contains(hit)}; })()"
    )


def click(page: Page, selector: str) -> None:
    """A real mouse click on the element, once it stands still (a smooth scroll started by the
    page's own script has finished) and nothing (the sticky player) covers it."""
    deadline = time.monotonic() + 10
    box = _where(page, selector, scroll=True)
    while True:
        time.sleep(0.2)
        again = _where(page, selector, scroll=False)
        if again == box and box["ok"]:
            break
        assert time.monotonic() < deadline, f"{selector} does not stay still and uncovered"
        box = _where(page, selector, scroll=True) if not again["ok"] else again
    for kind in ("mousePressed", "mouseReleased"):
        page.call("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"], "button": "left",
                                               "clickCount": 1})


def click_and_wait(page: Page, selector: str) -> None:
    before = _loads(page)
    click(page, selector)
    _wait_load(page, before)


def fill(page: Page, selector: str, value: str) -> None:
    page.evaluate(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")


def status(page: Page) -> int:
    return page.evaluate("performance.getEntriesByType('navigation')[0].responseStatus")


def text(page: Page) -> str:
    return page.evaluate("document.body.innerText")


def login(page: Page, base: str, name: str) -> None:
    goto(page, f"{base}/login")
    fill(page, "input[name=name]", name)
    fill(page, "input[name=password]", USERS[name][2])
    click_and_wait(page, "form[action='/login'] button[type=submit]")


def logout(page: Page) -> None:
    click_and_wait(page, "nav form[action='/logout'] button")


def sign_in_afresh(page: Page, base: str, name: str) -> None:
    """Sign in as `name` in a browser that may still hold someone's session from an earlier test."""
    goto(page, f"{base}/login")
    if page.evaluate("location.pathname") != "/login":
        logout(page)
    login(page, base, name)


def final_score(page: Page) -> str:
    return page.evaluate("document.querySelector('#final-score .num').textContent")


def item_form(item_id: str, action: str) -> str:
    return f"#item-{item_id} form.decide button[value={action}]"


def test_inspector_agent_supervisor_and_another_agent(browser: Browser, desk_url: str):
    page = open_page(browser)
    try:
        # the inspector: queue → call → evidence → override with a reason
        login(page, desk_url, "lina")
        assert page.evaluate("location.pathname") == "/queue"
        queue_calls = page.evaluate("[...document.querySelectorAll('#queue tr.entry')].map(r => r.dataset.call)")
        assert "dev_11" in queue_calls and "dev_03" == queue_calls[0]  # machine-unsure items first
        click_and_wait(page, "#queue tr.entry[data-call=dev_11] a")
        assert page.evaluate("location.pathname") == "/calls/dev_11"
        assert page.evaluate(AUDIO_READY, await_promise=True) == pytest.approx(46.2, abs=0.2)
        stamps = page.evaluate("[...document.querySelectorAll('a.evidence.seek')].map(a => parseFloat(a.dataset.t))")
        k = len(stamps) - 1
        page.click("a.evidence.seek", k)
        assert page.evaluate("document.getElementById('audio').currentTime") == pytest.approx(stamps[k], abs=0.5)
        page.evaluate("document.getElementById('audio').pause()")
        before = final_score(page)
        assert before == "56.2"
        page.evaluate("document.querySelector('#item-greeting select[name=result]').value = 'pass'")
        fill(page, "#item-greeting textarea[name=reason]", "录音里开头说了“您好”，转写成了“你好”")
        click_and_wait(page, item_form("greeting", "override"))
        assert page.evaluate("location.pathname") == "/calls/dev_11"
        after = final_score(page)
        assert after != before and after == "62.5"  # greeting's 5 points back: 50 of 80
        assert "机器：未通过 → 质检员 lina：通过（录音里开头说了“您好”，转写成了“你好”）" in text(page)
        page.screenshot(artifacts_dir() / "desk-call-card.png")
        goto(page, f"{desk_url}/agents/A1001")
        row = page.evaluate("document.querySelector('#calls tr[data-call=dev_11] .final-score').textContent")
        assert row == after
        logout(page)

        # the agent: disputes another failed item of their own call (申诉)
        login(page, desk_url, "wangxy")
        assert page.evaluate("location.pathname") == "/agents/A1001"
        assert page.evaluate("!!document.querySelector('#unacknowledged tr[data-call=dev_11]')")
        goto(page, f"{desk_url}/calls/dev_11")
        assert page.evaluate("document.querySelectorAll('button[value=override]').length") == 0
        assert "申诉截至 2025-03-14" in text(page)
        fill(page, "#item-closing textarea[name=reason]", "最后问了客户还有没有其他问题")
        click_and_wait(page, item_form("closing", "dispute"))
        assert "申诉待一审" in text(page)
        assert page.evaluate("document.querySelectorAll('#item-closing button[value=dispute]').length") == 0  # once
        logout(page)

        # another inspector: 一审, from the queue's list of disputes with their due dates
        login(page, desk_url, "zhaoqiang")
        assert "待处理申诉（1，按期限）" in text(page) and "一审应于" in text(page)
        click_and_wait(page, "#pending-disputes a[href='/calls/dev_11#item-closing']")
        fill(page, "#item-closing textarea[name=reason]", "录音里没有问还有什么需要")
        click_and_wait(page, item_form("closing", "reject"))
        assert "一审已驳回" in text(page)
        logout(page)

        # the agent: escalates once (二审)
        login(page, desk_url, "wangxy")
        goto(page, f"{desk_url}/calls/dev_11")
        assert "申请二审截至" in text(page)
        fill(page, "#item-closing textarea[name=reason]", "请主管听录音结尾")
        click_and_wait(page, item_form("closing", "escalate"))
        assert "二审待处理" in text(page)
        assert page.evaluate("document.querySelectorAll('#item-closing button[value=escalate]').length") == 0  # once
        logout(page)

        # the supervisor: 二审 accepts it, and that is final
        login(page, desk_url, "zhoumin")
        goto(page, f"{desk_url}/disputes")
        assert "二审待处理" in text(page) and "二审应于" in text(page)
        click_and_wait(page, "#disputes a[href='/calls/dev_11#item-closing']")
        fill(page, "#item-closing textarea[name=reason]", "核实录音，采纳")
        click_and_wait(page, item_form("closing", "accept"))
        assert "二审已采纳（最终）" in text(page) and "核实录音，采纳" in text(page)
        assert "一审驳回" in text(page) and "申请二审" in text(page)  # every step on the card and in its trail
        assert final_score(page) == "75.0"  # closing's 10 points too: 60 of 80
        assert page.evaluate("document.querySelectorAll('#item-closing form.decide').length") == 0
        logout(page)

        # the agent signs for the evaluation (签收)
        login(page, desk_url, "wangxy")
        goto(page, f"{desk_url}/calls/dev_11")
        assert "未签收" in text(page)
        click_and_wait(page, "#acknowledgement button[value=acknowledge]")
        assert "已签收（" in text(page)
        goto(page, f"{desk_url}/agents/A1001")
        assert not page.evaluate("!!document.querySelector('#unacknowledged tr[data-call=dev_11]')")
        assert page.evaluate("document.querySelector('#calls tr[data-call=dev_11] .ack').textContent") == "已签收"
        logout(page)

        # another agent: the call is not there for them
        login(page, desk_url, "liting")
        goto(page, f"{desk_url}/calls/dev_11")
        assert status(page) == 404
        assert "没有这个页面" in text(page) and "dev_11" not in text(page)
        goto(page, f"{desk_url}/audio/dev_11")
        assert status(page) == 404

        assert [e for e in page.errors if "Failed to load resource" not in e] == []  # no script error, no CSP refusal
        assert page.dialogs == []
        assert all(u.startswith(desk_url) or u.startswith("data:") for u in page.requests), page.requests
    finally:
        browser.on_event = None
        browser.call("Target.closeTarget", {"targetId": page.target})


@pytest.fixture()
def attacker() -> Iterator[tuple[str, dict]]:
    """Another web server on 127.0.0.1, another port: serves ``page["html"]`` at /."""
    page = {"html": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = page["html"].encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", page
    server.shutdown()
    thread.join(timeout=10)


def overrides(out: Path, call_id: str) -> list[tuple]:
    with sqlite3.connect(out / "review.db") as conn:
        return conn.execute("SELECT actor, item_id FROM events WHERE action = 'override' AND call_id = ?",
                            (call_id,)).fetchall()


def test_a_page_on_another_localhost_port_cannot_change_anything(browser: Browser, desk_url: str, desk_out: Path,
                                                                 attacker):
    attacker_url, served = attacker
    with urllib.request.urlopen(f"{desk_url}/login") as response:  # anyone may fetch the sign-in page
        token = html.unescape(re.search(r'name="csrftoken" value="([^"]+)"', response.read().decode()).group(1))
        cookies = [c.split(";")[0] for c in response.headers.get_all("set-cookie") or []]
    plant = "".join(f"document.cookie = {json.dumps(c + '; path=/')};" for c in [*cookies, f"csrftoken={token}"])
    fields = {"csrftoken": token, "action": "override", "item_id": "self_introduction", "result": "pass",
              "reason": "attack"}
    inputs = "".join(f'<input name="{k}" value="{html.escape(v)}">' for k, v in fields.items())
    served["html"] = (f'<!doctype html><meta charset="utf-8"><form id="f" method="post" '
                      f'action="{desk_url}/calls/dev_07/act">{inputs}</form>'
                      f"<script>{plant} document.getElementById('f').submit();</script>")
    before = overrides(desk_out, "dev_07")
    page = open_page(browser)
    try:
        sign_in_afresh(page, desk_url, "zhoumin")
        assert page.evaluate("location.pathname") == "/queue"
        goto(page, attacker_url)
        deadline = time.monotonic() + 20
        while not (page.evaluate("location.href").startswith(desk_url)
                   and page.evaluate("document.readyState") == "complete"):
            assert time.monotonic() < deadline, "the attacker's form was not submitted"
            time.sleep(0.1)
        assert status(page) == 403
        assert "跨站请求" in text(page)
        assert overrides(desk_out, "dev_07") == before  # nothing recorded, nobody blamed
        goto(page, f"{desk_url}/calls/dev_07")
        assert "attack" not in text(page)
        logout(page)
    finally:
        browser.on_event = None
        browser.call("Target.closeTarget", {"targetId": page.target})


def press(page: Page, key: str) -> None:
    """A real key press as the keyboard sends it (keyDown with its text, then keyUp)."""
    shift = key in "?+" or key.isupper()
    down = {"type": "keyDown", "key": key, "text": key if len(key) == 1 else "", "modifiers": 8 if shift else 0}
    if len(key) > 1:
        down["code"] = key
        down["windowsVirtualKeyCode"] = {"Escape": 27}.get(key, 0)
    page.call("Input.dispatchKeyEvent", down)
    page.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "modifiers": down["modifiers"]})


def press_and_wait(page: Page, key: str) -> None:
    before = _loads(page)
    press(page, key)
    _wait_load(page, before)


def uncovered(page: Page, selector: str) -> bool:
    """The element's top is in the window and below the sticky player (or there is no player)."""
    return page.evaluate(
        f"(() => {{ const el = document.querySelector({json.dumps(selector)}); const r = el.getBoundingClientRect();"
        " const p = document.querySelector('.player'); const below = p ? p.getBoundingClientRect().bottom : 0;"
        " return r.top >= below - 1 && r.top < window.innerHeight; })()")


def settle(page: Page) -> None:
    time.sleep(0.6)  # smooth scrolling and the audio element's first events


def blind_rows(page: Page) -> list[dict]:
    return page.evaluate("[...document.querySelectorAll('#blind-reviews tr[data-id]')].map(r => "
                         "({call: r.dataset.call, id: r.dataset.id, status: r.querySelector('.status').textContent}))")


def test_a_morning_next_in_queue_keys_search_and_blind_double_review(browser: Browser, desk_url: str, desk_out: Path):
    page = open_page(browser)
    try:
        # next-in-queue by keys: the first entry, help, a key typed in a text field is text, c confirms and moves on
        sign_in_afresh(page, desk_url, "zhaoqiang")
        first = page.evaluate("document.querySelector('#queue tr.entry a').getAttribute('href')")
        click_and_wait(page, "#start-queue")
        assert page.evaluate("location.pathname + location.search + location.hash") == first
        item = first.split("#item-")[1]
        assert page.evaluate(f"document.getElementById('item-{item}').classList.contains('selected')")
        press(page, "?")
        assert page.evaluate("!document.getElementById('keys-help').hidden")
        assert "键盘快捷键" in text(page)
        press(page, "Escape")
        assert page.evaluate("document.getElementById('keys-help').hidden")
        page.evaluate(f"document.querySelector('#item-{item} textarea[name=reason]').focus()")
        press(page, "c")
        press(page, "n")
        settle(page)
        assert page.evaluate("location.pathname + location.search + location.hash") == first  # nothing fired
        assert page.evaluate(f"document.querySelector('#item-{item} textarea[name=reason]').value") == "cn"
        page.evaluate(f"(() => {{ const t = document.querySelector('#item-{item} textarea[name=reason]'); t.value = '';"
                      " t.blur(); })()")
        press_and_wait(page, "c")
        second = page.evaluate("location.pathname + location.search + location.hash")
        assert second != first and second.startswith("/calls/")
        with sqlite3.connect(desk_out / "review.db") as conn:
            assert conn.execute("SELECT count(*) FROM events WHERE actor = 'zhaoqiang' AND action = 'confirm' "
                                "AND item_id = ?", (item,)).fetchone()[0] == 1
        press_and_wait(page, "n")  # skip: the entry after this one
        assert page.evaluate("location.pathname + location.search + location.hash") not in (first, second)

        # search: the hit is linked to the second it was said; the player neither hides it nor the item jumped to
        goto(page, f"{desk_url}/search")
        fill(page, "input[name=q]", "营业厅")
        click_and_wait(page, "#search-form button[type=submit]")
        assert page.evaluate("document.querySelector('#hits mark').textContent") == "营业厅"
        click_and_wait(page, "#hits tr[data-call=dev_11] a")
        assert page.evaluate("location.pathname + location.hash") == "/calls/dev_11#t=36.16"
        assert page.evaluate(AUDIO_READY, await_promise=True) == pytest.approx(46.2, abs=0.2)
        settle(page)
        assert page.evaluate("document.getElementById('audio').currentTime") == pytest.approx(36.16, abs=0.3)
        current = page.evaluate("document.querySelector('.msg.current .bubble').textContent")
        assert current.startswith("可以的，需要机主带身份证到营业厅办理停机")
        assert uncovered(page, ".msg.current")
        goto(page, f"{desk_url}/search?q=账号是")  # a customer's number said in pieces is masked in the hit
        hit = page.evaluate("document.querySelector('#hits tr[data-call=dev_11] .text').textContent")
        assert "零五七一" not in hit and "七七零九" not in hit and "账号是" in hit
        goto(page, f"{desk_url}/queue")
        goto(page, f"{desk_url}/calls/dev_11#item-closing")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.evaluate("location.hash = ''; location.hash = '#item-closing'")
        settle(page)
        assert uncovered(page, "#item-closing")  # jumped to, and not under the sticky player
        press(page, "=")
        press(page, "=")
        assert page.evaluate("[document.getElementById('speed').value, document.getElementById('audio').playbackRate]") \
            == ["1.5", 1.5]
        page.evaluate("document.getElementById('speed').value = '0.75';"
                      "document.getElementById('speed').dispatchEvent(new Event('change'))")
        assert page.evaluate("document.getElementById('audio').playbackRate") == 0.75

        # p plays the selected item's evidence; o goes to its override reason, Ctrl+Enter saves the override
        target = page.evaluate("(() => { const el = [...document.querySelectorAll('.cols .item')].find(i => "
                               "i.querySelector('a.evidence.seek') && i.querySelector('button[value=override]'));"
                               " return el && el.id; })()")
        assert target
        goto(page, f"{desk_url}/queue")
        goto(page, f"{desk_url}/calls/dev_11#{target}")
        assert page.evaluate(AUDIO_READY, await_promise=True) == pytest.approx(46.2, abs=0.2)
        assert page.evaluate(f"document.getElementById('{target}').classList.contains('selected')")
        said = page.evaluate(f"parseFloat(document.querySelector('#{target} a.evidence.seek').dataset.t)")
        page.evaluate(f"document.getElementById('audio').currentTime = {(said + 20) % 46}")  # elsewhere first
        press(page, "p")
        settle(page)
        assert page.evaluate("document.getElementById('audio').currentTime") == pytest.approx(said, abs=0.5)
        page.evaluate("document.getElementById('audio').pause()")
        press(page, "o")
        assert page.evaluate(f"document.activeElement === document.querySelector('#{target} form.decide "
                             "textarea[name=reason]')")
        page.call("Input.insertText", {"text": "按键改判：录音核实"})
        before = _loads(page)
        for kind in ("keyDown", "keyUp"):
            page.call("Input.dispatchKeyEvent", {"type": kind, "key": "Enter", "code": "Enter",
                                                 "windowsVirtualKeyCode": 13, "modifiers": 2})
        _wait_load(page, before)
        item_id = target.removeprefix("item-")
        with sqlite3.connect(desk_out / "review.db") as conn:
            assert conn.execute("SELECT count(*) FROM events WHERE actor = 'zhaoqiang' AND action = 'override' "
                                "AND call_id = 'dev_11' AND item_id = ? AND reason = ?",
                                (item_id, "按键改判：录音核实")).fetchone()[0] == 1
        assert "质检员 zhaoqiang" in text(page) and "按键改判：录音核实" in text(page)
        logout(page)

        # blind double review: the supervisor draws one call for two inspectors
        login(page, desk_url, "zhoumin")
        goto(page, f"{desk_url}/blind")
        page.evaluate("(() => { const f = document.getElementById('blind-assign');"
                      " f.day.value = '2025-03-07'; f.n.value = '1'; f.first.value = 'lina'; f.second.value = 'zhaoqiang'; })()")
        before = {r["id"] for r in blind_rows(page)}
        click_and_wait(page, "#blind-assign button[type=submit]")
        [made] = [r for r in blind_rows(page) if r["id"] not in before]
        call_id, rid = made["call"], made["id"]
        logout(page)

        for name, reason in (("lina", "甲：开头没有问候"), ("zhaoqiang", "乙：问候被打断")):
            login(page, desk_url, name)
            goto(page, f"{desk_url}/calls/{call_id}")  # sent to the blind form, not the card with verdicts
            assert page.evaluate("location.pathname") == f"/blind/{rid}"
            assert "甲：" not in text(page) and "机器结论" not in text(page)
            page.evaluate("document.querySelectorAll('#blind-form .item').forEach((el, k) => "
                          "el.querySelectorAll('input[type=radio]')[k === 0 && " + json.dumps(name == "lina")
                          + " ? 1 : 0].checked = true)")
            fill(page, "#blind-form input[type=text]", reason)
            click_and_wait(page, "#blind-submit")
            assert page.evaluate("location.pathname") == f"/blind/{rid}"
            if name == "lina":
                assert "您已提交，等待对方" in text(page)
                logout(page)
        assert "甲：开头没有问候" in text(page) and "乙：问候被打断" in text(page)
        assert page.evaluate("document.querySelectorAll('#blind-result tr.disagree').length") == 1
        logout(page)
        assert [e for e in page.errors if "Failed to load resource" not in e] == []  # no script error, no CSP refusal
    finally:
        browser.on_event = None
        browser.call("Target.closeTarget", {"targetId": page.target})
