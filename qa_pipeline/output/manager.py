"""Page views of what a manager reads in the morning: the mood curve on a call card, trends, reasons.

Pure functions from records to the plain dicts the templates print; every customer's word goes
through the masking (output.redact) here, like the rest of the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from qa_pipeline.output.redact import mask_pii
from qa_pipeline.reasons.period import PeriodComparison
from qa_pipeline.records import CallMood, CallTranscript
from qa_pipeline.trends import MeanChange, RateChange, Trends

ARROWS = {"up": "↑", "down": "↓", None: ""}


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def level(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = max(0, int(round(seconds)))
    return f"{s // 60}:{s % 60:02d}"


def _turn_why(t) -> str:
    parts = [f"投诉识别 {t.complaint:.2f}"]
    if t.similar > 0.05:
        parts.append(f"措辞接近不满例句（+{t.similar:.2f}）")
    if t.pitch_st is not None and abs(t.pitch_st) >= 1:
        parts.append(f"音调 {t.pitch_st:+.1f} 半音")
    if t.level_db is not None and abs(t.level_db) >= 2:
        parts.append(f"音量 {t.level_db:+.0f} dB")
    if t.rate is not None and abs(t.rate) >= 0.1:
        parts.append(f"语速 {(2 ** t.rate - 1) * 100:+.0f}%")
    if t.overlap:
        parts.append("打断坐席")
    return "，".join(parts)


def mood_card(mood: CallMood | None, transcript: CallTranscript | None, threshold: float,
              width: int = 640, height: int = 150) -> dict[str, Any] | None:
    """The customer's frustration over the call: an inline SVG curve and the peak, end and why."""
    if mood is None or not mood.turns:
        return None
    duration = max((transcript.duration_s if transcript else 0.0), mood.turns[-1].end, 1.0)
    pad_l, pad_r, pad_t, pad_b = 36, 12, 10, 24
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    texts = {u.utterance_id: u.text for u in (transcript.utterances if transcript else ())}

    def x(t: float) -> float:
        return round(pad_l + inner_w * min(1.0, max(0.0, t / duration)), 1)

    def y(v: float) -> float:
        return round(pad_t + inner_h * (1 - v), 1)

    points = [{"x": x(t.start), "y": y(t.frustration), "t": round(t.start, 2), "clock": clock(t.start),
               "value": level(t.frustration), "high": t.frustration >= threshold,
               "text": mask_pii(texts.get(t.utterance_id, ""))[:60], "why": _turn_why(t)} for t in mood.turns]
    peak_turn = max(mood.turns, key=lambda t: t.frustration)
    return {
        "width": width, "height": height, "x0": pad_l, "x1": width - pad_r, "base_y": pad_t + inner_h,
        "threshold_y": y(threshold), "threshold": level(threshold),
        "gridlines": [{"y": y(v), "label": f"{v:g}"} for v in (0, 0.5, 1)],
        "ticks": [{"x": x(t), "label": clock(t)} for t in (0, duration / 2, duration)],
        "points": points, "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
        "peak": level(mood.peak), "peak_clock": clock(mood.peak_at), "end": level(mood.end),
        "frustrated": (mood.peak or 0) >= threshold, "deescalated": mood.deescalated,
        "peak_why": _turn_why(peak_turn), "model": mood.model,
    }


def _rate_row(r: RateChange, *, worse_when_up: bool = True) -> dict[str, Any]:
    bad = (r.marked == "up") == worse_when_up if r.marked else False
    return {"label": mask_pii(r.label), "now": pct(r.now), "before": pct(r.before), "now_n": r.now_n,
            "before_n": r.before_n, "now_k": r.now_k, "before_k": r.before_k,
            "delta": "—" if r.now is None or r.before is None else f"{(r.now - r.before) * 100:+.0f} 个百分点",
            "marked": r.marked, "arrow": ARROWS[r.marked], "worse": bool(r.marked) and bad,
            "better": bool(r.marked) and not bad, "z": "—" if r.z is None else f"{r.z:+.1f}"}


def _mean_row(m: MeanChange) -> dict[str, Any]:
    return {"label": mask_pii(m.label), "now": level(m.now), "before": level(m.before), "now_n": m.now_n,
            "before_n": m.before_n, "marked": m.marked, "arrow": ARROWS[m.marked], "worse": m.marked == "up",
            "better": m.marked == "down", "z": "—" if m.z is None else f"{m.z:+.1f}"}


def trends_view(t: Trends | None) -> dict[str, Any] | None:
    if t is None:
        return None
    w = t.window
    items = [_rate_row(r) for r in t.items]
    return {
        "this_week": f"{w.this_week[0]:%m-%d} 至 {w.this_week[1]:%m-%d}",
        "before": f"{w.before[0]:%m-%d} 至 {w.before[1]:%m-%d}",
        "items": items,
        "teams": [{"rate": _rate_row(r), "mood": _mean_row(m)} for r, m in t.teams],
        "frustration": _mean_row(t.frustration),
        "n_worse": sum(1 for r in items if r["worse"]) + sum(
            1 for r, m in t.teams if (r.marked == "up") or (m.marked == "up")),
        "has_before": any(r.before_n for r in t.items) or t.frustration.before_n > 0,
    }


def reasons_view(c: PeriodComparison | None, *, title: str, before_label: str, calls_prefix: str) -> dict[str, Any] | None:
    """A period's reasons: share, change against `before_label`, teams, three example quotes."""
    if c is None:
        return None
    rows = []
    for r in c.rows:
        g = r.group
        rows.append({
            **_rate_row(r.change), "name": mask_pii(g.name), "within_other": g.within_other, "pinned": g.pinned,
            "doubled": r.doubled, "n": r.change.now_k,
            "teams": "、".join(f"{mask_pii(team)} {n}" for team, n in r.teams),
            "examples": [{"href": f"{calls_prefix}{quote(_file(call_id))}.html", "call_id": call_id,
                          "quote": mask_pii(text)[:80]} for call_id, text in g.examples],
        })
    return {"title": title, "before_label": before_label, "n_now": c.n_now, "n_before": c.n_before, "rows": rows,
            "doubled": [mask_pii(n) for n in c.doubled]}


def _file(call_id: str) -> str:
    from qa_pipeline.output.report import safe_name  # the call cards' file names

    return safe_name(call_id)


def deescalation(moods: Sequence[tuple[float | None, bool | None]], threshold: float) -> dict[str, Any]:
    """Calls where the customer got frustrated, and of them those who ended calmer than at the peak."""
    frustrated = [calmer for peak, calmer in moods if peak is not None and peak >= threshold]
    calmed = sum(1 for c in frustrated if c)
    return {"n_mood": sum(1 for p, _c in moods if p is not None), "frustrated": len(frustrated), "calmed": calmed,
            "share": pct(calmed / len(frustrated)) if frustrated else "—"}
