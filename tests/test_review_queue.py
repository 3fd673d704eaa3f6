"""The inspector's queue over a real night (12 calls scored by the real scoring code) and the 抽检 sample."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from factories import make_score
from review_out import build_out
from qa_pipeline.final_verdicts import CONFIRM, MACHINE, REVIEWED, Event, final_call, final_calls
from qa_pipeline.review.policy import Policy, QueuePolicy, Sample
from qa_pipeline.review.queue import (BELOW_PASS, CRITICAL, DONE, KINDS, NEEDS_REVIEW, SAMPLE, TODO, build_queue,
                                      filter_queue, sampled)
from qa_pipeline.output.tables import read_scores

NIGHT = date(2025, 3, 7)


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> list:
    return read_scores(build_out(tmp_path_factory.mktemp("queue") / "out"))


def test_queue_order_and_reasons(scores):
    finals = final_calls(scores, [])
    entries = build_queue(finals, Policy())
    kinds = [e.kind for e in entries]
    assert kinds == sorted(kinds, key=KINDS.index)  # needs_review, stale, critical, below_pass, sample
    by_kind = {k: [e for e in entries if e.kind == k] for k in KINDS}
    assert {e.call_id for e in by_kind[NEEDS_REVIEW]} == {"dev_03"}  # the low-confidence call
    assert {e.item_id for e in by_kind[NEEDS_REVIEW]} == {i.item_id for s in scores if s.call_id == "dev_03"
                                                          for i in s.items if i.needs_review}
    machine = {s.call_id: s for s in scores}
    assert [e.call_id for e in by_kind[CRITICAL]] == [c for c in machine if machine[c].critical_failed] == ["dev_02"]
    assert {e.call_id for e in by_kind[BELOW_PASS]} == {c for c, s in machine.items()
                                                         if not s.passed and not s.critical_failed}
    call_entries = [e.call_id for e in entries if e.item_id is None]
    assert len(call_entries) == len(set(call_entries))  # a call is listed once
    assert all(e.state == TODO for e in entries)
    # every passing call is sampled: at most 2 calls per agent and day, and the sample is drawn from all calls
    chosen = sampled(finals.values(), Sample(per_agent=2))
    for s in scores:
        same = [c for c in chosen if machine[c].agent_id == s.agent_id and machine[c].started_at[:10] == s.started_at[:10]]
        assert len(same) == min(2, sum(1 for o in scores if o.agent_id == s.agent_id and o.started_at[:10] == s.started_at[:10]))
    assert {e.call_id for e in by_kind[SAMPLE]} == {c for c in chosen if machine[c].passed}


def _many(n_per_agent: int) -> dict:
    scores = [make_score(f"c{a}{k:03d}", agent_id=f"A{a}", started_at=f"2025-03-07T{8 + k % 10:02d}:00:00+08:00")
              for a in range(3) for k in range(n_per_agent)]
    return final_calls(scores, [])


def test_the_sample_is_reproducible_per_day_and_agent_and_follows_the_seed():
    finals = _many(40)
    one = sampled(finals.values(), Sample(per_agent=3, seed="a"))
    assert one == sampled(reversed(list(finals.values())), Sample(per_agent=3, seed="a"))  # input order does not matter
    assert len(one) == 9 and all(sum(c.startswith(f"c{a}") for c in one) == 3 for a in range(3))
    assert one != sampled(finals.values(), Sample(per_agent=3, seed="b"))
    percent = sampled(finals.values(), Sample(per_agent=None, percent=10))
    assert len(percent) == 12  # 10% of 40, per agent
    moved = {k: final_call(replace(f.machine, started_at="2025-03-08T09:00:00+08:00"), ()) for k, f in finals.items()}
    assert sampled(moved.values(), Sample(per_agent=3, seed="a")) != one  # another day, another draw


def test_filters_and_states(scores):
    machine = {s.call_id: s for s in scores}
    events = [Event(1, "t", "machine", "machine", MACHINE, "dev_03", "greeting", None, "pass", 5.0),
              Event(2, "t", "lina", "inspector", CONFIRM, "dev_03", "greeting", "pass", "pass", None, None, 1),
              Event(3, "t", "lina", "inspector", REVIEWED, "dev_02", None, None, "reviewed")]
    finals = final_calls(scores, events)
    entries = build_queue(finals, Policy())
    greeting = next(e for e in entries if e.call_id == "dev_03" and e.item_id == "greeting")
    assert greeting.state == DONE
    assert next(e for e in entries if e.call_id == "dev_02").state == DONE
    assert greeting not in filter_queue(entries, finals)  # open only, by default
    assert greeting in filter_queue(entries, finals, state=DONE)
    day = filter_queue(entries, finals, day=date(2025, 3, 6), state=None)
    assert {e.call_id for e in day} <= {"dev_09", "dev_10", "dev_12"} and day
    team = filter_queue(entries, finals, team="电商服务组", state=None)
    assert team and all(machine[e.call_id].team == "电商服务组" for e in team)
    agent = filter_queue(entries, finals, agent="A1001", state=None)
    assert agent and all(machine[e.call_id].agent_id == "A1001" for e in agent)
    closing = filter_queue(entries, finals, item="closing", state=None)
    assert closing and all((e.item_id == "closing") or
                           (e.item_id is None and next(i for i in machine[e.call_id].items if i.item_id == "closing").result == "fail")
                           for e in closing)


def test_policy_switches_reasons_off(scores):
    finals = final_calls(scores, [])
    off = Policy(queue=QueuePolicy(needs_review=False, critical_failures=False, below_pass=False,
                                   sample=Sample(per_agent=0)))
    assert build_queue(finals, off) == []
