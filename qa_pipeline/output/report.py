"""HTML report cards: one page per call, one per agent, and a batch index.

Pages are self-contained (CSS and a few lines of JS inlined, no network resources) and work from
``file://``.  Every piece of free text shown (transcript, evidence, reasons, errors, names) goes
through :func:`qa_pipeline.output.redact.mask_pii` while the view is built, so a template cannot forget
it; Jinja2 autoescaping is on for every template as a second line of defence against markup.

The view builders (``call_view``, ``agent_views``, ``index_view``) are pure functions from
records to plain dicts; ``render_reports`` renders and writes them atomically.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import markupsafe

from qa_pipeline.files import fit_stem, write_atomic
from qa_pipeline.output.drops import drop_reason
from qa_pipeline.parallel import Started, start_chunks
from qa_pipeline.records import (
    AGENT,
    CUSTOMER,
    FAIL,
    NA,
    PASS,
    SYSTEM,
    CallMeta,
    CallScore,
    CallTranscript,
    ItemResult,
    ItemTrust,
    Utterance,
)
from qa_pipeline.output.redact import CallRedactor, mask_id, mask_pii
from qa_pipeline.output.tables import call_date
from qa_pipeline.final_verdicts import FinalCall
from qa_pipeline.output.review_views import call_review_view, dispute_counts, review_item_view

log = logging.getLogger("qa_pipeline")

UNKNOWN_AGENT = "_unknown"

RESULT_LABELS = {PASS: "通过", FAIL: "未通过", NA: "不适用"}
SPEAKER_LABELS = {AGENT: "坐席", CUSTOMER: "客户", SYSTEM: "系统提示音"}
MATCHED_BY_LABELS = {
    "text": "文字匹配",
    "pinyin": "拼音匹配",
    "model": "模型判定",
    "manifest": "话单记录",
    "audio": "音频判断",
    "timeline": "时间线",
}


# ---------------------------------------------------------------------------------------------
# small pure helpers


def safe_name(value: str | None) -> str:
    """A file name (without extension) for an id: word characters, '.', '-' and '_' only.

    Anything else becomes '_' and, when the name had to change, a short hash of the original is
    appended so that distinct ids never share a file.
    """
    if not value:
        return UNKNOWN_AGENT
    cleaned = re.sub(r"[^\w.\-]", "_", value, flags=re.UNICODE).lstrip(".") or "_"
    return fit_stem(cleaned, value, digest_chars=8)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def printable(value: Any) -> Any:
    """Every value a template prints: control characters (NUL, ESC …) shown as U+FFFD, never raw.
    Markup (a macro's output) stays markup: the replacement adds no markup to it."""
    if not isinstance(value, str) or not _CONTROL.search(value):
        return value
    if isinstance(value, markupsafe.Markup):
        return markupsafe.Markup(_CONTROL.sub("\ufffd", value))
    return _CONTROL.sub("\ufffd", value)


def card_stem(call_id: str) -> str:
    """The file name (without .html) of a call's card: no customer's number in it (redact.mask_id,
    whose letters keep two such calls apart, so no hash of the id is added)."""
    label = mask_id(call_id)
    if label == call_id:
        return safe_name(call_id)
    stem = re.sub(r"[^\w\-]", "_", label)
    return fit_stem(stem, stem)  # cut only if too long


def href(name: str) -> str:
    """A relative URL for a file name made by :func:`safe_name`."""
    return quote(name)


def fmt_clock(seconds: float | None) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a time offset; empty for None."""
    if seconds is None:
        return ""
    total = max(0, int(round(seconds)))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_started(value: str | None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in the timestamp's own offset for ISO 8601; anything else as given."""
    if not value:
        return "—"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def fmt_score(score: float | None) -> str:
    return "—" if score is None else f"{score:.1f}"


def fmt_points(value: float) -> str:
    return f"{value:g}"


def fmt_rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f}%"


def _mask(text: str | None) -> str:
    return mask_pii(text) if text else ""


def default_audio_href(meta: CallMeta, page_dir: Path) -> str:
    """URL of the call's audio relative to the folder of its report page."""
    audio = Path(meta.path)
    try:
        rel = os.path.relpath(audio.resolve(), page_dir.resolve())
    except ValueError:  # another drive on Windows
        return audio.resolve().as_uri()
    return quote(os.fsencode(Path(rel).as_posix()))  # the name's own bytes, UTF-8 or not (a GBK name)


def pass_rate(items: Iterable[ItemResult]) -> float | None:
    """Share of pass among pass+fail (n/a excluded); None when there is nothing to judge."""
    judged = [i.result for i in items if i.result in (PASS, FAIL)]
    return sum(r == PASS for r in judged) / len(judged) if judged else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _agent_key(score: CallScore) -> str:
    return score.agent_id or UNKNOWN_AGENT


def _agent_label(score: CallScore) -> str:
    if score.agent_name and score.agent_id:
        return f"{_mask(score.agent_name)}（{score.agent_id}）"
    return _mask(score.agent_name) or score.agent_id or "未知坐席"


# ---------------------------------------------------------------------------------------------
# call card


def _utterance_view(u: Utterance, text: str) -> dict[str, Any]:
    side = u.speaker if u.speaker in (AGENT, CUSTOMER, SYSTEM) else "unknown"
    return {
        "side": side,
        "speaker": SPEAKER_LABELS.get(u.speaker, "未知"),
        "start": round(u.start, 2),
        "end": round(u.end, 2),
        "clock": fmt_clock(u.start),
        "text": text,
    }


def _utterance_views(transcript: CallTranscript | None, mask: CallRedactor) -> tuple[list[dict], list[dict]]:
    """The kept and the dropped utterances of the card, masked by ``mask`` (built from all of them)."""
    if transcript is None:
        return [], []
    kept = [_utterance_view(u, mask.utterance(k)) for k, u in enumerate(transcript.utterances)]
    first_dropped = len(transcript.utterances)
    dropped = [
        {**_utterance_view(u, mask.utterance(first_dropped + k)), "reason": mask(drop_reason(r))}
        for k, (u, r) in enumerate(zip(transcript.dropped, transcript.drop_reasons))
    ]
    return kept, dropped


def call_redactor(transcript: CallTranscript | None) -> CallRedactor:
    """The masking of one call card: every utterance, kept or dropped, in time order per speaker."""
    if transcript is None:
        return CallRedactor()
    both = list(transcript.utterances) + list(transcript.dropped)
    return CallRedactor([(u.speaker, u.text) for u in both], order=[u.start for u in both])


def _item_view(i: ItemResult, mask: Callable[[str | None], str]) -> dict[str, Any]:
    has_time = i.evidence_start is not None
    return {
        "item_id": i.item_id,
        "name": _mask(i.item_name),
        "result": i.result,
        "result_label": RESULT_LABELS.get(i.result, i.result),
        "points": fmt_points(i.points),
        "max_points": fmt_points(i.max_points),
        "reason": mask(i.reason),
        "critical": i.critical,
        "critical_failed": i.critical and i.result == FAIL,
        "needs_review": i.needs_review,
        "matched_by": MATCHED_BY_LABELS.get(i.matched_by or "", i.matched_by or ""),
        "evidence": mask(i.evidence_text),
        "t": round(i.evidence_start, 2) if has_time else None,
        "t_end": round(i.evidence_end, 2) if i.evidence_end is not None else None,
        "clock": fmt_clock(i.evidence_start) if has_time else "",
    }


def call_view(
    score: CallScore,
    transcript: CallTranscript | None,
    meta: CallMeta | None,
    audio_src: str | None,
) -> dict[str, Any]:
    """Everything the call card shows, masked and formatted."""
    agent_file = safe_name(_agent_key(score))
    mask = call_redactor(transcript)
    utterances, dropped = _utterance_views(transcript, mask)
    duration = score.duration_s
    if duration is None and transcript is not None:
        duration = transcript.duration_s
    return {
        "call_id": score.call_id,
        "call_label": mask_id(score.call_id),  # what the page shows: no customer's number in it
        "status": score.status,
        "failed": score.status != "ok",
        "error": mask(score.error),
        "held_reason": mask(score.held_reason),
        "agent": _agent_label(score),
        "agent_href": f"../agents/{href(agent_file)}.html",
        "team": _mask(score.team) or "—",
        "started_at": fmt_started(score.started_at or (meta.started_at if meta else None)),
        "direction": {"inbound": "呼入", "outbound": "呼出"}.get((meta.direction if meta else None) or "", ""),
        "duration": fmt_clock(duration) or "—",
        "score": fmt_score(score.score),
        "passed": score.passed,
        "critical_failed": bool(score.critical_failed),
        "critical_fails": [_mask(i.item_name) for i in score.items if i.critical and i.result == FAIL],
        "n_review": sum(1 for i in score.items if i.needs_review),
        "rubric": " ".join(x for x in (score.rubric_id, score.rubric_version) if x) or "—",
        "model": score.model or (transcript.model if transcript else "") or "—",
        "processed_at": fmt_started(score.processed_at),
        "verdicts": [_item_view(i, mask) for i in score.items],
        "utterances": utterances,
        "dropped": dropped,
        "has_transcript": transcript is not None,
        "audio_src": audio_src,
        "mood": None,  # the customer's mood curve (output.manager.mood_card), when the batch measured it
    }


# ---------------------------------------------------------------------------------------------
# agent pages


def _row(score: CallScore) -> dict[str, Any]:
    """One call as a line in a list (index, agent page)."""
    return {
        "call_id": score.call_id,
        "call_label": mask_id(score.call_id),
        "href": f"calls/{href(card_stem(score.call_id))}.html",
        "agent": _agent_label(score),
        "agent_href": f"agents/{href(safe_name(_agent_key(score)))}.html",
        "team": _mask(score.team) or "—",
        "started_at": fmt_started(score.started_at),
        "duration": fmt_clock(score.duration_s) or "—",
        "status": score.status,
        "failed": score.status != "ok",
        "score": fmt_score(score.score),
        "passed": score.passed,
        "critical_failed": bool(score.critical_failed),
        "critical_fails": [_mask(i.item_name) for i in score.items if i.critical and i.result == FAIL],
        "n_review": sum(1 for i in score.items if i.needs_review),
        "error": _mask(score.error),
    }


def _worst_first(scores: Iterable[CallScore]) -> list[CallScore]:
    ok = [s for s in scores if s.status == "ok"]
    return sorted(ok, key=lambda s: (not s.critical_failed, bool(s.passed), s.score if s.score is not None else 0.0))


def _item_rates(scores: Sequence[CallScore]) -> dict[str, tuple[str, float | None, int]]:
    """item_id -> (name, pass rate, number of judged calls) over ok calls, in first-seen order."""
    names: dict[str, str] = {}
    by_item: dict[str, list[ItemResult]] = defaultdict(list)
    for s in scores:
        if s.status != "ok":
            continue
        for i in s.items:
            names.setdefault(i.item_id, i.item_name)
            by_item[i.item_id].append(i)
    return {
        k: (names[k], pass_rate(by_item[k]), sum(i.result in (PASS, FAIL) for i in by_item[k])) for k in names
    }


def _item_comparison(
    mine: dict[str, tuple[str, float | None, int]], theirs: dict[str, tuple[str, float | None, int]]
) -> list[dict[str, Any]]:
    """Per-item pass rate of an agent beside the team's; ``below_team`` when 5+ points lower."""
    rows = []
    for item_id, (name, rate, n) in mine.items():
        team_rate = theirs.get(item_id, (name, None, 0))[1]
        rows.append(
            {
                "item_id": item_id,
                "name": _mask(name),
                "n": n,
                "rate": fmt_rate(rate),
                "rate_pct": None if rate is None else round(rate * 100),
                "team_rate": fmt_rate(team_rate),
                "team_pct": None if team_rate is None else round(team_rate * 100),
                "below_team": rate is not None and team_rate is not None and rate < team_rate - 0.05,
            }
        )
    return rows


def trend_svg_points(days: Sequence[tuple[date, float]], width: int = 640, height: int = 180) -> dict[str, Any]:
    """Coordinates for an inline SVG line chart of average score per day (y axis 0–100)."""
    pad_l, pad_r, pad_t, pad_b = 36, 16, 12, 28
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    n = len(days)
    points = []
    for k, (day, value) in enumerate(days):
        x = pad_l + (inner_w / 2 if n == 1 else inner_w * k / (n - 1))
        y = pad_t + inner_h * (1 - max(0.0, min(100.0, value)) / 100)
        points.append({"x": round(x, 1), "y": round(y, 1), "label": day.strftime("%m-%d"), "value": fmt_score(value)})
    gridlines = [
        {"y": round(pad_t + inner_h * (1 - v / 100), 1), "label": str(v)} for v in (0, 25, 50, 75, 100)
    ]
    return {
        "width": width,
        "height": height,
        "x0": pad_l,
        "x1": width - pad_r,
        "base_y": pad_t + inner_h,
        "points": points,
        "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
        "gridlines": gridlines,
        "label_every": max(1, n // 10),
    }


def agent_views(scores: Sequence[CallScore]) -> dict[str, dict[str, Any]]:
    """One view per agent (key: agent_id or ``_unknown``) with team comparison and trend."""
    by_agent: dict[str, list[CallScore]] = defaultdict(list)
    by_team: dict[str | None, list[CallScore]] = defaultdict(list)
    for s in scores:
        by_agent[_agent_key(s)].append(s)
        by_team[s.team].append(s)
    views: dict[str, dict[str, Any]] = {}
    team_rates: dict[str | None, dict[str, tuple[str, float | None, int]]] = {}  # None: every call
    for key, calls in by_agent.items():
        ok = [s for s in calls if s.status == "ok"]
        values = [s.score for s in ok if s.score is not None]
        team = next((s.team for s in calls if s.team), None)
        if team not in team_rates:
            team_rates[team] = _item_rates(by_team.get(team, []) if team else list(scores))
        mine, theirs = _item_rates(calls), team_rates[team]
        per_day: dict[date, list[float]] = defaultdict(list)
        for s in ok:
            if s.score is not None:
                per_day[call_date(s.started_at, s.processed_at)].append(s.score)
        days = sorted((d, sum(v) / len(v)) for d, v in per_day.items())
        judged_pass = [s.passed for s in ok if s.passed is not None]
        views[key] = {
            "key": key,
            "file": safe_name(key),
            "label": _agent_label(calls[0]),
            "team": _mask(team) or "—",
            "team_label": _mask(team) if team else "全体",
            "n_calls": len(calls),
            "n_ok": len(ok),
            "n_failed": len(calls) - len(ok),
            "avg_score_value": _mean(values),
            "avg_score": fmt_score(_mean(values)),
            "pass_rate_value": _mean([float(p) for p in judged_pass]),
            "pass_rate": fmt_rate(_mean([float(p) for p in judged_pass])),
            "n_review": sum(1 for s in calls for i in s.items if i.needs_review),
            "item_rates": _item_comparison(mine, theirs),
            "trend": trend_svg_points(days) if days else None,
            "worst": [_row(s) for s in _worst_first(calls)],
            "failed_calls": [_row(s) for s in calls if s.status != "ok"],
        }
    return views


# ---------------------------------------------------------------------------------------------
# index


def date_span(days: Sequence[date]) -> str:
    """``2025-03-03``, ``2025-03-03 至 2025-03-31`` for sorted days; empty for none."""
    if not days:
        return ""
    first, last = f"{days[0]:%Y-%m-%d}", f"{days[-1]:%Y-%m-%d}"
    return first if first == last else f"{first} 至 {last}"


def sparkline(values: Sequence[float | None], width: int = 120, height: int = 28) -> dict[str, Any]:
    """An inline SVG polyline of shares (0–1) per day, days evenly spaced; a day without a value
    (nothing judged) is skipped."""
    pad = 3
    n = len(values)
    points = []
    for k, value in enumerate(values):
        if value is None:
            continue
        x = pad + ((width - 2 * pad) / 2 if n == 1 else (width - 2 * pad) * k / (n - 1))
        y = pad + (height - 2 * pad) * (1 - max(0.0, min(1.0, value)))
        points.append((round(x, 1), round(y, 1)))
    return {
        "width": width,
        "height": height,
        "polyline": " ".join(f"{x},{y}" for x, y in points),
        "last": {"x": points[-1][0], "y": points[-1][1]} if points else None,
    }


def item_health(scores: Sequence[CallScore], trust: Mapping[str, ItemTrust] | None = None) -> list[dict[str, Any]]:
    """Per rubric item (in rubric order): its fail rate (fail among pass+fail) per day as a
    sparkline, overall and on the last day; and, where people labelled it, its agreement with them
    and whether its automatic verdict is trusted."""
    ok = [s for s in scores if s.status == "ok"]
    days = sorted({call_date(s.started_at, s.processed_at) for s in ok})
    names: dict[str, str] = {}
    counts: dict[str, dict[date, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for s in ok:
        day = call_date(s.started_at, s.processed_at)
        for i in s.items:
            names.setdefault(i.item_id, i.item_name)
            if i.result in (PASS, FAIL):
                c = counts[i.item_id][day]
                c[0] += i.result == FAIL
                c[1] += 1
    rows = []
    for item_id, name in names.items():
        per_day = [counts[item_id][d] if d in counts[item_id] else None for d in days]
        rates = [c[0] / c[1] if c else None for c in per_day]
        fails, judged = sum(c[0] for c in per_day if c), sum(c[1] for c in per_day if c)
        t = (trust or {}).get(item_id)
        rows.append({
            "item_id": item_id,
            "name": _mask(name),
            "fail_rate": fmt_rate(fails / judged if judged else None),
            "n_judged": judged,
            "last_rate": fmt_rate(rates[-1] if rates else None),
            "spark": sparkline(rates),
            "days_title": "；".join(f"{d:%m-%d} {fmt_rate(r)}" for d, r in zip(days, rates)),
            "labels_n": t.n if t else 0,
            "agreement": fmt_rate(t.rate) if t and t.n else "",
            "recent": f"近 {min(t.last_n, t.recent_n)} 条标注一致率 {fmt_rate(t.recent_rate)}" if t and t.n else "",
            "not_trusted": bool(t and not t.trusted),
            "floor": fmt_rate(t.floor) if t else "",
        })
    return rows


def index_view(scores: Sequence[CallScore], agents: dict[str, dict[str, Any]],
               trust: Mapping[str, ItemTrust] | None = None, *,
               machine: Sequence[CallScore] | None = None) -> dict[str, Any]:
    """The index: ``scores`` as they count (final verdicts); the rubric items' hit rates from the
    machine's own verdicts (``machine``, default ``scores``): how often each rule fires."""
    ok = [s for s in scores if s.status == "ok"]
    values = [s.score for s in ok if s.score is not None]
    judged = [float(bool(s.passed)) for s in ok if s.passed is not None]
    ranked = sorted(
        agents.values(),
        key=lambda a: (a["avg_score_value"] is None, -(a["avg_score_value"] or 0.0), a["label"]),
    )
    days = sorted({call_date(s.started_at, s.processed_at) for s in scores})
    return {
        "n_calls": len(scores),
        "days": date_span(days),
        "n_days": len(days),
        "n_ok": len(ok),
        "n_failed": len(scores) - len(ok),
        "avg_score": fmt_score(_mean(values)),
        "pass_rate": fmt_rate(_mean(judged)),
        "n_critical": sum(1 for s in ok if s.critical_failed),
        "n_review": sum(1 for s in ok for i in s.items if i.needs_review),
        "failed": [_row(s) for s in scores if s.status != "ok"],
        "agents": [{**a, "href": f"agents/{href(a['file'])}.html"} for a in ranked],
        "calls": [_row(s) for s in sorted(scores, key=lambda s: (s.started_at or "", s.call_id))],
        "worst": [_row(s) for s in _worst_first(scores)[:10]],
        "rubric_items": item_health(machine if machine is not None else scores, trust),
        "has_labels": bool(trust) and any(t.n for t in trust.values()),
    }


# ---------------------------------------------------------------------------------------------
# rendering


def _template_dir() -> Path | None:
    here = Path(__file__).resolve().parents[2] / "reports"
    return here if (here / "call.html.j2").is_file() else None


def _load_packaged(name: str) -> str | None:
    resource = importlib.resources.files("qa_pipeline").joinpath("reports").joinpath(name)
    try:
        return resource.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _ViewEnvironment(jinja2.Environment):
    """Jinja2's environment, with ``view.key`` on a plain dict (every view) looked up as the key
    straight away: the same value Jinja2 finds after trying the attribute and catching its
    AttributeError, which costs most of a card's attribute lookups."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def make_environment() -> jinja2.Environment:
    """The Jinja2 environment: templates from ``reports/`` (or the installed package), autoescaped."""
    folder = _template_dir()
    loader: jinja2.BaseLoader
    if folder is not None:
        loader = jinja2.FileSystemLoader(str(folder), encoding="utf-8")
    else:
        loader = jinja2.FunctionLoader(_load_packaged)
    env = _ViewEnvironment(
        loader=loader,
        finalize=printable,
        # `.html.j2` ends in `.j2`, so it is listed explicitly; anything else defaults to on too.
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "j2"), default_for_string=True, default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def _write_page(path: Path, text: str) -> None:
    write_atomic(path, text, sync=False)  # no fsync: pages are rebuilt from the tables; the rename keeps them whole


def _audio_src(meta: CallMeta | None, calls_dir: Path, audio_href: Callable[[CallMeta], str] | None) -> str | None:
    """The player's ``src``: ``audio_href(meta)`` if given, else the recording's relative path.

    Without ``audio_href``, a recording that is not there (a call that failed to read) gets no
    player rather than a broken one.
    """
    if meta is None:
        return None
    if audio_href is not None:
        return audio_href(meta)
    return default_audio_href(meta, calls_dir) if Path(meta.path).is_file() else None


def render_reports(
    out: Path,
    scores: list[CallScore],
    transcripts: dict[str, CallTranscript],
    metas: dict[str, CallMeta],
    *,
    audio_href: Callable[[CallMeta], str] | None = None,
    all_scores: Sequence[CallScore] | None = None,
    item_trust: Mapping[str, ItemTrust] | None = None,
    finals: Mapping[str, FinalCall] | None = None,
    morning=None,
    cards: Started | None = None,
) -> Path:
    """Write ``out/reports/index.html``, ``calls/<call_id>.html`` and ``agents/<agent_id>.html``.

    A call card is written for each of ``scores``.  The index and the agent pages cover
    ``all_scores`` (every call in ``out``, e.g. earlier nights read back with
    :func:`qa_pipeline.output.tables.read_scores`; their cards stay as written then) with ``scores``
    replacing the calls they share; by default just ``scores``.

    ``audio_href(meta)`` gives the ``src`` of each call card's audio player; by default, the path
    of ``meta.path`` relative to the card, and no player when that file does not exist.  Returns
    the index page's path.

    ``finals`` (call_id → :class:`~qa_pipeline.final_verdicts.FinalCall`) are the final verdicts
    where people reviewed calls: every page then shows those, a card says "机器：未通过 →
    质检员 …：通过（理由）" where a person changed a verdict, and agent pages count disputes.
    ``item_trust`` (item_id → agreement with people's labels) adds agreement and "not trusted"
    marks to the index's rubric items. ``morning`` (:class:`qa_pipeline.morning.MorningPages`) adds
    the customer's mood to the cards, trends and de-escalation to the agent pages, trends and reasons
    to the index, and writes the reason pages. ``cards``: the call cards already begun
    (:func:`start_call_cards`), waited for here; by default they are begun here.
    """
    root = Path(out) / "reports"
    env = make_environment()
    agent_tpl, index_tpl = (env.get_template(n) for n in ("agent.html.j2", "index.html.j2"))
    generated = {"generated_by": "qa-pipeline"}

    finals = finals or {}
    if cards is None:
        cards = start_call_cards(out, scores, transcripts, metas, audio_href=audio_href, finals=finals,
                                 moods=morning.cards if morning is not None else None)
    with cards:
        index_path = _render_pages(root, env, agent_tpl, index_tpl, generated, scores, all_scores, finals,
                                   item_trust, morning)
        cards.result()
    return index_path


def start_call_cards(out: Path, scores: Sequence[CallScore], transcripts: Mapping[str, CallTranscript],
                     metas: Mapping[str, CallMeta], *, audio_href: Callable[[CallMeta], str] | None = None,
                     finals: Mapping[str, FinalCall] | None = None, moods: Mapping[str, dict | None] | None = None
                     ) -> Started:
    """Begin writing the call cards of ``scores`` in forked workers (see render_reports, which waits
    for them): a batch writes its tables meanwhile."""
    finals = finals or {}
    call_tpl = make_environment().get_template("call.html.j2")
    work = [(s, transcripts.get(s.call_id), metas.get(s.call_id), finals.get(s.call_id)) for s in scores]
    return start_chunks(partial(_write_call_cards, calls_dir=Path(out) / "reports" / "calls", audio_href=audio_href,
                                template=call_tpl, moods=moods or {}), work)


def _render_pages(root: Path, env, agent_tpl, index_tpl, generated: dict, scores: Sequence[CallScore],
                  all_scores: Sequence[CallScore] | None, finals: Mapping[str, FinalCall],
                  item_trust: Mapping[str, ItemTrust] | None, morning) -> Path:
    """The agent pages, the index and the morning's extra pages of render_reports."""
    machine = merge_scores(all_scores or (), scores)
    everything = [finals[s.call_id].as_score() if s.call_id in finals else s for s in machine]
    agents = agent_views(everything)
    if finals:
        by_agent: dict[str, list[FinalCall]] = defaultdict(list)
        for s in everything:
            if s.call_id in finals:
                by_agent[_agent_key(s)].append(finals[s.call_id])
        for key, a in agents.items():
            a["disputes"] = dispute_counts(by_agent.get(key, ()))
            a["n_changed"] = sum(1 for f in by_agent.get(key, ()) for i in f.items if i.changed)
    for key, a in agents.items():
        a["morning"] = morning.agents.get(key) if morning is not None else None
        _write_page(root / "agents" / f"{a['file']}.html", agent_tpl.render(agent=a, **generated))

    index_path = root / "index.html"
    index = index_view(everything, agents, item_trust, machine=machine)
    index["morning"] = morning.index if morning is not None else None
    _write_page(index_path, index_tpl.render(index=index, **generated))
    for rel, template, context in (morning.extra if morning is not None else ()):
        _write_page(root / rel, env.get_template(template).render(**context, **generated))
    log.info("writing %d call cards; wrote the index and %d agent pages over %d calls under %s",
             len(scores), len(agents), len(everything), root)
    return index_path


def _write_call_cards(work, *, calls_dir: Path, audio_href, template, moods=None) -> list[None]:
    for score, transcript, meta, final in work:
        view = call_view(final.as_score() if final else score, transcript, meta,
                         _audio_src(meta, calls_dir, audio_href))
        view["mood"] = (moods or {}).get(score.call_id)
        if final is not None:
            add_review(view, final)
        _write_page(calls_dir / f"{card_stem(score.call_id)}.html",
                          template.render(call=view, generated_by="qa-pipeline"))
    return []


def add_review(view: dict[str, Any], final: FinalCall) -> dict[str, Any]:
    """Put what people decided on a call into its :func:`call_view` (built from ``final.as_score()``)."""
    for v, item in zip(view["verdicts"], final.items):
        v["review"] = review_item_view(item)
    view["review"] = call_review_view(final)
    return view


def merge_scores(earlier: Iterable[CallScore], latest: Iterable[CallScore]) -> list[CallScore]:
    """``earlier`` with each call in ``latest`` replaced (or appended), keeping first-seen order."""
    merged = {s.call_id: s for s in earlier}
    merged.update((s.call_id, s) for s in latest)
    return list(merged.values())
