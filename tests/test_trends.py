"""What changed: a change is marked only beyond noise for that many calls."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from qa_pipeline.trends import CallFacts, Window, rate_change, trends, two_proportion_z, welch_z

LAST = date(2025, 3, 31)


def facts(day: date, n: int, fails: int, team: str = "一组", frustration: float = 0.2, start: int = 0) -> list[CallFacts]:
    return [CallFacts(f"c{day:%m%d}-{team}-{start + k}", day, team, "A1", k < fails, frustration,
                      (("greeting", "问候语", "fail" if k < fails else "pass"),)) for k in range(n)]


def test_two_proportion_z_is_the_textbook_value():
    # 30/100 vs 15/100: pooled 0.225, se = sqrt(.225*.775*.02) = 0.05906
    assert two_proportion_z(30, 100, 15, 100) == pytest.approx(0.15 / 0.059055, rel=1e-3)
    assert two_proportion_z(0, 10, 0, 10) is None and two_proportion_z(1, 0, 1, 5) is None


def test_welch_z():
    assert welch_z([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0
    assert welch_z([1.0], [2.0, 3.0]) is None


def test_the_window_is_this_week_and_the_four_before():
    w = Window.ending(LAST)
    assert w.this_week == (date(2025, 3, 25), LAST)
    assert w.before == (date(2025, 2, 25), date(2025, 3, 24))
    assert w.side(date(2025, 3, 25)) == "now" and w.side(date(2025, 3, 24)) == "before"
    assert w.side(date(2025, 2, 24)) is None


def test_a_big_rise_on_many_calls_is_marked_and_the_same_rise_on_few_is_not():
    many = facts(LAST, 100, 40) + [f for d in range(7, 35, 7) for f in facts(LAST - timedelta(days=d), 100, 10)]
    t = trends(many)
    assert t.items[0].now == 0.4 and t.items[0].before == 0.1 and t.items[0].marked == "up"
    few = facts(LAST, 4, 2) + facts(LAST - timedelta(days=10), 4, 0)  # 50% vs 0%, but 4 calls a side
    assert trends(few).items[0].marked is None


def test_noise_is_not_marked():
    calls = facts(LAST, 50, 10) + facts(LAST - timedelta(days=14), 200, 36)  # 20% vs 18%
    r = trends(calls).items[0]
    assert r.marked is None and abs(r.z) < 1.96


def test_teams_and_frustration():
    calls = (facts(LAST, 30, 3, "一组", 0.8) + facts(LAST - timedelta(days=9), 30, 3, "一组", 0.2, start=100)
             + facts(LAST, 30, 3, "二组", 0.3) + facts(LAST - timedelta(days=9), 30, 3, "二组", 0.3, start=100))
    # spread, so the mean test has a variance to work with
    calls = [CallFacts(f.call_id, f.day, f.team, f.agent_id, f.failed, f.frustration + (k % 3) * 0.05, f.items)
             for k, f in enumerate(calls)]
    t = trends(calls)
    (one_rate, one_mood), (two_rate, two_mood) = t.teams
    assert one_mood.marked == "up" and two_mood.marked is None
    assert one_rate.marked is None and one_rate.now == one_rate.before == 0.1


def test_a_rate_change_keeps_its_counts():
    r = rate_change("x", "x", 3, 10, 1, 40)
    assert (r.now_k, r.now_n, r.before_k, r.before_n) == (3, 10, 1, 40)
