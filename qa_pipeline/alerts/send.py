"""Sending alerts: a JSON document POSTed to a webhook, or given on stdin to a command (no shell),
each attempt with a timeout, retried with a growing wait; every attempt logged to
``OUT/alerts/sent.jsonl`` with what was sent. An alert whose key the log shows as delivered is not
sent again, so running a night twice does not repeat its alerts; one that failed every attempt is
tried again by the next run. When a channel fails every attempt for one alert, the rest of this
run's alerts are not tried on it (logged as skipped): a dead gateway costs one alert's retries, not
a night's worth. Sending never stops the batch.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from qa_pipeline.alerts.config import NotifyConfig
from qa_pipeline.alerts.events import Alert

log = logging.getLogger("qa_pipeline")

LOG_FILE = Path("alerts") / "sent.jsonl"
MAX_OUTPUT = 300  # characters of a reply or an error kept in the log


def delivered(out: Path) -> set[tuple[str, str]]:
    """(key, channel) of every alert the log shows as delivered."""
    path = Path(out) / LOG_FILE
    found: set[tuple[str, str]] = set()
    if not path.is_file():
        return found
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(record, dict) and record.get("ok"):
            found.add((str(record.get("key")), str(record.get("channel"))))
    return found


def post_json(url: str, body: bytes, headers: Sequence[tuple[str, str]], timeout: float) -> str:
    """POST `body`; the reply's first characters; an exception unless the status is 2xx."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8",
                                              "User-Agent": "qa-pipeline", **dict(headers)})
    with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 (the centre's own URL)
        return f"HTTP {reply.status} " + reply.read(MAX_OUTPUT).decode("utf-8", "replace")


def run_command(command: Sequence[str], body: bytes, timeout: float) -> str:
    done = subprocess.run(list(command), input=body, capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.decode('utf-8', 'replace')[:MAX_OUTPUT]}")
    return done.stdout.decode("utf-8", "replace")[:MAX_OUTPUT]


def send_all(out: Path, alerts: Sequence[Alert], config: NotifyConfig, *,
             sleep: Callable[[float], None] = time.sleep) -> list[dict]:
    """Send every alert of a kind the config wants on each channel; the log records (also returned)."""
    out = Path(out)
    done = delivered(out)
    channels: list[tuple[str, Callable[[bytes], str]]] = []
    if config.webhook is not None:
        hook = config.webhook
        channels.append(("webhook", lambda body: post_json(hook.url, body, hook.headers, config.timeout_s)))
    if config.command is not None:
        channels.append(("command", lambda body: run_command(config.command, body, config.timeout_s)))
    dead: set[str] = set()
    records: list[dict] = []
    path = out / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as logfile:
        def write(record: dict) -> None:
            record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **record}
            logfile.write(json.dumps(record, ensure_ascii=False) + "\n")
            logfile.flush()
            records.append(record)

        for alert in alerts:
            if alert.kind not in config.kinds:
                continue
            payload = alert.payload()
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            for name, deliver in channels:
                if (alert.key, name) in done:
                    continue
                if name in dead:
                    write({"key": alert.key, "kind": alert.kind, "channel": name, "attempt": 0, "ok": False,
                           "result": "skipped: the channel failed every attempt earlier in this run", "payload": payload})
                    continue
                for attempt in range(1, config.retries + 2):
                    try:
                        result = deliver(body)
                        ok = True
                    except (OSError, urllib.error.URLError, subprocess.SubprocessError, RuntimeError, ValueError) as e:
                        result, ok = f"{type(e).__name__}: {e}"[:MAX_OUTPUT], False
                    write({"key": alert.key, "kind": alert.kind, "channel": name, "attempt": attempt, "ok": ok,
                           "result": result, "payload": payload})
                    if ok:
                        break
                    if attempt <= config.retries:
                        sleep(config.backoff_s * 2 ** (attempt - 1))
                else:
                    dead.add(name)
                    log.warning("alert %s not delivered by %s after %d attempts", alert.key, name, config.retries + 1)
    return records
