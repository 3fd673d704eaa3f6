"""The tables `qa calibrate` and `qa rubric test` print (rich), built from their records."""

from __future__ import annotations

from rich.table import Table

from qa_pipeline.calibration.stats import VERDICTS
from qa_pipeline.records import (
    BlindAgreement,
    CandidateComparison,
    Calibration,
    ItemCalibration,
    RaterAgreement,
    RubricTest,
    Unmatched,
)

MAX_LISTED = 20


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def kappa(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def confusion_text(item: ItemCalibration) -> str:
    """The off-diagonal cells, as bench/agreement.py prints them: `human→machine:count`."""
    c = item.stats.confusion
    return ", ".join(f"{h}→{m}:{c[i][k]}" for i, h in enumerate(VERDICTS) for k, m in enumerate(VERDICTS)
                     if i != k and c[i][k])


def items_table(c: Calibration, title: str = "machine vs people, per item") -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in (("item", "left"), ("n", "right"), ("agree", "right"), ("agreement", "right"),
                          ("κ", "right"), ("fail precision", "right"), ("fail recall", "right"),
                          ("needs_review", "right"), ("confusion (human→machine)", "left")):
        table.add_column(name, justify=justify, no_wrap=name == "item")
    for item in (*c.items, c.overall):
        s = item.stats
        table.add_row("overall" if item is c.overall else item.item_id, str(s.n), str(s.agree), pct(s.rate),
                      kappa(s.kappa), pct(s.fail_precision), pct(s.fail_recall), pct(item.review_share),
                      confusion_text(item), end_section=item is c.items[-1] if c.items else False)
    return table


def raters_table(raters: tuple[RaterAgreement, ...], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("first", "second", "n", "agreement", "κ"):
        table.add_column(name, justify="left" if name in ("first", "second") else "right")
    for r in raters:
        table.add_row(r.first, r.second, str(r.stats.n), pct(r.stats.rate), kappa(r.stats.kappa))
    return table


def blind_table(blind: tuple[BlindAgreement, ...]) -> Table:
    table = Table(title="blind double review: the two inspectors, and each against the machine (same items)",
                  title_justify="left")
    for name in ("first", "second", "calls", "items", "agreement", "κ", "κ first–machine", "κ second–machine"):
        table.add_column(name, justify="left" if name in ("first", "second") else "right")
    for b in blind:
        table.add_row(b.first, b.second, str(b.calls), str(b.between.n), pct(b.between.rate), kappa(b.between.kappa),
                      kappa(b.first_machine.kappa), kappa(b.second_machine.kappa))
    return table


def unmatched_lines(unmatched: tuple[Unmatched, ...]) -> list[str]:
    lines = [f"  {u.label.call_id} {u.label.item_id}: {u.why} ({u.label.where})" for u in unmatched[:MAX_LISTED]]
    if len(unmatched) > MAX_LISTED:
        lines.append(f"  … and {len(unmatched) - MAX_LISTED} more (all in calibration/labels.parquet, status != compared)")
    return lines


def candidate_table(cand: CandidateComparison) -> Table:
    table = Table(title=f"candidate {cand.rubric_id} v{cand.rubric_version}: agreement before → after",
                  title_justify="left")
    for name in ("item", "before", "after", "changed verdicts"):
        table.add_column(name, justify="left" if name == "item" else "right")
    before = {i.item_id: i for i in cand.before.items}
    after = {i.item_id: i for i in cand.after.items}
    changed: dict[str, int] = {}
    for ch in cand.changes:
        changed[ch.item_id] = changed.get(ch.item_id, 0) + 1
    for item_id in [*after, *(k for k in before if k not in after)]:
        b, a = before.get(item_id), after.get(item_id)
        table.add_row(item_id, f"{pct(b.stats.rate if b else None)} ({b.stats.n if b else 0})",
                      f"{pct(a.stats.rate if a else None)} ({a.stats.n if a else 0})", str(changed.get(item_id, 0) or ""))
    table.add_row("overall", pct(cand.before.overall.stats.rate), pct(cand.after.overall.stats.rate),
                  str(len(cand.changes)), end_section=True)
    return table


def change_lines(cand: CandidateComparison) -> list[str]:
    lines = []
    for ch in cand.changes:
        human = f" (labelled {'/'.join(ch.human)})" if ch.human else ""
        lines.append(f"  {ch.call_id} {ch.item_id}: {ch.before or '—'} → {ch.after or '—'}{human}")
    return lines


def rubric_test_table(result: RubricTest) -> Table:
    table = Table(title=f"rubric {result.rubric_id} v{result.rubric_version} against the labels", title_justify="left")
    for name in ("item", "n", "agreement", "κ", "floor", ""):
        table.add_column(name, justify="left" if name in ("item", "") else "right")
    for f in result.items:
        s = f.item.stats
        verdict = "BELOW FLOOR" if f.below else ("no labels" if s.n == 0 else ("ok" if f.floor is not None else "no floor"))
        table.add_row(f.item.item_id, str(s.n), pct(s.rate), kappa(s.kappa), pct(f.floor), verdict)
    overall = result.calibration.overall.stats
    table.add_row("overall", str(overall.n), pct(overall.rate), kappa(overall.kappa), "", "", end_section=True)
    return table
