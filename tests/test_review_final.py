"""final_call: machine verdicts ⊕ decisions → final verdicts, with the rubric's own rules; and labels."""

from __future__ import annotations

from dataclasses import replace

from factories import make_score
from qa_pipeline.records import FAIL, NA, PASS, ItemResult
from qa_pipeline.final_verdicts import (ACCEPT, ACCEPTED, CONFIRM, DISPUTE, MACHINE, NOTE, OPEN, OVERRIDE, REJECT,
                                        REJECTED, REVIEWED, Event, final_call)
from qa_pipeline.review.labels import labels_from_events
from qa_pipeline.scoring.score import call_outcome

CALL = "call_001"


def items() -> tuple[ItemResult, ...]:
    return (
        ItemResult(CALL, "greeting", "开头问候", FAIL, 0, 10, "no 您好"),
        ItemResult(CALL, "closing", "结束语", PASS, 10, 10, "说了再见"),
        ItemResult(CALL, "apology", "致歉", NA, 0, 10, "没有投诉"),
        ItemResult(CALL, "forbidden", "禁用语", FAIL, 12, 20, "说了'这是规定'; -8 points", critical=True),
    )


def score():
    its = items()
    total, passed, critical = call_outcome(its, 80.0)
    return replace(make_score(CALL, items=its), score=total, passed=passed, critical_failed=critical, pass_score=80.0)


class Trail:
    """Audit rows as the database would number them."""

    def __init__(self) -> None:
        self.rows: list[Event] = []

    def add(self, action: str, item_id: str | None = None, to: str | None = None, *, actor: str = "lina",
            role: str = "inspector", points: float | None = None, basis: int | None = None, ref: int | None = None,
            reason: str | None = "理由", frm: str | None = None) -> Event:
        e = Event(len(self.rows) + 1, f"2025-03-08T09:{len(self.rows):02d}:00+08:00", actor, role, action, CALL,
                  item_id, frm, to, points, reason, basis, ref)
        self.rows.append(e)
        return e

    def machine(self, s) -> dict[str, int]:
        return {i.item_id: self.add(MACHINE, i.item_id, i.result, actor="machine", role="machine",
                                    points=float(i.points), reason=None).id for i in s.items}


def test_no_decision_keeps_the_machine_call_exactly():
    s = score()
    final = final_call(s, [])
    assert (final.score, final.passed, final.critical_failed) == (s.score, s.passed, s.critical_failed)
    assert final.as_score() == s
    assert final.review_state == "unreviewed"


def test_override_to_pass_recomputes_score_pass_and_critical_by_the_rubric_rules():
    s, t = score(), Trail()
    basis = t.machine(s)
    assert (s.score, s.passed, s.critical_failed) == (55.0, False, True)  # 22 of 40; a critical item failed
    t.add(OVERRIDE, "forbidden", PASS, basis=basis["forbidden"], frm=FAIL)
    final = final_call(s, t.rows)
    assert final.item("forbidden").points == 20  # pass earns the item's full points
    assert (final.score, final.passed, final.critical_failed) == (75.0, False, False)  # 30 of 40, under 80
    t.add(OVERRIDE, "greeting", PASS, basis=basis["greeting"], frm=FAIL)
    final = final_call(s, t.rows)
    assert (final.score, final.passed, final.critical_failed) == (100.0, True, False)
    assert [i.changed for i in final.items] == [True, False, False, True]


def test_confirm_keeps_the_machine_points_and_na_leaves_the_denominator():
    s, t = score(), Trail()
    basis = t.machine(s)
    t.add(CONFIRM, "forbidden", FAIL, basis=basis["forbidden"], frm=FAIL)
    t.add(OVERRIDE, "greeting", NA, basis=basis["greeting"], frm=FAIL)
    final = final_call(s, t.rows)
    assert final.item("forbidden").points == 12  # the deduction stands
    assert final.score == round(100 * 22 / 30, 1)  # greeting n/a: out of the maximum
    assert final.critical_failed and not final.passed


def test_override_to_fail_of_a_passed_item_earns_nothing_and_latest_decision_wins():
    s, t = score(), Trail()
    basis = t.machine(s)
    t.add(OVERRIDE, "closing", FAIL, basis=basis["closing"], frm=PASS)
    assert final_call(s, t.rows).item("closing").points == 0
    t.add(CONFIRM, "closing", PASS, basis=basis["closing"], frm=FAIL, actor="zhao")
    item = final_call(s, t.rows).item("closing")
    assert (item.result, item.points, item.decision.actor) == (PASS, 10, "zhao")


def test_dispute_accept_and_reject():
    s, t = score(), Trail()
    basis = t.machine(s)
    opened = t.add(DISPUTE, "greeting", None, actor="wangxy", role="agent", basis=basis["greeting"], frm=FAIL)
    item = final_call(s, t.rows).item("greeting")
    assert (item.dispute.state, item.result, final_call(s, t.rows).review_state) == (OPEN, FAIL, "disputed")
    t.add(ACCEPT, "greeting", PASS, actor="zhou", role="supervisor", basis=basis["greeting"], ref=opened.id, frm=FAIL)
    item = final_call(s, t.rows).item("greeting")
    assert (item.dispute.state, item.result, item.decision.action) == (ACCEPTED, PASS, ACCEPT)

    t2 = Trail()
    basis = t2.machine(s)
    opened = t2.add(DISPUTE, "greeting", None, actor="wangxy", role="agent", basis=basis["greeting"], frm=FAIL)
    t2.add(REJECT, "greeting", FAIL, actor="zhou", role="supervisor", basis=basis["greeting"], ref=opened.id, frm=FAIL)
    item = final_call(s, t2.rows).item("greeting")
    assert (item.dispute.state, item.result, item.dispute.resolution.actor) == (REJECTED, FAIL, "zhou")


def test_a_changed_machine_verdict_keeps_the_decision_and_marks_it_stale():
    s, t = score(), Trail()
    basis = t.machine(s)
    t.add(OVERRIDE, "greeting", PASS, basis=basis["greeting"], frm=FAIL)
    rescored = replace(s, items=tuple(replace(i, result=PASS, points=10) if i.item_id == "greeting" else i
                                      for i in s.items))
    t.add(MACHINE, "greeting", PASS, actor="machine", role="machine", points=10.0, frm=FAIL)  # as a re-run records it
    item = final_call(rescored, t.rows).item("greeting")
    assert (item.result, item.stale, item.decision.judged_result) == (PASS, True, FAIL)
    # points alone changing (another rubric's deduction) is another verdict too
    fewer = replace(s, items=tuple(replace(i, points=4) if i.item_id == "forbidden" else i for i in s.items))
    t.add(CONFIRM, "forbidden", FAIL, basis=basis["forbidden"], frm=FAIL)
    assert final_call(fewer, t.rows).item("forbidden").stale
    assert not final_call(s, t.rows).item("forbidden").stale


def test_versions_notes_reviewed_and_other_calls_rows():
    s, t = score(), Trail()
    basis = t.machine(s)
    t.add(OVERRIDE, "greeting", PASS, basis=basis["greeting"], frm=FAIL)
    note = t.add(NOTE, None, None, reason="辅导：先说您好")
    reviewed = t.add(REVIEWED, None, "reviewed")
    other = replace(t.add(OVERRIDE, "greeting", FAIL), call_id="call_002")
    final = final_call(s, t.rows[:-1] + [other])
    assert final.item("greeting").version == 5  # the item's latest row
    assert final.version == reviewed.id  # notes do not move the call's version
    assert final.notes == (note,) and final.reviewed == reviewed and final.review_state == "reviewed"
    assert final.item("greeting").result == PASS  # the other call's row is ignored


def test_failed_call_stays_failed():
    from factories import make_failed_score

    failed = make_failed_score()
    final = final_call(failed, [])
    assert (final.score, final.passed, final.items) == (None, None, ())


def test_labels_one_per_decided_item_with_the_judged_verdict_and_staleness():
    s, t = score(), Trail()
    basis = t.machine(s)
    t.add(OVERRIDE, "greeting", PASS, basis=basis["greeting"], frm=FAIL, reason="说了您好")
    t.add(CONFIRM, "closing", PASS, basis=basis["closing"], frm=PASS, actor="zhao")
    t.add(DISPUTE, "forbidden", None, actor="wangxy", role="agent", basis=basis["forbidden"], frm=FAIL)
    t.add(MACHINE, "closing", FAIL, actor="machine", role="machine", points=0.0, frm=PASS)  # a re-run flips it
    labels = {label.item_id: label for label in labels_from_events(t.rows)}
    assert set(labels) == {"greeting", "closing"}  # an open dispute is no decision
    g, c = labels["greeting"], labels["closing"]
    assert (g.result, g.user, g.role, g.machine_result, g.stale, g.agrees) == (PASS, "lina", "inspector", FAIL, False, False)
    assert (c.result, c.machine_result, c.current_machine_result, c.stale, c.agrees) == (PASS, PASS, FAIL, True, True)
    assert g.decided_at.startswith("2025-03-08T09:") and g.reason == "说了您好"


def test_read_labels_of_a_folder_without_a_desk(tmp_path):
    from qa_pipeline.review import read_labels

    assert read_labels(tmp_path) == []
    assert not (tmp_path / "review.db").exists()


def test_a_score_without_a_recorded_pass_mark_gets_no_passed_after_a_change():
    s, t = replace(score(), pass_score=None), Trail()
    basis = t.machine(s)
    t.add(OVERRIDE, "greeting", PASS, basis=basis["greeting"], frm=FAIL)
    final = final_call(s, t.rows)
    assert final.score == 80.0 and final.passed is None
