"""`qa review OUT`: the review desk, a small Starlette app over OUT and OUT/review.db.

A thin layer: every page is built from the same records the batch writes (scores, transcripts,
run.json) and the audit trail, with :func:`final.final_call` for the final verdicts and
:func:`actions.act` for every change. Each request carries an actor (``request.scope["actor"]``,
None when signed out) resolved in one place, :class:`ActorMiddleware`; every permission question
goes to :func:`auth.allowed`; every request's body is capped and every POST passes the origin
check and the session-bound form token first (:mod:`qa_pipeline.review.guard`); a page for a
call the actor may not see is a 404, the same as for a call that does not exist.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import date
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa_pipeline.calibration.nightly import trust_in
from qa_pipeline.final_verdicts import (ACKNOWLEDGE, ESCALATE, FIRST, NOTE, OPEN, REVIEWED, FinalCall, final_call,
                                        final_calls, untrusted)
from qa_pipeline.output import report
from qa_pipeline.output.review_views import (ROLE_LABELS, call_review_view, dispute_counts, dispute_label, event_view,
                                             fmt_time, mask, result_label, review_item_view, who)
from qa_pipeline.records import FAIL, CallScore
from qa_pipeline.review import auth
from qa_pipeline.review.actions import Refused, Request as Action, act, available, may, resource
from qa_pipeline.review.data import OutFolder
from qa_pipeline.review.db import Conflict, ReviewDB, signing_key
from qa_pipeline.review.deadlines import closed_line, dispute_until, escalate_until, open_line, review_due
from qa_pipeline.review.guard import BodyLimit, CsrfGuard
from qa_pipeline.review.policy import Policy
from qa_pipeline.review.queue import KIND_LABELS, STATE_LABELS, STATES, build_queue, day_of, filter_queue

log = logging.getLogger("qa_pipeline")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8377
ROOT_USER = "root"
AUDIT_PAGE = 500


class Desk:
    """What the app serves: the output folder, its review database, the policy and the date."""

    def __init__(self, folder: OutFolder, db: ReviewDB, policy: Policy, *, today: Callable[[], date] = date.today,
                 refresh_every_s: float = 1.0) -> None:
        self.folder = folder
        self.db = db
        self.policy = policy
        self.today = today
        self._refresh_every_s = refresh_every_s
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self._finals: tuple[tuple, dict[str, FinalCall]] | None = None
        self._untrusted: tuple[tuple, frozenset[str]] | None = None
        self.db.record_machine(self.folder.scores.values())

    def sync(self) -> None:
        """Pick up a batch's new tables (checked at most once a second)."""
        now = time.monotonic()
        if now - self._checked < self._refresh_every_s:
            return
        self._checked = now
        with self._lock:
            if self.folder.refresh():
                self.db.record_machine(self.folder.scores.values())

    def score(self, call_id: str) -> CallScore | None:
        return self.folder.scores.get(call_id)

    def final(self, call_id: str) -> FinalCall | None:
        score = self.score(call_id)
        return final_call(score, self.db.events(call_id), self.untrusted()) if score is not None else None

    def _key(self) -> tuple:
        last = self.db.conn.execute("SELECT max(id) FROM events").fetchone()[0]
        return (self.folder.generation, last)

    def untrusted(self) -> frozenset[str]:
        """Items whose automatic verdict is not trusted (policy `trust`): their fails are held for a
        person. Decisions are labels too, so this is recomputed when the trail or the tables change."""
        key = self._key()
        cached = self._untrusted
        if cached is not None and cached[0] == key:
            return cached[1]
        found = untrusted(trust_in(self.folder.out, list(self.folder.scores.values()), self.policy.trust))
        self._untrusted = (key, found)
        return found

    def finals(self) -> dict[str, FinalCall]:
        """Every call's final verdicts; recomputed only when the trail or the tables changed."""
        key = self._key()
        cached = self._finals
        if cached is not None and cached[0] == key:
            return cached[1]
        finals = final_calls(self.folder.scores.values(), self.db.events(), self.untrusted())
        self._finals = (key, finals)
        return finals


# --- middleware -------------------------------------------------------------------------------


def _cookies(scope: Scope) -> dict[str, str]:
    raw = dict(scope.get("headers") or []).get(b"cookie")
    if not raw:
        return {}
    jar = SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except Exception:  # noqa: BLE001 - a malformed cookie header is no login, not an error page
        return {}
    return {k: m.value for k, m in jar.items()}


ANON_COOKIE = "qa_anon"  # the signed-out visitor's id: the sign-in form's token is bound to it


class ActorMiddleware:
    """Resolves the request's actor from the signed login cookie, once, into ``scope["actor"]`` (a
    cookie of an ended session or a disabled user is no login) and names what the form token is
    bound to (``scope["csrf_binding"]``: the session, or the signed-out visitor); adds a CSP nonce
    and the security headers to every response."""

    def __init__(self, app: ASGIApp, desk: Desk, sessions: auth.Sessions) -> None:
        self.app = app
        self.desk = desk
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = _cookies(scope)
        session = self.sessions.load(cookies.get(auth.SESSION_COOKIE))
        actor = None
        if session is not None:
            user = await run_in_threadpool(self.desk.db.user, session.user)
            if user is not None and not user.disabled and user.session_gen == session.generation:
                actor = auth.Actor(user.name, user.role, user.agent_id)
        extra: list[tuple[bytes, bytes]] = []
        if actor is not None:
            binding = f"session:{session.sid}"
        else:
            visitor = cookies.get(ANON_COOKIE, "")
            if not 16 <= len(visitor) <= 64 or not visitor.replace("-", "").replace("_", "").isalnum():
                visitor = secrets.token_urlsafe(18)
                extra.append((b"set-cookie", f"{ANON_COOKIE}={visitor}; Path=/; HttpOnly; SameSite=Strict".encode()))
            binding = f"visitor:{visitor}"
        nonce = secrets.token_urlsafe(16)
        scope = {**scope, "actor": actor, "csrf_binding": binding, "csp_nonce": nonce}
        csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; media-src 'self'; "
               "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                headers += [(b"content-security-policy", csp.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY"),
                            (b"cache-control", b"no-store"), *extra]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- the app ----------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = report.make_environment()
    here = Path(__file__).resolve().parent / "templates"
    env.loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(here), encoding="utf-8"), env.loader])
    env.globals.update(result_label=result_label, fmt_time=fmt_time)
    return env


def create_app(desk: Desk, *, links: auth.OneTimeLinks | None = None,
               throttle: auth.LoginThrottle | None = None) -> ASGIApp:
    """The desk as an ASGI app: actor → body cap → origin and form token → the views."""
    secret = signing_key(desk.folder.out)
    sessions = auth.Sessions(secret)
    links = links or auth.OneTimeLinks()
    throttle = throttle or auth.LoginThrottle()
    env = _environment()

    def actor_of(request: Request) -> auth.Actor | None:
        return request.scope.get("actor")

    def render(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        actor = actor_of(request)
        ctx.setdefault("flash", "")
        page = env.get_template(template).render(
            actor=actor, csrftoken=request.scope["csrftoken"](), nonce=request.scope.get("csp_nonce", ""),
            nav=_nav(actor), path=request.url.path, **ctx)
        return HTMLResponse(page, status_code=status)

    def not_found(request: Request) -> HTMLResponse:
        return render(request, "message.html.j2", 404, title="找不到页面", message="没有这个页面，或您无权查看。")

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)

    def signed_in(request: Request, response: Response, user) -> Response:
        response.set_cookie(auth.SESSION_COOKIE, sessions.dump(user.name, user.session_gen), max_age=sessions.max_age_s,
                            path="/", httponly=True, samesite="lax")
        return response

    # --- sign in and out ---

    async def login_page(request: Request) -> Response:
        if request.method == "GET":
            if actor_of(request) is not None:
                return RedirectResponse("/", status_code=303)
            return render(request, "login.html.j2", next=request.query_params.get("next", "/"), name="", error="")
        form = await request.form()
        name = str(form.get("name", "")).strip()
        password = str(form.get("password", ""))
        target = _safe_next(str(form.get("next", "/")))
        address = request.client.host if request.client else "?"
        wait = throttle.wait_s(name, address)
        if wait > 0:
            return render(request, "login.html.j2", 429, next=target, name=name,
                          error=f"登录失败次数过多，请 {max(1, round(wait / 60))} 分钟后再试")
        user = await run_in_threadpool(desk.db.user, name)
        ok = await run_in_threadpool(auth.check_password, user.password_hash if user else None, password)
        if not ok or user is None:
            throttle.failed(name, address)
            return render(request, "login.html.j2", 401, next=target, name=name, error="用户名或密码错误")
        if user.disabled:
            return render(request, "login.html.j2", 403, next=target, name=name, error="该账号已停用，请联系主管")
        throttle.succeeded(name)
        return signed_in(request, RedirectResponse(target, status_code=303), user)

    async def logout(request: Request) -> Response:
        actor = actor_of(request)
        if actor is not None:  # every session of the user ends, not just this browser's
            await run_in_threadpool(desk.db.end_sessions, actor.name)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(auth.SESSION_COOKIE, path="/", httponly=True, samesite="lax")
        return response

    async def sign_in_link(request: Request) -> Response:
        name = links.redeem(request.query_params.get("token", ""))
        user = await run_in_threadpool(desk.db.user, name) if name is not None else None
        if user is None or user.disabled:
            return render(request, "message.html.j2", 403, title="链接无效", message="登录链接无效或已使用过，请重新生成。")
        return signed_in(request, RedirectResponse("/", status_code=303), user)

    # --- pages ---

    async def home(request: Request) -> Response:
        actor = actor_of(request)
        if actor is None:
            return to_login(request)
        if actor.role == auth.AGENT:
            return RedirectResponse(f"/agents/{quote(actor.agent_id or '', safe='')}", status_code=303)
        return RedirectResponse("/queue", status_code=303)

    def queue_page(request: Request) -> Response:
        actor = actor_of(request)
        if actor is None:
            return to_login(request)
        if not auth.allowed(actor, auth.VIEW_QUEUE):
            return not_found(request)
        desk.sync()
        finals = desk.finals()
        entries = build_queue(finals, desk.policy)
        q = request.query_params
        days = sorted({e.day for e in entries} | {day_of(f) for f in finals.values()}, reverse=True)
        day = _parse_day(q.get("day")) if q.get("day") not in (None, "", "all") else None
        if q.get("day") is None and days:
            day = days[0]
        state = q.get("state", "open")
        chosen = filter_queue(entries, finals, day=day, team=q.get("team") or None, agent=q.get("agent") or None,
                              item=q.get("item") or None, state=state if state in STATES else None)
        labels = _agent_labels(finals.values())
        item_names = _item_names(finals.values())
        rows = []
        for e in chosen:
            f = finals[e.call_id]
            rows.append({
                "call_id": e.call_id, "href": _call_href(e.call_id, e.item_id), "day": e.day.isoformat(),
                "agent": labels.get(e.agent_id or "", "未知坐席"), "team": mask(e.team) or "—",
                "kind": e.kind, "kind_label": KIND_LABELS[e.kind],
                "item": mask(item_names.get(e.item_id, e.item_id)) if e.item_id else "",
                "machine_score": _fmt_score(f.machine.score), "final_score": _fmt_score(f.score),
                "final_passed": f.passed, "state": e.state, "state_label": STATE_LABELS[e.state],
            })
        filters = {
            "day": day.isoformat() if day else "all", "days": [d.isoformat() for d in days],
            "team": q.get("team", ""), "teams": sorted({f.machine.team for f in finals.values() if f.machine.team}),
            "agent": q.get("agent", ""), "agents": sorted(labels.items(), key=lambda kv: kv[0]),
            "item": q.get("item", ""), "item_choices": sorted(item_names.items()),
            "state": state, "states": [(s, STATE_LABELS[s]) for s in STATES] + [("all", "全部")],
        }
        today = desk.today()
        pending = [_dispute_row(f, i, desk.policy, today) for f in finals.values() for i in f.items
                   if i.dispute is not None and i.dispute.state == OPEN]
        pending.sort(key=lambda r: (r["due"], r["at"]))
        return render(request, "queue.html.j2", rows=rows, filters=filters, mask=mask,
                      open_disputes=len(pending), pending=pending)

    def card(request: Request, call_id: str, *, message: str = "", status: int = 200) -> Response:
        actor = actor_of(request)
        final = desk.final(call_id)
        assert final is not None and actor is not None
        transcripts = desk.folder.transcripts()
        meta = desk.folder.metas.get(call_id)
        audio = f"/audio/{quote(call_id, safe='')}" if meta is not None and Path(meta.path).is_file() else None
        view = report.call_view(final.as_score(), transcripts.get(call_id), meta, audio)
        view["agent_href"] = f"/agents/{quote(final.machine.agent_id or report.UNKNOWN_AGENT, safe='')}"
        today = desk.today()
        agent_view = actor.role == auth.AGENT
        for v, item in zip(view["verdicts"], final.items):
            v["review"] = review_item_view(item)
            v["version"] = item.version
            v["machine_result"] = item.machine.result
            v["machine_label"] = result_label(item.machine.result)
            v["can"] = sorted(available(actor, final.machine, item, policy=desk.policy, today=today))
            v["windows"] = _item_windows(item, final.machine, desk.policy, today) if agent_view else []
            if v["review"] and v["review"]["dispute"]:
                v["review"]["dispute"].update(_due(item.dispute, desk.policy, today))
        events = desk.db.events(call_id)
        names = {i.machine.item_id: i.machine.item_name for i in final.items}
        escalations = frozenset(e.id for e in events if e.action == ESCALATE)
        return render(request, "desk-call.html.j2", status, call=view, review=call_review_view(final),
                      version=final.version, flash=message,
                      can_note=may(actor, NOTE, final.machine, desk.policy),
                      can_mark=may(actor, REVIEWED, final.machine, desk.policy),
                      can_acknowledge=may(actor, ACKNOWLEDGE, final.machine, desk.policy)
                      and final.machine.status == "ok" and not final.acknowledged_current,
                      audit=[event_view(e, names, escalations) for e in reversed(events)])

    def visible_call(request: Request) -> tuple[auth.Actor | None, CallScore | None]:
        actor = actor_of(request)
        score = desk.score(request.path_params["call_id"])
        if actor is None or score is None or not auth.allowed(actor, auth.VIEW_CALL, resource(score)):
            return actor, None
        return actor, score

    def call_page(request: Request) -> Response:
        if actor_of(request) is None:
            return to_login(request)
        desk.sync()
        _, score = visible_call(request)
        if score is None:
            return not_found(request)
        return card(request, score.call_id)

    async def call_action(request: Request) -> Response:
        await run_in_threadpool(desk.sync)
        actor, score = visible_call(request)
        if actor is None:
            return render(request, "message.html.j2", 403, title="请先登录", message="请先登录后再操作。")
        if score is None:
            return not_found(request)
        form = await request.form()
        req = Action(action=str(form.get("action", "")), item_id=str(form.get("item_id") or "") or None,
                     result=str(form.get("result") or "") or None, reason=str(form.get("reason") or ""),
                     version=parse_version(form.get("version")))
        try:
            await run_in_threadpool(act, desk.db, actor, score, req, policy=desk.policy, today=desk.today())
        except Conflict as c:
            message = (f"此项已被{who(c.latest.actor, c.latest.role)}于 {fmt_time(c.latest.at)} 修改，"
                       "您的操作未保存。请刷新页面，看过最新结论后再操作。")
            return await run_in_threadpool(card, request, score.call_id, message=message, status=409)
        except Refused as r:
            return await run_in_threadpool(card, request, score.call_id, message=str(r), status=r.status)
        return RedirectResponse(_call_href(score.call_id, req.item_id), status_code=303)

    def audio(request: Request) -> Response:
        _, score = visible_call(request)
        meta = desk.folder.metas.get(score.call_id) if score is not None else None
        if meta is None or not Path(meta.path).is_file():  # only the recordings of calls in OUT
            return not_found(request)
        return FileResponse(meta.path)

    def agent_page(request: Request) -> Response:
        actor = actor_of(request)
        if actor is None:
            return to_login(request)
        key = request.path_params["agent_id"]
        agent_id = None if key == report.UNKNOWN_AGENT else key
        if not auth.allowed(actor, auth.VIEW_AGENT, auth.Resource(agent_id=agent_id)):
            return not_found(request)
        desk.sync()
        finals = desk.finals()
        views = report.agent_views([f.as_score() for f in finals.values()])
        view = views.get(key)
        if view is None:
            return not_found(request)
        mine = [f for f in finals.values() if (f.machine.agent_id or report.UNKNOWN_AGENT) == key]
        by_id = {f.call_id: f for f in mine}
        for row in view["worst"] + view["failed_calls"]:
            f = by_id[row["call_id"]]
            row["href"] = _call_href(row["call_id"])
            row["review"] = call_review_view(f)
        today = desk.today()
        for row in view["worst"]:
            f = by_id[row["call_id"]]
            row["acknowledged"] = f.acknowledged_current
            row["window"] = _call_window(f, desk.policy, today)
        disputes = [_dispute_row(f, i, desk.policy, today) for f in mine for i in f.items if i.dispute is not None]
        unacknowledged = [{"call_id": r["call_id"], "href": r["href"], "started_at": r["started_at"], "score": r["score"]}
                          for r in view["worst"] if not r["acknowledged"]]
        return render(request, "desk-agent.html.j2", agent=view, disputes=disputes, counts=dispute_counts(mine),
                      unacknowledged=unacknowledged,
                      n_changed=sum(1 for f in mine for i in f.items if i.changed),
                      machine_avg=_fmt_score(_mean([f.machine.score for f in mine if f.machine.status == "ok"])))

    def agents_page(request: Request) -> Response:
        actor = actor_of(request)
        if actor is None:
            return to_login(request)
        if actor.role == auth.AGENT:
            return RedirectResponse(f"/agents/{quote(actor.agent_id or '', safe='')}", status_code=303)
        if not auth.allowed(actor, auth.VIEW_QUEUE):
            return not_found(request)
        desk.sync()
        finals = desk.finals()
        views = report.agent_views([f.as_score() for f in finals.values()])
        rows = []
        for key, v in sorted(views.items(), key=lambda kv: kv[1]["label"]):
            mine = [f for f in finals.values() if (f.machine.agent_id or report.UNKNOWN_AGENT) == key]
            rows.append({**v, "href": f"/agents/{quote(key, safe='')}", "disputes": dispute_counts(mine)})
        return render(request, "agents.html.j2", agents=rows)

    def disputes_page(request: Request) -> Response:
        actor = actor_of(request)
        if actor is None:
            return to_login(request)
        if not auth.allowed(actor, auth.VIEW_QUEUE):
            return not_found(request)
        desk.sync()
        finals = desk.finals()
        today = desk.today()
        rows = [_dispute_row(f, i, desk.policy, today) for f in finals.values() for i in f.items if i.dispute is not None]
        rows.sort(key=lambda r: (r["state"] != OPEN, r["due"] or "", r["at"]))
        return render(request, "disputes.html.j2", disputes=rows)

    def audit_page(request: Request) -> Response:
        actor = actor_of(request)
        if actor is None:
            return to_login(request)
        if not auth.allowed(actor, auth.VIEW_AUDIT):
            return not_found(request)
        call_id = request.query_params.get("call") or None
        events = desk.db.events(call_id)
        names = _item_names(desk.finals().values())
        escalations = frozenset(e.id for e in events if e.action == ESCALATE)
        rows = [event_view(e, names, escalations) for e in reversed(events[-AUDIT_PAGE:])]
        for r in rows:
            r["href"] = _call_href(r["call_id"])
        return render(request, "audit.html.j2", rows=rows, total=len(events), call=call_id or "")

    routes = [
        Route("/", home),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/sign-in", sign_in_link),
        Route("/queue", queue_page),
        Route("/calls/{call_id:path}/act", call_action, methods=["POST"]),
        Route("/calls/{call_id:path}", call_page),
        Route("/audio/{call_id:path}", audio),
        Route("/agents", agents_page),
        Route("/agents/{agent_id:path}", agent_page),
        Route("/disputes", disputes_page),
        Route("/audit", audit_page),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(ActorMiddleware, desk=desk, sessions=sessions),
                                               Middleware(BodyLimit), Middleware(CsrfGuard, secret=secret)])
    app.state.desk = desk
    app.state.links = links
    app.state.throttle = throttle
    return app


# --- helpers ------------------------------------------------------------------------------------


def _nav(actor: auth.Actor | None) -> list[tuple[str, str]]:
    if actor is None:
        return []
    if actor.role == auth.AGENT:
        return [(f"/agents/{quote(actor.agent_id or '', safe='')}", "我的通话")]
    return [("/queue", "复核队列"), ("/disputes", "申诉"), ("/agents", "坐席"), ("/audit", "操作记录")]


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def parse_version(value: object) -> int | None:
    """The page's version field: ASCII digits only (not '²', '-1' or '1e3'); None otherwise, which
    :func:`actions.act` refuses for every action that needs one."""
    text = value if isinstance(value, str) else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def _parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        return None


def _call_href(call_id: str, item_id: str | None = None) -> str:
    return f"/calls/{quote(call_id, safe='')}" + (f"#item-{quote(item_id, safe='')}" if item_id else "")


def _fmt_score(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _agent_labels(finals) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in finals:
        m = f.machine
        if m.agent_id and m.agent_id not in out:
            out[m.agent_id] = f"{mask(m.agent_name)}（{m.agent_id}）" if m.agent_name else m.agent_id
    return out


def _item_names(finals) -> dict[str, str]:
    names: dict[str, str] = {}
    for f in finals:
        for i in f.items:
            names.setdefault(i.machine.item_id, i.machine.item_name)
    return names


def _due(dispute, policy: Policy, today: date) -> dict[str, Any]:
    """The open level's due date, as a line and whether it has passed."""
    due = review_due(dispute, policy)
    if due is None:
        return {"deadline": "", "late": False, "due": ""}
    level = "二审" if dispute.level == 2 else "一审"
    late = today > due
    return {"deadline": f"{level}应于 {due.isoformat()} 前答复" + ("（已超期）" if late else ""), "late": late,
            "due": due.isoformat()}


def _item_windows(item, score: CallScore, policy: Policy, today: date) -> list[dict[str, Any]]:
    """What an agent may still ask about an item, and until when (or since when they may not)."""
    lines = []
    if item.dispute is None and item.result == FAIL:
        until = dispute_until(score, policy)
        lines.append({"closed": today > until,
                      "line": closed_line("申诉期", until) if today > until else open_line("申诉", until)})
    elif item.dispute is not None and item.dispute.level == FIRST and item.dispute.state != OPEN and item.result == FAIL:
        until = escalate_until(item.dispute, policy)
        if until is not None:
            lines.append({"closed": today > until,
                          "line": closed_line("二审申请期", until) if today > until else open_line("申请二审", until)})
    return lines


def _call_window(final: FinalCall, policy: Policy, today: date) -> str:
    """The call's dispute window, for a call with a failed item nobody has disputed yet."""
    if final.machine.status != "ok" or not any(i.result == FAIL and i.dispute is None for i in final.items):
        return ""
    until = dispute_until(final.machine, policy)
    return closed_line("申诉期", until) if today > until else open_line("申诉", until)


def _dispute_row(f: FinalCall, item, policy: Policy, today: date) -> dict[str, Any]:
    d = item.dispute
    res = d.resolution
    row = {
        "call_id": f.call_id, "href": _call_href(f.call_id, item.machine.item_id),
        "item": mask(item.machine.item_name), "state": d.state, "state_label": dispute_label(d), "level": d.level,
        "by": who(d.opened.actor, d.opened.role), "at": fmt_time(d.opened.at), "comment": mask(d.opened.reason),
        "first": f"{who(d.first.actor, d.first.role)}：{mask(d.first.reason)}" if d.first else "",
        "escalation": mask(d.escalation.reason) if d.escalation else "",
        "resolver": who(res.actor, res.role) if res else "", "reply": mask(res.reason) if res else "",
        "result": result_label(item.result), **_due(d, policy, today),
        "handlers": "、".join(ROLE_LABELS.get(r, r) for r in (policy.duties.second_review if d.level == 2
                                                              else policy.duties.first_review)),
    }
    windows = _item_windows(item, f.machine, policy, today)
    row["window"] = windows[0]["line"] if windows else ""
    return row


# --- serving ------------------------------------------------------------------------------------


def make_desk(out: Path, policy: Policy, **kw: Any) -> Desk:
    """The desk over ``out``; InputError, before anything is created in it, when it holds no scores."""
    folder = OutFolder(Path(out))
    return Desk(folder, ReviewDB.open(out), policy, **kw)


def root_link(app: ASGIApp, base_url: str) -> str:
    """A one-time sign-in link as the supervisor ``root`` (created, with no usable password)."""
    desk: Desk = app.state.desk  # type: ignore[attr-defined]
    if desk.db.user(ROOT_USER) is None:
        desk.db.put_user(ROOT_USER, auth.SUPERVISOR, None, auth.unusable_hash())
    token = app.state.links.issue(ROOT_USER)  # type: ignore[attr-defined]
    return f"{base_url}/sign-in?{urlencode({'token': token})}"


def server_config(app: ASGIApp, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, behind_proxy: bool = False):
    """uvicorn's settings for the desk. X-Forwarded-For / -Proto are believed only ``behind_proxy``
    (from a proxy on this machine): otherwise anyone could pick the address the login throttle counts."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off",
                          proxy_headers=behind_proxy, forwarded_allow_ips="127.0.0.1" if behind_proxy else "")


def serve(app: ASGIApp, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          on_ready: Callable[[str], None] | None = None, *, behind_proxy: bool = False) -> None:
    """Run the desk with uvicorn until interrupted; ``on_ready(base_url)`` once it listens."""
    import uvicorn

    server = uvicorn.Server(server_config(app, host, port, behind_proxy=behind_proxy))
    base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"

    if on_ready is not None:
        def announce() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.02)
            if server.started:
                on_ready(base)
        threading.Thread(target=announce, daemon=True).start()
    server.run()
