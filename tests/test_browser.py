"""The report cards in a real headless Chromium (Debian's ``chromium``), as an inspector opens them.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: commands on
fd 3, replies and events on fd 4, each a JSON message ended by a NUL byte), so neither a websocket
client nor a browser driver is needed.  The cards are rendered from hand-built records (tests/
factories.py) for the two dev calls in tests/data/calls, whose real audio the players load.

Checked: clicking evidence seeks the audio, no console error or uncaught exception, no request
other than file:// (nothing leaves the machine), markup in a transcript and an agent name shows as
text and runs nothing.  Screenshots of a call card and an agent page are written to
``test-artifacts/`` (or ``$QA_TEST_ARTIFACTS``).

Without chromium the tests skip, except on CI (``CI=true``), where .ci/run installs it and a
missing browser is a failure.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from factories import make_failed_score, make_meta, make_score, make_transcript
from qa_pipeline.output import report
from qa_pipeline.records import AGENT, CUSTOMER

ROOT = Path(__file__).resolve().parent.parent
CALLS = Path(__file__).resolve().parent / "data" / "calls"
XSS = "<script>alert(1)</script>"
BOLD = "<b>粗体</b>"
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # even a stray request could not leave the machine
    "--remote-debugging-pipe",
)
TIMEOUT_S = 20.0


# ---------------------------------------------------------------------------------------------
# finding chromium


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def chromium_binary() -> str:
    """Path of Debian's chromium (``$QA_CHROMIUM`` overrides); skip without one, fail on CI."""
    for name in (os.environ.get("QA_CHROMIUM"), "chromium", "chromium-browser"):
        found = shutil.which(name) if name else None
        if found:
            return found
    message = "chromium is not installed (apt-get install chromium; .ci/run does)"
    if _on_ci():
        pytest.fail(f"{message}: CI must run the browser tests")
    pytest.skip(message)


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("QA_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---------------------------------------------------------------------------------------------
# a minimal DevTools-protocol client over a pipe


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless chromium; ``call`` sends a command and returns its result, keeping events."""

    def __init__(self, binary: str, profile: Path, log: Path, flags: tuple[str, ...] = CHROMIUM_FLAGS) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        self.log = log
        # `exec` keeps the process id; the redirections put the pipe ends where chromium expects them
        # (bash, not sh: dash only redirects from single-digit descriptors)
        script = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}'
        with log.open("wb") as err:
            self.process = subprocess.Popen(
                ["bash", "-c", script, binary, *flags, f"--user-data-dir={profile}", "about:blank"],
                pass_fds=(to_chrome_r, from_chrome_w),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
            )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.on_event: Callable[[dict[str, Any]], None] | None = None

    def _log_tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]

    def _send(self, method: str, params: dict[str, Any] | None, session: str | None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode("utf-8") + b"\0")
        return self._next_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_chrome], [], [], max(0.0, left))
            if not ready:
                raise BrowserError(f"chromium did not answer within {TIMEOUT_S:.0f} s")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise BrowserError(f"chromium closed the pipe; its log ends:\n{self._log_tail()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        self.events.append(message)
        if self.on_event is not None:
            self.on_event(message)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._dispatch(message)

    def notify(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> None:
        """Send a command without waiting for its answer (safe inside an event handler)."""
        self._send(method, params, session)

    def wait_for(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first event (already received or to come) that ``match`` accepts."""
        for event in self.events:
            if match(event):
                return event
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            message = self._receive(deadline)
            if "method" in message:
                self._dispatch(message)
                if match(message):
                    return message

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # the group this test started
            self.process.wait(timeout=10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@dataclass
class Page:
    """One tab, with what it logged, asked for over the network and tried to pop up."""

    browser: Browser
    session: str
    target: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, self.session)

    def observe(self, event: dict[str, Any]) -> None:
        if event.get("sessionId") != self.session:
            return
        method, params = event["method"], event.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            self.errors.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
        elif method == "Runtime.exceptionThrown":
            self.errors.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        elif method == "Page.javascriptDialogOpening":
            self.dialogs.append(f"{params['type']}: {params['message']}")
            self.browser.notify("Page.handleJavaScriptDialog", {"accept": False}, self.session)

    def goto(self, path: Path) -> None:
        loaded_before = sum(1 for e in self.browser.events if self._is_load(e))
        self.call("Page.navigate", {"url": path.resolve().as_uri()})
        count = [0]

        def nth_load(event: dict[str, Any]) -> bool:
            if self._is_load(event):
                count[0] += 1
            return count[0] > loaded_before

        self.browser.wait_for(nth_load)

    def _is_load(self, event: dict[str, Any]) -> bool:
        return event.get("method") == "Page.loadEventFired" and event.get("sessionId") == self.session

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": await_promise}
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str, index: int = 0) -> None:
        """A real mouse click in the middle of the element (scrolled into view first)."""
        box = self.evaluate(
            f"(() => {{ const el = document.querySelectorAll({json.dumps(selector)})[{index}];"
            " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1},
            )

    def screenshot(self, target: Path) -> Path:
        """The whole page, 1280 px wide, as PNG."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            },
        )
        target.write_bytes(base64.b64decode(shot["data"]))
        return target


def open_page(browser: Browser) -> Page:
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    page = Page(browser, session, target)
    browser.on_event = page.observe
    for domain in ("Page", "Runtime", "Log", "Network"):
        page.call(f"{domain}.enable")
    page.call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    return page


# ---------------------------------------------------------------------------------------------
# the reports under test


def _batch() -> tuple[list, dict, dict]:
    """The two dev calls with their real audio (one agent on two days), a call with markup
    everywhere, and a failed call whose recording is missing."""
    evil = "dev_evil"
    scores = [
        make_score("dev_07", agent_id="A1003", agent_name="陈浩", team="电商服务组",
                   started_at="2025-03-05T10:33:26+08:00"),
        make_score("dev_11", score=62.0, passed=False, started_at="2025-03-07T10:41:55+08:00"),
        make_score("dev_11_prev", score=88.0, started_at="2025-03-06T15:02:00+08:00"),  # a trend for A1001
        make_score(evil, agent_id="A9", agent_name=f"王{XSS}{BOLD}", started_at="2025-03-07T11:00:00+08:00"),
        make_failed_score("dev_bad", started_at="2025-03-07T12:00:00+08:00"),
    ]
    lines = ((AGENT, 0.4, 3.1, "您好，请问有什么可以帮您？"), (CUSTOMER, 3.6, 7.9, f"你好{XSS}{BOLD}"))
    transcripts = {
        "dev_07": make_transcript("dev_07", duration_s=60.8),
        "dev_11": make_transcript("dev_11", duration_s=46.2),
        "dev_11_prev": make_transcript("dev_11_prev", duration_s=46.2),
        evil: make_transcript(evil, lines=lines, dropped=(), drop_reasons=(), duration_s=46.2),
    }
    metas = {
        "dev_07": make_meta("dev_07", path=CALLS / "dev_07.wav", agent_id="A1003", agent_name="陈浩"),
        "dev_11": make_meta("dev_11", path=CALLS / "dev_11.wav"),
        "dev_11_prev": make_meta("dev_11_prev", path=CALLS / "dev_11.wav"),
        evil: make_meta(evil, path=CALLS / "dev_11.wav", agent_id="A9", agent_name=f"王{XSS}{BOLD}"),
        "dev_bad": make_meta("dev_bad", path=CALLS / "missing.wav"),
    }
    return scores, transcripts, metas


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    scores, transcripts, metas = _batch()
    return report.render_reports(out, scores, transcripts, metas).parent


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Browser]:
    binary = chromium_binary()
    folder = tmp_path_factory.mktemp("chromium")
    started = Browser(binary, folder / "profile", folder / "chromium.log")
    try:
        started.call("Browser.getVersion")
        yield started
    finally:
        started.close()


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    opened = open_page(browser)
    yield opened
    browser.on_event = None
    browser.call("Target.closeTarget", {"targetId": opened.target})


def _assert_clean(page: Page) -> None:
    assert page.errors == []
    assert page.dialogs == []
    leaving = [url for url in page.requests if not url.startswith(LOCAL_SCHEMES)]
    assert leaving == [], "requests that would leave the machine"


AUDIO_READY = """new Promise(resolve => {
  const audio = document.getElementById('audio');
  if (audio.readyState >= 1) { resolve(audio.duration); return; }
  audio.addEventListener('loadedmetadata', () => resolve(audio.duration));
  audio.addEventListener('error', () => resolve('error ' + (audio.error && audio.error.code)));
})"""


# ---------------------------------------------------------------------------------------------
# tests


@pytest.mark.parametrize(("call_id", "duration"), [("dev_07", 60.8), ("dev_11", 46.2)])
def test_clicking_evidence_seeks_the_audio(page: Page, site: Path, call_id: str, duration: float):
    page.goto(site / "calls" / f"{call_id}.html")
    assert page.evaluate(AUDIO_READY, await_promise=True) == pytest.approx(duration, abs=0.1)
    stamps = page.evaluate("[...document.querySelectorAll('a.evidence.seek')].map(a => parseFloat(a.dataset.t))")
    assert stamps == [0.4, 8.3, 13.5]
    for k in reversed(range(len(stamps))):  # backwards, so each seek goes somewhere new
        page.click("a.evidence.seek", k)
        now = page.evaluate("document.getElementById('audio').currentTime")
        assert now == pytest.approx(stamps[k], abs=0.5), f"evidence {k}"
        current = page.evaluate("[...document.querySelectorAll('.msg.current')].map(m => parseFloat(m.dataset.start))")
        assert stamps[k] in current  # the quoted utterance is highlighted
    assert page.evaluate("location.hash") == ""  # the click seeks, the link does not navigate
    page.evaluate("document.getElementById('audio').pause()")
    _assert_clean(page)


def test_clicking_a_transcript_timestamp_seeks(page: Page, site: Path):
    page.goto(site / "calls" / "dev_07.html")
    page.evaluate(AUDIO_READY, await_promise=True)
    page.click(".msg .ts.seek", 5)
    assert page.evaluate("document.getElementById('audio').currentTime") == pytest.approx(24.0, abs=0.5)
    page.evaluate("document.getElementById('audio').pause()")
    _assert_clean(page)


def test_every_page_loads_clean_and_offline(page: Page, site: Path):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) == 10  # index, 5 cards, 4 agents
    for path in pages:
        page.goto(path)
        if path.parent.name == "calls" and path.stem != "dev_bad":
            assert isinstance(page.evaluate(AUDIO_READY, await_promise=True), float), path
        assert page.evaluate("document.body.innerText.length") > 100, path
    assert any(url.endswith("dev_07.wav") for url in page.requests)  # the audio did load, from file://
    _assert_clean(page)


def test_markup_shows_as_text_and_runs_nothing(page: Page, site: Path):
    for path in (site / "calls" / "dev_evil.html", site / "agents" / "A9.html", site / "index.html"):
        page.goto(path)
        text = page.evaluate("document.body.innerText")
        assert f"王{XSS}{BOLD}" in text, path  # the agent name, literally
        assert page.evaluate("document.querySelectorAll('b, .wrap script').length") == 0, path
    page.goto(site / "calls" / "dev_evil.html")
    assert f"你好{XSS}{BOLD}" in page.evaluate("document.body.innerText")  # the utterance, literally
    bubble = page.evaluate("[...document.querySelectorAll('.bubble')].map(b => b.childElementCount)")
    assert bubble == [0, 0]
    _assert_clean(page)  # no alert() dialog among them


def test_screenshots_of_a_call_card_and_an_agent_page(page: Page, site: Path):
    folder = artifacts_dir()
    shots = {
        "call-card.png": site / "calls" / "dev_07.html",
        "agent-page.png": site / "agents" / "A1001.html",
    }
    for name, path in shots.items():
        page.goto(path)
        page.evaluate("document.fonts.ready.then(() => true)", await_promise=True)
        shot = page.screenshot(folder / name)
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, shot
    _assert_clean(page)
