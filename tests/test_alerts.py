"""Alerts (预警) end to end: `qa score` on an OUT whose policy has a `notify:` section, against a real
HTTP receiver on 127.0.0.1 started by the test, and a real command; payloads read as a person's IM
bot would, without a customer's number."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from dataclasses import asdict
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from factories import make_meta, make_transcript
from qa_pipeline.alerts.send import LOG_FILE
from qa_pipeline.batch.rescore import rescore
from qa_pipeline.batch.store import RUN_FILE
from qa_pipeline.output.tables import write_transcripts
from qa_pipeline.records import AGENT, CUSTOMER, FAIL
from qa_pipeline.final_verdicts import DISPUTE, ESCALATE, REJECT, Event
from qa_pipeline.review.db import ReviewDB
from qa_pipeline.review.export import DESK_REVIEWS
from qa_pipeline.review.policy import PolicyError, parse_policy
from qa_pipeline.scoring.rubric import rubric_path_default

PHONE = "13905728846"
ANGRY = (
    (AGENT, 0.4, 3.1, "您好，这里是宽带客服，工号一零零一，请问有什么可以帮您？"),
    (CUSTOMER, 3.6, 7.9, "我家宽带断了三天了，我的手机号是13905728846。"),
    (AGENT, 8.3, 11.0, "这个我们也没有办法，这是规定。"),
    (CUSTOMER, 11.4, 15.0, "再不给我解决，我就打12315投诉你们，手机号13905728846你们记好了。"),
    (AGENT, 15.5, 17.2, "好的，感谢您的来电，再见。"),
)
CALM = (
    (AGENT, 0.4, 3.1, "您好，这里是宽带客服，工号一零零一，请问有什么可以帮您？"),
    (CUSTOMER, 3.6, 6.0, "你好，我想查一下这个月的账单。"),
    (AGENT, 6.5, 9.0, "好的，本月费用是一百二十元，请问还有其他可以帮您的吗？"),
    (CUSTOMER, 9.4, 10.5, "没有了，谢谢。"),
    (AGENT, 11.0, 12.0, "感谢您的来电，再见。"),
)


class Receiver:
    """An IM bot on 127.0.0.1: records every POST; answers 500 to the first `fail` requests and
    waits `stall_s` before answering the first `stall` ones."""

    def __init__(self, fail: int = 0, stall: int = 0, stall_s: float = 0.0) -> None:
        self.bodies: list[dict] = []
        self.raw: list[bytes] = []
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                outer.hits += 1
                n = outer.hits
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if n <= stall:
                    time.sleep(stall_s)
                if n <= fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.raw.append(body)
                outer.bodies.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errcode": 0}')

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_out(tmp_path: Path, policy: str, angry_id: str = "call_angry") -> Path:
    out = tmp_path / "out"
    out.mkdir()
    transcripts = [make_transcript(angry_id, ANGRY, dropped=(), drop_reasons=(), duration_s=18.0),
                   make_transcript("call_calm", CALM, dropped=(), drop_reasons=(), duration_s=13.0)]
    write_transcripts(out, transcripts)
    metas = [make_meta(t.call_id) for t in transcripts]
    (out / RUN_FILE).write_text(json.dumps({"audio_dir": str(tmp_path), "model": "base", "calls": [
        {**asdict(m), "path": str(m.path)} for m in metas]}, ensure_ascii=False), encoding="utf-8")
    (out / "review-policy.yaml").write_text(policy, encoding="utf-8")
    return out


def log_records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / LOG_FILE).read_text(encoding="utf-8").splitlines()]


def no_customer_number(raw: bytes) -> None:
    text = raw.decode("utf-8")
    assert PHONE not in text and "8846" not in text
    assert not re.search(r"\d{7,}", text), text


def test_a_critical_fail_and_a_regulator_threat_reach_the_webhook_once(tmp_path):
    with Receiver() as hook:
        out = make_out(tmp_path, f"notify:\n  webhook: {{url: '{hook.url}'}}\n  retries: 1\n  backoff_s: 0\n")
        rescore(out, rubric_path_default())
        kinds = sorted((b["kind"], b["call_id"]) for b in hook.bodies)
        assert kinds == [("critical_fail", "call_angry"), ("regulator_threat", "call_angry")]
        critical = next(b for b in hook.bodies if b["kind"] == "critical_fail")
        assert "禁用语" in critical["title"] or "禁用语" in critical["items"] or "关键项" in critical["title"]
        assert critical["report"] == "reports/calls/call_angry.html"
        threat = next(b for b in hook.bodies if b["kind"] == "regulator_threat")
        assert "12315" in threat["title"] and "12315" in threat["quote"]
        assert "［手机号］" in threat["quote"] or "［号码］" in threat["quote"]
        for raw in hook.raw:
            no_customer_number(raw)
        assert [r["ok"] for r in log_records(out)] == [True, True]
        rescore(out, rubric_path_default())  # the same night again: nothing new to say
        assert len(hook.bodies) == 2


def test_a_failing_webhook_is_retried_and_every_attempt_logged(tmp_path):
    with Receiver(fail=2) as hook:
        out = make_out(tmp_path, "notify:\n  alerts: [regulator_threat]\n"
                                 f"  webhook: {{url: '{hook.url}'}}\n  retries: 3\n  backoff_s: 0\n")
        rescore(out, rubric_path_default())
        assert [b["kind"] for b in hook.bodies] == ["regulator_threat"]
        records = log_records(out)
        assert [(r["attempt"], r["ok"]) for r in records] == [(1, False), (2, False), (3, True)]
        assert "500" in records[0]["result"]
        assert all(r["payload"]["kind"] == "regulator_threat" for r in records)


def test_a_stalled_webhook_times_out_and_the_next_run_sends_it(tmp_path):
    with Receiver(stall=10, stall_s=1.5) as hook:
        out = make_out(tmp_path, "notify:\n  alerts: [critical_fail]\n"
                                 f"  webhook: {{url: '{hook.url}'}}\n  timeout_s: 0.3\n  retries: 1\n  backoff_s: 0\n")
        started = time.monotonic()
        rescore(out, rubric_path_default())
        records = log_records(out)
        assert [(r["attempt"], r["ok"]) for r in records] == [(1, False), (2, False)]
        assert "timed out" in records[0]["result"]
        assert time.monotonic() - started < 60
    with Receiver() as hook:
        (out / "review-policy.yaml").write_text(
            f"notify:\n  alerts: [critical_fail]\n  webhook: {{url: '{hook.url}'}}\n  backoff_s: 0\n", encoding="utf-8")
        rescore(out, rubric_path_default())
        assert [b["kind"] for b in hook.bodies] == ["critical_fail"]


def test_a_command_gets_the_json_on_stdin(tmp_path):
    inbox = tmp_path / "inbox.jsonl"
    script = tmp_path / "notify.py"
    script.write_text("import sys\nopen(sys.argv[1], 'ab').write(sys.stdin.buffer.read() + b'\\n')\n", encoding="utf-8")
    out = make_out(tmp_path, f"notify:\n  command: ['{sys.executable}', '{script}', '{inbox}']\n")
    rescore(out, rubric_path_default())
    sent = [json.loads(line) for line in inbox.read_text(encoding="utf-8").splitlines()]
    assert sorted(s["kind"] for s in sent) == ["critical_fail", "regulator_threat"]
    no_customer_number(inbox.read_bytes())


def test_no_notify_section_sends_nothing(tmp_path):
    out = make_out(tmp_path, "disputes:\n  window_days: 7\n")
    rescore(out, rubric_path_default())
    assert not (out / LOG_FILE).exists()


@pytest.mark.parametrize("text, line, message", [
    ("notify:\n  retries: 2\n", 2, "notify needs a webhook or a command"),
    ("notify:\n  webhook: {url: 'ftp://x/y'}\n", 2, "must be an http:// or https:// URL"),
    ("notify:\n  command: [x]\n  alerts: [everything]\n", 3, "unknown alert 'everything'"),
    ("notify:\n  command: [x]\n  timeout_s: 0\n", 3, "notify.timeout_s must be > 0"),
])
def test_a_bad_notify_section_is_refused_with_its_line(text, line, message):
    with pytest.raises(PolicyError) as e:
        parse_policy(text, "policy.yaml")
    assert str(e.value).startswith(f"policy.yaml:{line}:") and message in str(e.value)


def _at(days_ago: int) -> str:
    """A local time `days_ago` days before today, as the desk stamps its rows."""
    return (datetime.now().astimezone() - timedelta(days=days_ago)).replace(hour=10, minute=0, second=0,
                                                                             microsecond=0).isoformat()


def test_a_dispute_past_its_deadline_is_sent_once_per_level(tmp_path):
    call = f"{PHONE}_0308"  # a recorder that names files after the caller: the id never goes out as it is
    with Receiver() as hook:
        out = make_out(tmp_path, "disputes: {first_review_days: 2, second_review_days: 3}\n"
                                 f"notify:\n  webhook: {{url: '{hook.url}'}}\n  backoff_s: 0\n", angry_id=call)
        db = ReviewDB.open(out)
        rescore(out, rubric_path_default(), reviews=DESK_REVIEWS)  # the machine's verdicts go into the desk's trail
        machine = {e.item_id: e for e in db.events(call) if e.action == "machine" and e.to_result == FAIL}
        late, fresh = sorted(machine)[:2]  # two failed items: one disputed 5 days ago, one today
        with db.write() as conn:
            opened = db.append(conn, Event(0, _at(5), "wangxy", "agent", DISPUTE, call, late, FAIL, None, None,
                                           "我说的是您好", machine[late].id))
            db.append(conn, Event(0, _at(0), "wangxy", "agent", DISPUTE, call, fresh, FAIL, None, None, "理由",
                                  machine[fresh].id))
        before = len(hook.bodies)
        rescore(out, rubric_path_default(), reviews=DESK_REVIEWS)
        sent = [b for b in hook.bodies[before:] if b["kind"] == "dispute_overdue"]
        assert len(sent) == 1, sent  # 一审 was due 3 days ago; the dispute made today is not late
        first = sent[0]
        today = date.today()
        assert (first["level"], first["due"], first["days_late"]) == ("一审", f"{today - timedelta(days=3):%Y-%m-%d}", 3)
        assert first["title"].startswith("申诉一审逾期") and "逾期 3 天" in first["text"]
        assert first["report"].startswith("reports/calls/") and (out / first["report"]).is_file()
        assert "［手机号］" in first["call_id"]
        rescore(out, rubric_path_default(), reviews=DESK_REVIEWS)  # the next night: not again
        assert [b for b in hook.bodies if b["kind"] == "dispute_overdue"] == [first]
        # 一审 rejects it late, the agent escalates; 二审 is due in 3 days from then
        with db.write() as conn:
            answer = db.append(conn, Event(0, _at(4), "lina", "inspector", REJECT, call, late, FAIL, FAIL, None,
                                           "维持", machine[late].id, opened.id))
            db.append(conn, Event(0, _at(4), "wangxy", "agent", ESCALATE, call, late, None, None, None, "再议",
                                  None, answer.id))
        db.close()
        rescore(out, rubric_path_default(), reviews=DESK_REVIEWS)
        second = [b for b in hook.bodies if b["kind"] == "dispute_overdue"][1:]
        assert [(b["level"], b["days_late"]) for b in second] == [("二审", 1)]
        for raw in hook.raw:
            no_customer_number(raw)
        keys = {r["key"] for r in log_records(out) if r["kind"] == "dispute_overdue" and r["ok"]}
        assert len(keys) == 2  # one per dispute and level


def test_the_desk_and_the_alert_read_one_deadline():
    from qa_pipeline.dispute_deadlines import overdue
    from qa_pipeline.final_verdicts import OPEN, Dispute
    from qa_pipeline.review.deadlines import review_due

    policy = parse_policy("disputes: {first_review_days: 2}\n", "policy.yaml")
    dispute = Dispute(Event(7, "2025-03-08T23:30:00+08:00", "wangxy", "agent", DISPUTE, "c1", "greeting"), OPEN)
    assert review_due(dispute, policy) == date(2025, 3, 10)
    assert overdue(dispute, policy.disputes, date(2025, 3, 10)) is None  # open through its last day
    assert overdue(dispute, policy.disputes, date(2025, 3, 11)) == date(2025, 3, 10)
