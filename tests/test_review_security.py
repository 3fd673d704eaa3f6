"""The desk under the attacks of issue 22: forms posted from another origin or with another
session's token, the key and the database readable by others, sessions that outlive a sign-out,
bodies without a cap, a spoofed X-Forwarded-For, multipart posts, bad versions, labels JSON nested
100,000 deep. A real OUT and review.db; the ASGI client, or `qa review` itself on 127.0.0.1 where
the server matters (body cap, proxy headers). The browser case is in tests/test_review_browser.py."""

from __future__ import annotations

import html
import os
import select
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from cli import app as cli_app
from review_out import USERS, add_users, build_out
from test_review_app import TOKEN, Browser, desk_app, events, out, signed_in, template_out, version_of  # noqa: F401
from qa_pipeline.review.db import DB_FILE, KEY_FILE, ReviewDB

QA = Path(sys.executable).parent / "qa"
OVERRIDE = {"action": "override", "item_id": "self_introduction", "result": "pass", "reason": "说了工号"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- CSRF: bound to the session, and the origin checked ------------------------------------------


def test_a_token_from_another_session_or_an_anonymous_page_is_refused(out: Path):
    """The attack on main: any page of the same host fetched /login for a valid token, set it as the
    victim's `csrftoken` cookie (cookies ignore ports) and posted it."""
    app = desk_app(out)
    lina = signed_in(app, "lina")
    version = version_of(lina, "dev_07", "self_introduction")
    stranger = TestClient(app, base_url="http://testserver", follow_redirects=False)
    page = stranger.get("/login")
    anonymous_token = html.unescape(TOKEN.search(page.text).group(1))
    planted = {**dict(stranger.cookies.items()), "csrftoken": anonymous_token}  # the anonymous page's cookies
    cookie = "; ".join(f"{k}={v}" for k, v in {**planted, "qa_session": lina.client.cookies.get("qa_session")}.items())
    victim = TestClient(app, base_url="http://testserver", follow_redirects=False, cookies=None)
    form = {**OVERRIDE, "version": str(version)}
    attack = victim.post("/calls/dev_07/act", data={**form, "csrftoken": anonymous_token}, headers={"cookie": cookie})
    assert attack.status_code == 403
    other = signed_in(app, "zhaoqiang")
    other.get("/queue")
    assert lina.client.post("/calls/dev_07/act", data={**form, "csrftoken": other.token}).status_code == 403
    assert events(out) == []
    lina.get("/calls/dev_07")
    assert lina.act("dev_07", **form).status_code == 303  # her own page's token
    assert [e[:3] for e in events(out)] == [("lina", "inspector", "override")]


def test_a_post_from_another_origin_is_refused_even_with_the_sessions_token(out: Path):
    lina = signed_in(desk_app(out), "lina")
    form = {**OVERRIDE, "version": str(version_of(lina, "dev_07", "self_introduction")), "csrftoken": lina.token}
    for headers in ({"origin": "http://127.0.0.1:9999"},  # a page on another port of the same machine
                    {"sec-fetch-site": "same-site"},  # what Chromium says for that page
                    {"sec-fetch-site": "cross-site"}, {"origin": "null"},
                    {"origin": "http://testserver", "sec-fetch-site": "same-site"}):
        refused = lina.client.post("/calls/dev_07/act", data=form, headers=headers)
        assert refused.status_code == 403, headers
        assert "跨站请求" in refused.text
    assert events(out) == []
    ok = lina.client.post("/calls/dev_07/act", data=form,
                          headers={"origin": "http://testserver", "sec-fetch-site": "same-origin"})
    assert ok.status_code == 303
    assert len(events(out)) == 1


# --- the database and the key: 0600, the key not in the database -----------------------------------


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def test_database_and_key_are_0600_whatever_the_umask_and_the_key_is_not_in_the_database(tmp_path: Path):
    with umask(0o022):
        out = build_out(tmp_path / "out")
        add_users(out)
        b = signed_in(desk_app(out), "lina")
        assert b.act("dev_07", **OVERRIDE, version=version_of(b, "dev_07", "self_introduction")).status_code == 303
        files = [out / DB_FILE, out / f"{DB_FILE}-wal", out / f"{DB_FILE}-shm", out / KEY_FILE]
        assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
        trail = out / "reviews" / "reviews.parquet"  # what the batch exports
        assert CliRunner().invoke(cli_app, ["score", str(out)]).exit_code == 0
    key = (out / KEY_FILE).read_text(encoding="ascii").strip()
    with sqlite3.connect(out / DB_FILE) as conn:
        assert [r[0] for r in conn.execute("SELECT key FROM settings")] == ["schema_version"]
    for copied in (out / DB_FILE, out / f"{DB_FILE}-wal", trail):
        assert key.encode() not in copied.read_bytes(), copied
    assert {c for c in pq.read_table(trail).column_names} >= {"actor", "action"}


V1_SCHEMA = """
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, agent_id TEXT, password_hash TEXT NOT NULL,
                    created_at TEXT NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
    action TEXT NOT NULL, call_id TEXT NOT NULL, item_id TEXT, from_result TEXT, to_result TEXT, points REAL,
    reason TEXT, basis_id INTEGER REFERENCES events(id), ref_id INTEGER REFERENCES events(id));
INSERT INTO settings VALUES ('schema_version', '1'), ('secret', 'the-old-secret-that-signed-every-cookie-until-now');
"""


def test_a_desk_of_the_first_version_loses_its_secret_and_its_loose_mode(tmp_path: Path):
    from qa_pipeline.review.auth import hash_password

    out = build_out(tmp_path / "out")
    with umask(0o022), sqlite3.connect(out / DB_FILE) as conn:
        conn.executescript(V1_SCHEMA)
        conn.execute("INSERT INTO users VALUES ('lina', 'inspector', NULL, ?, '2025-03-01T09:00:00+08:00')",
                     (hash_password(USERS["lina"][2]),))
        conn.execute("INSERT INTO users VALUES ('wangxy', 'agent', 'A1001', ?, '2025-03-01T09:00:00+08:00')",
                     (hash_password(USERS["wangxy"][2]),))
        conn.execute("INSERT INTO events (at, actor, role, action, call_id, item_id, from_result, to_result, reason) "
                     "VALUES ('2025-03-08T09:00:00+08:00', 'lina', 'inspector', 'note', 'dev_11', NULL, NULL, NULL, "
                     "'写于第一版')")
    conn.close()
    assert mode(out / DB_FILE) == 0o644
    db = ReviewDB.open(out)
    assert mode(out / DB_FILE) == 0o600
    assert db.setting("secret") is None and db.setting("schema_version") == "4"
    assert db.user("lina").session_gen == 0 and not db.user("lina").disabled
    assert [(e.id, e.actor, e.action, e.reason) for e in db.events() if e.action != "machine"] == [
        (1, "lina", "note", "写于第一版")]
    db.close()
    assert signed_in(desk_app(out), "lina").get("/queue").status_code == 200
    agent = signed_in(desk_app(out), "wangxy")
    agent.get("/calls/dev_11")
    assert agent.post("/calls/dev_11/act", {"action": "acknowledge"}).status_code == 303  # an action version 1 lacked
    with sqlite3.connect(out / DB_FILE) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM events")  # the rebuilt trail is append-only again


# --- sessions end: sign-out, new password, disabled account -----------------------------------------


def works(app, cookie: str) -> bool:
    client = TestClient(app, base_url="http://testserver", follow_redirects=False)
    return client.get("/queue", headers={"cookie": f"qa_session={cookie}"}).status_code == 200


def test_signing_out_ends_every_session_of_that_user(out: Path):
    app = desk_app(out)
    office, home = signed_in(app, "lina"), signed_in(app, "lina")
    other = signed_in(app, "zhaoqiang")
    copied = office.client.cookies.get("qa_session")
    assert works(app, copied) and home.get("/queue").status_code == 200
    office.get("/queue")
    assert office.post("/logout", {}).status_code == 303
    assert not works(app, copied)  # the cookie copied before signing out
    assert home.get("/queue").status_code == 303  # the other browser too
    assert other.get("/queue").status_code == 200  # another user's session stays
    assert signed_in(app, "lina").get("/queue").status_code == 200  # signing in again works


def test_a_new_password_and_a_disabled_account_end_the_sessions_at_once(out: Path):
    app = desk_app(out)
    runner = CliRunner()
    lina = signed_in(app, "lina")
    cookie = lina.client.cookies.get("qa_session")
    result = runner.invoke(cli_app, ["users", "passwd", "lina", "--out", str(out), "--password-stdin"],
                           input="lina-new-password\n")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "lina: new password; every session of lina has ended"
    assert not works(app, cookie)  # the running desk, no restart
    assert Browser(app).login("lina").status_code == 401  # the old password
    lina = Browser(app)
    assert lina.login("lina", "lina-new-password").status_code == 303
    cookie = lina.client.cookies.get("qa_session")
    assert works(app, cookie)

    result = runner.invoke(cli_app, ["users", "disable", "lina", "--out", str(out)])
    assert result.exit_code == 0 and result.output.strip() == "lina: disabled; every session of lina has ended"
    assert not works(app, cookie)
    refused = Browser(app).login("lina", "lina-new-password")
    assert refused.status_code == 403 and "该账号已停用" in refused.text
    listed = runner.invoke(cli_app, ["users", "list", "--out", str(out)]).output.splitlines()
    rows = {line.split("\t")[0]: line.split("\t") for line in listed}
    assert rows["lina"][:3] == ["lina", "inspector", ""] and rows["lina"][3].startswith("disabled 20")
    assert rows["zhaoqiang"][3] == "active"
    assert runner.invoke(cli_app, ["users", "enable", "lina", "--out", str(out)]).exit_code == 0
    assert Browser(app).login("lina", "lina-new-password").status_code == 303
    missing = runner.invoke(cli_app, ["users", "disable", "nobody", "--out", str(out)])
    assert missing.exit_code == 2 and missing.output.strip() == f"error: nobody: no such user on the desk of {out}"


# --- multipart, versions ---------------------------------------------------------------------------


def test_multipart_posts_work_anonymously_too(out: Path):
    app = desk_app(out)
    b = Browser(app)
    b.get("/login")
    fields = {"name": "lina", "password": USERS["lina"][2], "next": "/queue", "csrftoken": b.token}
    response = b.client.post("/login", data=fields, files={"note": ("note.txt", b"x", "text/plain")})
    assert response.status_code == 303 and response.headers["location"] == "/queue"
    version = version_of(b, "dev_07", "self_introduction")
    form = {**OVERRIDE, "version": str(version), "csrftoken": b.token}
    assert b.client.post("/calls/dev_07/act", data={**form, "csrftoken": "x"}, files={"f": ("a", b"a")}).status_code == 403
    assert b.client.post("/calls/dev_07/act", data=form, files={"f": ("a", b"a")}).status_code == 303
    assert [e[2] for e in events(out)] == ["override"]
    broken = b.client.post("/calls/dev_07/act", content=b"--x\r\nnot a part",
                           headers={"content-type": "multipart/form-data; boundary=x"})
    assert broken.status_code == 403


@pytest.mark.parametrize("version", ["²", "-1", "1e3", " 7", "", None])
def test_a_missing_or_bad_version_is_a_400_and_nothing_is_saved(out: Path, version):
    b = signed_in(desk_app(out), "lina")
    b.get("/calls/dev_07")
    form = dict(OVERRIDE) | ({"version": version} if version is not None else {})
    refused = b.post("/calls/dev_07/act", form)
    assert refused.status_code == 400
    assert "页面版本缺失或无效" in refused.text
    reviewed = b.post("/calls/dev_07/act", {"action": "reviewed"} | ({"version": version} if version is not None else {}))
    assert reviewed.status_code == 400
    assert events(out) == []


# --- labels JSON nested 100,000 deep ---------------------------------------------------------------


def test_labels_json_nested_100000_deep_is_one_line_and_no_batch_fails(out: Path, tmp_path: Path):
    deep = "[" * 100_000 + "]" * 100_000
    labels = tmp_path / "labels.json"
    labels.write_text(deep, encoding="utf-8")
    result = CliRunner().invoke(cli_app, ["calibrate", str(out), "--labels", str(labels)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {labels}: JSON nested too deep "
                                                  '(labels are {call_id: {"items": {item_id: result}}})']
    (out / "labels.json").write_text('{"dev_07": {"items": ' * 50_000 + "1" + "}}" * 50_000, encoding="utf-8")
    scored = CliRunner().invoke(cli_app, ["score", str(out)])
    assert scored.exit_code == 0, scored.output  # the night is scored; the labels are left out, with a warning
    assert signed_in(desk_app(out), "lina").get("/queue").status_code == 200


# --- `qa review` itself: the body cap and proxy headers ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_desk(out: Path, *flags: str) -> Iterator[tuple[str, int]]:
    port = _free_port()
    server = subprocess.Popen([str(QA), "review", str(out), "--port", str(port), *flags],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/login", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "qa review did not start"
                time.sleep(0.05)
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(timeout=10)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def raw_request(port: int, head: str, body_parts: Iterator[bytes], timeout_s: float = 60.0) -> tuple[str, int]:
    """Send a request by hand, reading while sending; returns (the answer's status line, bytes of
    the body sent before it came)."""
    parts = iter(body_parts)
    pending, sent, answer = b"", 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(head.encode())
        s.setblocking(False)
        end = time.monotonic() + timeout_s
        while b"\r\n" not in answer and time.monotonic() < end:
            if not pending:
                pending = next(parts, b"")
            readable, writable, _ = select.select([s], [s] if pending else [], [], 0.5)
            if readable:
                try:
                    data = s.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                answer += data
            elif writable:
                try:
                    n = s.send(pending)
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    pending, parts = b"", iter(())
                    continue
                sent += n
                pending = pending[n:]
    return answer.split(b"\r\n", 1)[0].decode(), sent


def test_a_60_mb_anonymous_post_is_refused_before_it_is_read(out: Path):
    with running_desk(out) as (base, pid):
        port = int(base.rsplit(":", 1)[1])
        before = rss_kb(pid)
        mb = b"x" * (1 << 20)
        head = ("POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {60 << 20}\r\n\r\n")
        status, sent = raw_request(port, head, iter([b"name=a&password=" + b"x" * 1000] + [mb] * 60))
        assert status == "HTTP/1.1 413 Request Entity Too Large"
        assert sent < (8 << 20)  # the answer came while the body was still being sent

        def chunks() -> Iterator[bytes]:
            for _ in range(60):
                yield b"%x\r\n" % len(mb) + mb + b"\r\n"

        head = ("POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                "Transfer-Encoding: chunked\r\n\r\n")
        status, sent = raw_request(port, head, chunks())  # no Content-Length: counted as it comes
        assert status == "HTTP/1.1 413 Request Entity Too Large"
        assert rss_kb(pid) - before < 20_000  # the server did not keep the 60 MB
        assert httpx.get(f"{base}/login").status_code == 200


def failed_logins(base: str, n: int, forwarded_for: callable) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for k in range(n):
            page = client.get("/login")
            token = html.unescape(TOKEN.search(page.text).group(1))
            response = client.post("/login", data={"name": f"guess{k}", "password": "wrong-password", "next": "/",
                                                   "csrftoken": token},
                                   headers={"x-forwarded-for": forwarded_for(k)})
            statuses.append(response.status_code)
    return statuses


def test_the_login_throttle_ignores_x_forwarded_for_unless_behind_a_proxy(out: Path):
    with running_desk(out) as (base, _):
        statuses = failed_logins(base, 21, lambda k: f"10.0.{k}.1")  # a new spoofed address each time
        assert statuses == [401] * 20 + [429]  # all counted against 127.0.0.1, the real peer
    with running_desk(out, "--behind-proxy") as (base, _):
        assert failed_logins(base, 21, lambda k: "10.9.9.9") == [401] * 20 + [429]  # one client behind the proxy
        assert failed_logins(base, 1, lambda k: "10.9.9.10") == [401]  # another one is not blocked by it
