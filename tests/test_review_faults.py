"""`qa review` killed with SIGKILL: a committed decision survives, the save in flight is lost whole,
the database stays consistent and the next server works on it."""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from review_out import USERS, add_users, build_out

ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r'name="csrftoken" value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, out: Path, fault: str | None = None) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "QA_FAULT_KILL": fault or ""}
        self.process = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "review", str(out), "--port", str(self.port)],
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.base}/login", timeout=1)
                break
            except httpx.TransportError:
                assert self.process.poll() is None, self.process.stdout.read().decode()
                assert time.monotonic() < deadline, "qa review did not start"
                time.sleep(0.1)

    def kill(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        return self.process.wait(timeout=10)


def _session(server: Server, name: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=server.base, timeout=10, follow_redirects=False)
    token = html.unescape(TOKEN.search(client.get("/login").text).group(1))
    response = client.post("/login", data={"name": name, "password": USERS[name][2], "next": "/", "csrftoken": token})
    assert response.status_code == 303
    return client, token


def _override(client: httpx.Client, token: str, call_id: str, item_id: str) -> httpx.Response:
    page = client.get(f"/calls/{call_id}").text
    version = re.search(rf'id="item-{item_id}" data-version="(\d+)"', page).group(1)
    token = html.unescape(TOKEN.search(page).group(1))  # the page's token: bound to this session
    return client.post(f"/calls/{call_id}/act", data={"csrftoken": token, "action": "override", "item_id": item_id,
                                                     "result": "pass", "reason": "复核改判", "version": version})


def _decisions(out: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(out / "review.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT call_id, item_id FROM events WHERE action = 'override' ORDER BY id").fetchall()


def test_sigkill_keeps_committed_decisions_and_loses_only_the_save_in_flight(tmp_path: Path):
    out = build_out(tmp_path / "out")
    add_users(out)

    first = Server(out)
    try:
        client, token = _session(first, "lina")
        assert _override(client, token, "dev_07", "self_introduction").status_code == 303
    finally:
        assert first.kill() == -signal.SIGKILL  # killed right after answering: nothing shut down cleanly
    assert _decisions(out) == [("dev_07", "self_introduction")]

    dying = Server(out, fault="review-save")  # SIGKILLs itself with the row inserted, not committed
    try:
        client, token = _session(dying, "lina")
        with pytest.raises(httpx.TransportError):
            _override(client, token, "dev_11", "greeting")
    finally:
        assert dying.kill() == -signal.SIGKILL
    assert _decisions(out) == [("dev_07", "self_introduction")]  # the save in flight is not there, not half there

    again = Server(out)
    try:
        client, token = _session(again, "lina")
        assert _override(client, token, "dev_11", "greeting").status_code == 303  # no lock left behind
    finally:
        again.kill()
    assert _decisions(out) == [("dev_07", "self_introduction"), ("dev_11", "greeting")]
