"""OUT/reports/calibration.html: machine vs people per rubric item, in Chinese.

Each disagreement links to its call card at the item (``calls/<call>.html#item-<item_id>``), where
the evidence and its time are. Free text (reasons, evidence, names) is masked with the call cards'
own masking (:func:`qa_pipeline.output.redact.mask_pii`), so no customer's number reaches the page.
The view builder is pure; :func:`write_calibration_page` renders and writes it atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from qa_pipeline.calibration.compare import CALL_FAILED, MACHINE, UNKNOWN_CALL, UNKNOWN_ITEM
from qa_pipeline.calibration.stats import VERDICTS
from qa_pipeline.files import write_atomic
from qa_pipeline.output.redact import mask_id, mask_pii
from qa_pipeline.output.report import RESULT_LABELS, card_stem, fmt_clock, fmt_rate, href, make_environment
from qa_pipeline.records import (
    CandidateComparison,
    Calibration,
    ItemCalibration,
    Judged,
    RaterAgreement,
    VerdictChange,
)

PAGE = Path("reports") / "calibration.html"
WHY_LABELS = {
    UNKNOWN_CALL: "输出目录中没有这通通话",
    CALL_FAILED: "该通话处理失败，没有评分",
    UNKNOWN_ITEM: "该通话没有此评分项的判定",
}


def _mask(text: str | None) -> str:
    return mask_pii(text) if text else ""


def fmt_kappa(kappa: float | None) -> str:
    return "—" if kappa is None else f"{kappa:.2f}"


def card_link(call_id: str, item_id: str) -> str:
    """The call card at one item, relative to OUT/reports/."""
    return f"calls/{href(card_stem(call_id))}.html#item-{quote(item_id, safe='')}"


def _verdict(result: str | None) -> dict[str, str]:
    if result is None:
        return {"result": "none", "label": "（无此项）"}
    return {"result": result, "label": RESULT_LABELS.get(result, result)}


def _item_row(item: ItemCalibration) -> dict[str, Any]:
    s = item.stats
    return {
        "item_id": item.item_id,
        "name": _mask(item.item_name),
        "n": s.n,
        "agreement": fmt_rate(s.rate),
        "agreement_value": s.rate,
        "kappa": fmt_kappa(s.kappa),
        "precision": fmt_rate(s.fail_precision),
        "recall": fmt_rate(s.fail_recall),
        "review": fmt_rate(item.review_share),
        "confusion": [
            {"human": RESULT_LABELS[h], "cells": [{"n": s.confusion[i][k], "diag": i == k} for k in range(len(VERDICTS))]}
            for i, h in enumerate(VERDICTS)
        ],
    }


def _rater_row(r: RaterAgreement) -> dict[str, Any]:
    return {
        "first": _mask(r.first),
        "second": "机器" if r.second == MACHINE else _mask(r.second),
        "n": r.stats.n,
        "agreement": fmt_rate(r.stats.rate),
        "kappa": fmt_kappa(r.stats.kappa),
    }


def _disagreement(j: Judged) -> dict[str, Any]:
    return {
        "call_id": j.label.call_id,
        "call_label": mask_id(j.label.call_id),
        "href": card_link(j.label.call_id, j.label.item_id),
        "item": _mask(j.item_name),
        "human": _verdict(j.label.result),
        "machine": _verdict(j.machine),
        "inspector": _mask(j.label.inspector) or "—",
        "stale": j.label.stale,
        "needs_review": j.needs_review,
        "reason": _mask(j.reason),
        "evidence": _mask(j.evidence_text),
        "clock": fmt_clock(j.evidence_start),
    }


def _change(c: VerdictChange) -> dict[str, Any]:
    return {
        "call_id": c.call_id,
        "call_label": mask_id(c.call_id),
        "href": card_link(c.call_id, c.item_id),
        "item": _mask(c.item_name),
        "before": _verdict(c.before),
        "after": _verdict(c.after),
        "human": "、".join(RESULT_LABELS.get(h, h) for h in c.human) or "—",
        "closer": bool(c.human) and c.after in c.human and c.before not in c.human,
        "further": bool(c.human) and c.before in c.human and c.after not in c.human,
        "reason": _mask(c.reason),
        "evidence": _mask(c.evidence_text),
        "clock": fmt_clock(c.evidence_start),
    }


def _candidate_view(cand: CandidateComparison) -> dict[str, Any]:
    before = {i.item_id: i for i in cand.before.items}
    after = {i.item_id: i for i in cand.after.items}
    changed: dict[str, int] = {}
    for c in cand.changes:
        changed[c.item_id] = changed.get(c.item_id, 0) + 1
    rows = []
    for item_id in [*after, *(k for k in before if k not in after)]:
        b, a = before.get(item_id), after.get(item_id)
        shown = a if a is not None else before[item_id]
        rb, ra = (b.stats.rate if b else None), (a.stats.rate if a else None)
        rows.append({
            "name": _mask(shown.item_name),
            "n_before": b.stats.n if b else 0,
            "n_after": a.stats.n if a else 0,
            "before": fmt_rate(rb),
            "after": fmt_rate(ra),
            "delta": "" if rb is None or ra is None or rb == ra else f"{(ra - rb) * 100:+.0f} 个百分点",
            "up": rb is not None and ra is not None and ra > rb,
            "down": rb is not None and ra is not None and ra < rb,
            "changed": changed.get(item_id, 0),
        })
    ob, oa = cand.before.overall.stats.rate, cand.after.overall.stats.rate
    return {
        "rubric": _mask(f"{cand.rubric_id} v{cand.rubric_version}"),
        "path": _mask(cand.rubric_path),
        "n_calls": cand.n_calls,
        "seconds": f"{cand.seconds:.1f}",
        "rows": rows,
        "overall_before": fmt_rate(ob),
        "overall_after": fmt_rate(oa),
        "changes": [_change(c) for c in cand.changes],
        "no_transcript": list(cand.no_transcript),
    }


def calibration_view(c: Calibration, computed_at: str, candidate: CandidateComparison | None = None) -> dict[str, Any]:
    """Everything calibration.html shows, masked and formatted."""
    disagreements = sorted((j for j in c.judged if not j.agrees), key=lambda j: (j.label.item_id, j.label.call_id))
    return {
        "source": _mask(c.source),
        "computed_at": computed_at,
        "since": f"{c.since:%Y-%m-%d}" if c.since else "",
        "left_out": c.left_out,
        "n_labels": len(c.judged) + len(c.unmatched) + c.left_out,
        "n_compared": len(c.judged),
        "n_calls": len({j.label.call_id for j in c.judged}),
        "rows": [_item_row(i) for i in c.items],
        "overall": _item_row(c.overall),
        "disagreements": [_disagreement(j) for j in disagreements],
        "inspectors": [_rater_row(r) for r in c.inspectors],
        "versus_machine": [_rater_row(r) for r in c.versus_machine],
        "unmatched": [
            {"call_id": u.label.call_id, "call_label": mask_id(u.label.call_id), "item_id": u.label.item_id, "why": WHY_LABELS.get(u.why, u.why),
             "where": _mask(u.label.where), "human": RESULT_LABELS.get(u.label.result, u.label.result)}
            for u in c.unmatched
        ],
        "verdicts": [RESULT_LABELS[v] for v in VERDICTS],
        "candidate": _candidate_view(candidate) if candidate else None,
    }


def write_calibration_page(out: Path, c: Calibration, computed_at: str,
                           candidate: CandidateComparison | None = None) -> Path:
    path = Path(out) / PAGE
    template = make_environment().get_template("calibration.html.j2")
    text = template.render(cal=calibration_view(c, computed_at, candidate), generated_by="qa-pipeline")
    write_atomic(path, text, sync=False)
    return path
