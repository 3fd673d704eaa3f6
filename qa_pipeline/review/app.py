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
from urllib.parse import parse_qsl, quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa_pipeline.batch.store import RUN_FILE
from qa_pipeline.calibration.nightly import trust_in
from qa_pipeline.final_verdicts import (ACCEPT, ACKNOWLEDGE, CONFIRM, ESCALATE, FIRST, NOTE, OPEN, OVERRIDE,
                                        REJECT, REVIEWED, SECOND, FinalCall, final_call, final_calls, untrusted)
from qa_pipeline.output import report
from qa_pipeline.output.review_views import (ACTION_LABELS, ROLE_LABELS, call_review_view, dispute_counts, dispute_label,
                                             event_view, fmt_time, mask, result_label, review_item_view, who)
from qa_pipeline.output.tables import TRANSCRIPT_CALLS_FILE, TRANSCRIPTS_FILE
from qa_pipeline.records import FAIL, CallScore
from qa_pipeline.review import auth, blind
from qa_pipeline.review.actions import Refused, Request as Action, act, available, duty_rules, may, resource
from qa_pipeline.review.data import OutFolder
from qa_pipeline.review.db import Conflict, ReviewDB, signing_key
from qa_pipeline.review.deadlines import closed_line, dispute_until, escalate_until, open_line, review_due
from qa_pipeline.review.guard import LOCAL_NAMES, BodyLimit, CsrfGuard, HostGuard
from qa_pipeline.review.policy import Policy
from qa_pipeline.review.queue import (KIND_LABELS, STATE_LABELS, STATES, TODO, QueueFilter, build_queue, day_of,
                                      entry_of, next_entry)
from qa_pipeline.review.search import SearchIndex, highlight, signature_of
from qa_pipeline.review.sheets import review_sheets, to_csv, to_xlsx
from qa_pipeline.review.workload import workloads

log = logging.getLogger("qa_pipeline")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8377
ROOT_USER = "root"
AUDIT_PAGE = 100
SEARCH_WAIT_S = 3.0  # how long a search waits for an index being built before it says so


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
        self.search_index = SearchIndex(folder.out)
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

    def days(self) -> dict[str, str]:
        """call_id → the day (YYYY-MM-DD) the call counts for."""
        return {f.call_id: day_of(f).isoformat() for f in self.finals().values()}

    def index_search(self) -> threading.Thread | None:
        """Start (re)building the search index when the transcripts changed; the thread, or None when current."""
        signature = signature_of(self.folder.out, (TRANSCRIPTS_FILE, TRANSCRIPT_CALLS_FILE, RUN_FILE))
        return self.search_index.ensure(signature, lambda: (self.folder.transcripts(), self.days()))

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


def create_app(desk: Desk, *, links: auth.OneTimeLinks | None = None, throttle: auth.LoginThrottle | None = None,
               hosts: tuple[str, ...] | frozenset[str] = LOCAL_NAMES) -> ASGIApp:
    """The desk as an ASGI app: Host allowlist (``hosts``, see :func:`guard.desk_hosts`) → actor →
    body cap → origin and form token → the views."""
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
            nav=_nav(actor, desk.policy), path=request.url.path, **ctx)
        return HTMLResponse(page, status_code=status)

    def not_found(request: Request) -> HTMLResponse:
        return render(request, "message.html.j2", 404, title="找不到页面", message="没有这个页面，或您无权查看。")

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)

    def allowed_actor(request: Request, right: str) -> auth.Actor | Response:
        """The signed-in person if they hold `right`; else where to send them (sign-in, or a 404 that
        does not say the page exists)."""
        actor = actor_of(request)
        if actor is None:
            return to_login(request)
        if not auth.allowed(actor, right):
            return not_found(request)
        return actor

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

    def queue_state(request: Request) -> tuple[dict[str, FinalCall], list, QueueFilter, list[date]]:
        desk.sync()
        finals = desk.finals()
        entries = build_queue(finals, desk.policy)
        days = sorted({e.day for e in entries} | {day_of(f) for f in finals.values()}, reverse=True)
        return finals, entries, QueueFilter.from_params(request.query_params, days[0] if days else None), days

    def queue_page(request: Request) -> Response:
        actor = allowed_actor(request, auth.VIEW_QUEUE)
        if isinstance(actor, Response):
            return actor
        finals, entries, chosen_filter, days = queue_state(request)
        chosen = chosen_filter.apply(entries, finals)
        context = urlencode(chosen_filter.params())
        labels = _agent_labels(finals.values())
        item_names = _item_names(finals.values())
        rows = []
        for e in chosen:
            f = finals[e.call_id]
            rows.append({
                "call_id": e.call_id, "href": _call_href(e.call_id, e.item_id, context), "day": e.day.isoformat(),
                "agent": labels.get(e.agent_id or "", "未知坐席"), "team": mask(e.team) or "—",
                "kind": e.kind, "kind_label": KIND_LABELS[e.kind],
                "item": mask(item_names.get(e.item_id, e.item_id)) if e.item_id else "",
                "machine_score": _fmt_score(f.machine.score), "final_score": _fmt_score(f.score),
                "final_passed": f.passed, "state": e.state, "state_label": STATE_LABELS[e.state],
            })
        q = request.query_params
        filters = {
            "day": chosen_filter.day.isoformat() if chosen_filter.day else "all", "days": [d.isoformat() for d in days],
            "team": q.get("team", ""), "teams": sorted({f.machine.team for f in finals.values() if f.machine.team}),
            "agent": q.get("agent", ""), "agents": sorted(labels.items(), key=lambda kv: kv[0]),
            "item": q.get("item", ""), "item_choices": sorted(item_names.items()),
            "state": chosen_filter.state or "all", "states": [(s, STATE_LABELS[s]) for s in STATES] + [("all", "全部")],
        }
        today = desk.today()
        pending = [_dispute_row(f, i, desk.policy, today) for f in finals.values() for i in f.items
                   if i.dispute is not None and i.dispute.state == OPEN]
        pending.sort(key=lambda r: (r["due"], r["at"]))
        first = next((r for r in rows if r["state"] == TODO), None)
        return render(request, "queue.html.j2", rows=rows, filters=filters, mask=mask, open_disputes=len(pending),
                      pending=pending, start_href=first["href"] if first else "", flash=request.query_params.get("done") and "队列中已没有待复核的条目。" or "",
                      can_export=auth.allowed(actor, auth.EXPORT))

    def next_in_queue(request: Request) -> Response:
        """The next open entry of the queue (its filters in the query string) after the entry
        ``call`` / ``entry``; back to the queue, saying it is done, when there is none."""
        actor = allowed_actor(request, auth.VIEW_QUEUE)
        if isinstance(actor, Response):
            return actor
        finals, entries, chosen_filter, _ = queue_state(request)
        scope = chosen_filter.apply(entries, finals, state=None)
        call_id = request.query_params.get("call", "")
        item_id = request.query_params.get("entry") or None
        context = urlencode(chosen_filter.params())
        found = next_entry(scope, call_id, item_id)
        if found is None:
            return RedirectResponse(f"/queue?{urlencode({**chosen_filter.params(), 'done': '1'})}", status_code=303)
        return RedirectResponse(_call_href(found.call_id, found.item_id, context), status_code=303)

    def card(request: Request, call_id: str, *, message: str = "", status: int = 200,
             typed: dict[str, str] | None = None, context: tuple[str, str] | None = None) -> Response:
        """The call card; ``typed``: what a refused form said (shown again in it); ``context``: the
        queue's filters and entry the card was opened from (for next-in-queue)."""
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
        q, entry = context if context is not None else _queue_context(request.query_params)
        reader = auth.allowed(actor, auth.VIEW_QUEUE)
        next_href = "/queue/next?" + urlencode({**dict(parse_qsl(q)), "call": call_id, "entry": entry or ""}) \
            if reader else ""
        blind_view = [_blind_view(r, actor, names) for r in blind.reviews(desk.db, call_id)] if reader else []
        return render(request, "desk-call.html.j2", status, call=view, review=call_review_view(final),
                      version=final.version, flash=message, typed=typed or NOTHING_TYPED, queue_q=q, queue_entry=entry or "",
                      next_href=next_href, blind=[b for b in blind_view if b["revealed"]],
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
        actor = actor_of(request)
        if actor is None:
            return to_login(request)
        desk.sync()
        _, score = visible_call(request)
        if score is None:
            return not_found(request)
        waiting = next((r for r in blind.reviews(desk.db, score.call_id) if r.waiting_for(actor.name)), None)
        if waiting is not None:  # the card would show verdicts: hand in the blind review first
            return RedirectResponse(f"/blind/{waiting.id}", status_code=303)
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
        context = _queue_context(form)
        typed = {"action": req.action, "item_id": req.item_id or "", "reason": req.reason or "", "result": req.result or ""}
        try:
            await run_in_threadpool(act, desk.db, actor, score, req, policy=desk.policy, today=desk.today())
        except Conflict as c:
            message = (f"此项已被{who(c.latest.actor, c.latest.role)}于 {fmt_time(c.latest.at)} 修改，"
                       "您的操作未保存（您填写的内容仍在下方）。请看过最新结论后再操作。")
            return await run_in_threadpool(card, request, score.call_id, message=message, status=409, typed=typed,
                                           context=context)
        except Refused as r:
            return await run_in_threadpool(card, request, score.call_id, message=str(r), status=r.status, typed=typed,
                                           context=context)
        if req.action in (CONFIRM, OVERRIDE, REVIEWED, ACCEPT, REJECT) and form.get("go") == "next" \
                and auth.allowed(actor, auth.VIEW_QUEUE):
            return RedirectResponse(await run_in_threadpool(_after_decision, score.call_id, req.item_id, context),
                                    status_code=303)
        return RedirectResponse(_call_href(score.call_id, req.item_id, context[0], context[1]), status_code=303)

    def _after_decision(call_id: str, item_id: str | None, context: tuple[str, str]) -> str:
        """Where a decision made from the queue leads: the next open entry once the one the card was
        opened for is done, else the next undecided item of this call."""
        q, entry = context
        finals = desk.finals()
        entries = build_queue(finals, desk.policy)
        days = sorted({e.day for e in entries}, reverse=True)
        chosen = QueueFilter.from_params(dict(parse_qsl(q)), days[0] if days else None)
        scope = chosen.apply(entries, finals, state=None)
        here = entry_of(scope, call_id, entry or None) or entry_of(scope, call_id, item_id)
        if here is not None and here.state == TODO:
            final = finals.get(call_id)
            todo = [e.item_id for e in scope if e.call_id == call_id and e.item_id and e.state == TODO]
            undecided = todo or ([i.machine.item_id for i in final.items if i.decision is None] if final else [])
            return _call_href(call_id, undecided[0] if undecided else None, q, entry)
        found = next_entry(scope, call_id, here.item_id if here is not None else None)
        if found is None:
            return f"/queue?{urlencode({**chosen.params(), 'done': '1'})}"
        return _call_href(found.call_id, found.item_id, urlencode(chosen.params()))

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
            if not (actor.role == auth.AGENT or any(u.agent_id == key for u in desk.db.users())):
                return not_found(request)
            view = _empty_agent_view(key)  # an agent with no calls (yet): their page, empty
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
        actor = allowed_actor(request, auth.VIEW_QUEUE)
        if isinstance(actor, Response):
            return actor
        desk.sync()
        finals = desk.finals()
        today = desk.today()
        q = request.query_params
        person, stage = q.get("person") or "", q.get("stage") or ""
        since, until = _iso_day(q.get("since")), _iso_day(q.get("until"))
        found = [(f, i) for f in finals.values() for i in f.items if i.dispute is not None]
        people = sorted({n for _, i in found for n in _dispute_people(i.dispute)})
        rows = []
        for f, i in found:
            d = i.dispute
            day = d.opened.at[:10]
            if person and person not in _dispute_people(d):
                continue
            if stage and _dispute_stage(d) != stage:
                continue
            if (since and day < since) or (until and day > until):
                continue
            rows.append(_dispute_row(f, i, desk.policy, today))
        rows.sort(key=lambda r: (r["state"] != OPEN, r["due"] or "", r["at"]))
        filters = {"person": person, "people": [(n, mask(n)) for n in people], "stage": stage,
                   "stages": list(DISPUTE_STAGES.items()), "since": since or "", "until": until or ""}
        return render(request, "disputes.html.j2", disputes=rows, filters=filters, total=len(found))

    def audit_page(request: Request) -> Response:
        actor = allowed_actor(request, auth.VIEW_AUDIT)
        if isinstance(actor, Response):
            return actor
        q = request.query_params
        call_id = q.get("call") or None
        person = q.get("person") or None
        action = q.get("action") or ""
        machine = q.get("machine") == "1" or action == "machine"
        since, until = _iso_day(q.get("since")), _iso_day(q.get("until"))
        before = parse_version(q.get("before"))
        rows_found, more = desk.db.audit_page(
            people_only=not machine, actor=person, actions=(action,) if action in ACTION_LABELS else (),
            call_id=call_id, since=since, until=until, before=before, limit=AUDIT_PAGE)
        names = _item_names(desk.finals().values())
        escalations = frozenset(r[0] for r in desk.db.conn.execute("SELECT id FROM events WHERE action = 'escalate'"))
        rows = [event_view(e, names, escalations) for e in rows_found]
        for r in rows:
            r["href"] = _call_href(r["call_id"])
        kept = {k: v for k, v in (("call", call_id), ("person", person), ("action", action),
                                  ("machine", "1" if machine and action != "machine" else ""),
                                  ("since", since), ("until", until)) if v}
        older = f"/audit?{urlencode({**kept, 'before': rows_found[-1].id})}" if more and rows_found else ""
        newest = f"/audit?{urlencode(kept)}" if before is not None else ""
        filters = {"call": call_id or "", "person": person or "", "people": [(n, mask(n)) for n in desk.db.actors()],
                   "action": action, "actions": list(ACTION_LABELS.items()), "machine": machine,
                   "since": since or "", "until": until or ""}
        exports = urlencode({"day": since}) if since and since == until else ""
        return render(request, "audit.html.j2", rows=rows, filters=filters, older=older, newest=newest,
                      can_export=auth.allowed(actor, auth.EXPORT), export_q=exports)

    def search_page(request: Request) -> Response:
        actor = allowed_actor(request, auth.SEARCH)
        if isinstance(actor, Response):
            return actor
        desk.sync()
        q = request.query_params
        query = (q.get("q") or "").strip()
        day = _iso_day(q.get("day"))
        page = parse_version(q.get("page")) or 1
        days = sorted({d for d in desk.days().values()}, reverse=True)
        building = desk.index_search()
        if building is not None:
            building.join(SEARCH_WAIT_S)
        ready = building is None or not building.is_alive()
        result, rows = None, []
        if query and ready and desk.search_index.error is None:
            result = desk.search_index.search(query, page=page, day=day)
            finals = desk.finals()
            labels = _agent_labels(finals.values())
            for h in result.hits:
                f = finals.get(h.call_id)
                rows.append({"call_id": h.call_id, "href": f"/calls/{quote(h.call_id, safe='')}#t={h.start:.2f}",
                             "t": f"{h.start:.2f}", "clock": report.fmt_clock(h.start), "day": h.day,
                             "speaker": "坐席" if h.speaker == "agent" else "客户",
                             "agent": labels.get(f.machine.agent_id or "", "未知坐席") if f else "",
                             "pieces": highlight(h.text, result.terms)})
        pages = {}
        if result is not None and result.pages > 1:
            base = {k: v for k, v in (("q", query), ("day", day)) if v}
            if result.page > 1:
                pages["prev"] = f"/search?{urlencode({**base, 'page': result.page - 1})}"
            if result.page < result.pages:
                pages["next"] = f"/search?{urlencode({**base, 'page': result.page + 1})}"
        return render(request, "search.html.j2", query=query, day=day or "", days=days, result=result, rows=rows,
                      pages=pages, building=not ready, error=desk.search_index.error)

    def export(request: Request) -> Response:
        actor = actor_of(request)
        if actor is None:
            return to_login(request)
        name = request.path_params["name"]
        if not auth.allowed(actor, auth.EXPORT) or name not in EXPORTS:
            return not_found(request)
        desk.sync()
        day = _iso_day(request.query_params.get("day"))
        finals = desk.finals()
        calls, decisions = review_sheets(finals, desk.db.events(), desk.days(), _item_names(finals.values()), day)
        stem = f"qa-review-{day or 'all'}"
        if name == "review.xlsx":
            body, kind, filename = to_xlsx((calls, decisions)), XLSX, f"{stem}.xlsx"
        else:
            sheet = calls if name == "calls.csv" else decisions
            body, kind, filename = to_csv(sheet), "text/csv; charset=utf-8", f"{stem}-{name}"
        return Response(body, media_type=kind, headers={"content-disposition": f'attachment; filename="{filename}"'})

    def workload_page(request: Request) -> Response:
        actor = allowed_actor(request, auth.VIEW_WORKLOAD)
        if isinstance(actor, Response):
            return actor
        desk.sync()
        day = _iso_day(request.query_params.get("day")) or desk.today().isoformat()
        reviewers = {u.name: u.role for u in desk.db.users() if u.role in desk.policy.duties.review and not u.disabled}
        pending = {}
        for r in blind.reviews(desk.db):
            for n in (r.first, r.second):
                if r.waiting_for(n):
                    pending[n] = pending.get(n, 0) + 1
        rows = [{"name": mask(w.name), "role": ROLE_LABELS.get(w.role, w.role), "decided": w.decided,
                 "overrides": w.overrides, "rate": report.fmt_rate(w.override_rate), "reviewed": w.reviewed,
                 "answered": w.answered, "disputed": w.disputed, "lost": w.lost, "overturned": w.overturned,
                 "blind": pending.get(w.name, 0), "audit": f"/audit?{urlencode({'person': w.name, 'since': day, 'until': day})}"}
                for w in workloads(desk.db.events(), desk.finals(), reviewers, date.fromisoformat(day))]
        return render(request, "workload.html.j2", rows=rows, day=day)

    def blind_page(request: Request) -> Response:
        actor = actor_of(request)
        if actor is None:
            return to_login(request)
        rules = duty_rules(desk.policy)
        may_assign = auth.allowed(actor, auth.ASSIGN_BLIND)
        if not (may_assign or auth.allowed(actor, auth.BLIND_REVIEW, rules=rules)):
            return not_found(request)
        desk.sync()
        return blind_list(request, actor, may_assign)

    def blind_list(request: Request, actor: auth.Actor, may_assign: bool, *, message: str = "", status: int = 200,
                   done: str = "") -> Response:
        finals = desk.finals()
        names = _item_names(finals.values())
        found = [r for r in blind.reviews(desk.db) if may_assign or r.involves(actor.name)]
        found.sort(key=lambda r: (not r.waiting_for(actor.name), r.revealed, -r.id))
        rows = []
        for r in found:
            f = finals.get(r.call_id)
            view = _blind_view(r, actor, {i.machine.item_id: i.machine.item_name for i in f.items} if f else {})
            view["href"] = f"/blind/{r.id}"
            view["agreed"] = sum(1 for row in view["rows"] if row["agree"]) if r.revealed else None
            view["n_items"] = len(view["rows"])
            rows.append(view)
        reviewers = sorted(u.name for u in desk.db.users() if u.role in desk.policy.duties.review and not u.disabled)
        return render(request, "blind.html.j2", status, rows=rows, may_assign=may_assign, flash=message,
                      reviewers=[(n, mask(n)) for n in reviewers], days=sorted(set(desk.days().values()), reverse=True),
                      done=done, names=names)

    async def blind_assign(request: Request) -> Response:
        actor = actor_of(request)
        if actor is None:
            return render(request, "message.html.j2", 403, title="请先登录", message="请先登录后再操作。")
        if not auth.allowed(actor, auth.ASSIGN_BLIND):
            return not_found(request)
        form = await request.form()
        first, second = str(form.get("first") or ""), str(form.get("second") or "")
        day = _iso_day(str(form.get("day") or "")) or ""
        n = parse_version(form.get("n")) or 0

        def assign() -> Response:
            desk.sync()
            users = {u.name: u for u in desk.db.users()}
            for name in (first, second):
                u = users.get(name)
                if u is None or u.disabled or u.role not in desk.policy.duties.review:
                    return blind_list(request, actor, True, message="请选择两位负责复核的质检员", status=400)
            calls = blind.candidates(desk.finals().values(), desk.days(), day, first, second, blind.reviews(desk.db))
            try:
                ids = blind.assign(desk.db, by=actor.name, first=first, second=second, calls=calls, n=n)
            except blind.BlindError as e:
                return blind_list(request, actor, True, message=str(e), status=e.status)
            return RedirectResponse(f"/blind?{urlencode({'made': len(ids)})}", status_code=303)

        return await run_in_threadpool(assign)

    def blind_card(request: Request, *, message: str = "", status: int = 200, typed: dict | None = None) -> Response:
        actor = actor_of(request)
        if actor is None:
            return to_login(request)
        rid = parse_version(request.path_params["review_id"])
        r = blind.review(desk.db, rid) if rid is not None else None
        may_assign = auth.allowed(actor, auth.ASSIGN_BLIND)
        if r is None or not (r.involves(actor.name) or (may_assign and r.revealed) or
                             (auth.allowed(actor, auth.VIEW_QUEUE) and r.revealed)):
            return not_found(request)
        final = desk.final(r.call_id)
        if final is None:
            return not_found(request)
        desk.sync()
        transcripts = desk.folder.transcripts()
        meta = desk.folder.metas.get(r.call_id)
        audio = f"/audio/{quote(r.call_id, safe='')}" if meta is not None and Path(meta.path).is_file() else None
        view = report.call_view(final.machine, transcripts.get(r.call_id), meta, audio)
        names = {i.machine.item_id: i.machine.item_name for i in final.items}
        own = r.of(actor.name)
        items = [{"item_id": i, "name": mask(n), "mine": result_label(own[i].result) if i in own else "",
                  "mine_reason": mask(own[i].reason) if i in own else ""} for i, n in names.items()]
        return render(request, "blind-call.html.j2", status, call=view, review=_blind_view(r, actor, names),
                      items=items, waiting=r.waiting_for(actor.name), flash=message, typed=typed or {},
                      rid=r.id)

    async def blind_hand_in(request: Request) -> Response:
        actor = actor_of(request)
        if actor is None:
            return render(request, "message.html.j2", 403, title="请先登录", message="请先登录后再操作。")
        rid = parse_version(request.path_params["review_id"])
        if rid is None or not auth.allowed(actor, auth.BLIND_REVIEW, rules=duty_rules(desk.policy)):
            return not_found(request)
        form = await request.form()

        def hand_in() -> Response:
            r = blind.review(desk.db, rid)
            final = desk.final(r.call_id) if r is not None else None
            if r is None or final is None or not r.involves(actor.name):
                return not_found(request)
            item_ids = [i.machine.item_id for i in final.items]
            verdicts = {i: (str(form.get(f"result-{i}") or ""), str(form.get(f"reason-{i}") or "")) for i in item_ids}
            try:
                blind.hand_in(desk.db, rid, actor.name, verdicts, item_ids)
            except blind.BlindError as e:
                return blind_card(request, message=str(e), status=e.status,
                                  typed={k: {"result": v[0], "reason": v[1]} for k, v in verdicts.items()})
            return RedirectResponse(f"/blind/{rid}", status_code=303)

        return await run_in_threadpool(hand_in)

    routes = [
        Route("/", home),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/sign-in", sign_in_link),
        Route("/queue", queue_page),
        Route("/queue/next", next_in_queue),
        Route("/search", search_page),
        Route("/export/{name}", export),
        Route("/workload", workload_page),
        Route("/blind", blind_page),
        Route("/blind/assign", blind_assign, methods=["POST"]),
        Route("/blind/{review_id}", blind_card),
        Route("/blind/{review_id}/hand-in", blind_hand_in, methods=["POST"]),
        Route("/calls/{call_id:path}/act", call_action, methods=["POST"]),
        Route("/calls/{call_id:path}", call_page),
        Route("/audio/{call_id:path}", audio),
        Route("/agents", agents_page),
        Route("/agents/{agent_id:path}", agent_page),
        Route("/disputes", disputes_page),
        Route("/audit", audit_page),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(HostGuard, hosts=hosts),
                                               Middleware(ActorMiddleware, desk=desk, sessions=sessions),
                                               Middleware(BodyLimit), Middleware(CsrfGuard, secret=secret)])
    app.state.desk = desk
    app.state.links = links
    app.state.throttle = throttle
    return app


# --- helpers ------------------------------------------------------------------------------------


def _nav(actor: auth.Actor | None, policy: Policy) -> list[tuple[str, str]]:
    if actor is None:
        return []
    if actor.role == auth.AGENT:
        return [(f"/agents/{quote(actor.agent_id or '', safe='')}", "我的通话")]
    nav = [("/queue", "复核队列"), ("/search", "检索"), ("/disputes", "申诉"), ("/agents", "坐席"), ("/audit", "操作记录")]
    rules = duty_rules(policy)
    if auth.allowed(actor, auth.BLIND_REVIEW, rules=rules) or auth.allowed(actor, auth.ASSIGN_BLIND):
        nav.append(("/blind", "双盲复核"))
    if auth.allowed(actor, auth.VIEW_WORKLOAD):
        nav.append(("/workload", "工作量"))
    return nav


QUEUE_KEYS = ("day", "team", "agent", "item", "state")


def _queue_context(params) -> tuple[str, str]:
    """The queue filters (``q``, a query string of known keys only) and entry (``entry``: an item id,
    or empty for a call's entry) a card was opened from, from a query string or a form."""
    raw = params.get("q") or ""
    q = urlencode([(k, v) for k, v in parse_qsl(str(raw))[:len(QUEUE_KEYS)] if k in QUEUE_KEYS])
    return q, str(params.get("entry") or "")[:200]


def _blind_view(r: blind.BlindReview, actor: auth.Actor, names: dict[str, str]) -> dict[str, Any]:
    """A blind review as ``actor`` may see it: both verdicts once both handed in, else their own only."""
    mine, theirs = r.of(r.first), r.of(r.second)
    rows = []
    for item_id, name in names.items():
        a, b = mine.get(item_id), theirs.get(item_id)
        rows.append({"item_id": item_id, "name": mask(name),
                     "first": result_label(a.result) if a and r.revealed else "",
                     "first_reason": mask(a.reason) if a and r.revealed else "",
                     "second": result_label(b.result) if b and r.revealed else "",
                     "second_reason": mask(b.reason) if b and r.revealed else "",
                     "agree": bool(a and b and a.result == b.result)})
    return {"id": r.id, "call_id": r.call_id, "first": mask(r.first), "second": mask(r.second),
            "revealed": r.revealed, "rows": rows, "assigned_at": fmt_time(r.assigned_at),
            "assigned_by": mask(r.assigned_by),
            "status": "已揭晓" if r.revealed else ("待您提交" if r.waiting_for(actor.name) else
                                                 "等待对方提交" if r.involves(actor.name) else
                                                 f"已提交：{'、'.join(mask(n) for n in (r.first, r.second) if r.handed_in(n)) or '无'}")}


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def parse_version(value: object) -> int | None:
    """The page's version field: ASCII digits only (not '²', '-1' or '1e3'); None otherwise, which
    :func:`actions.act` refuses for every action that needs one."""
    text = value if isinstance(value, str) else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


NOTHING_TYPED = {"action": "", "item_id": "", "reason": "", "result": ""}
EXPORTS = ("calls.csv", "decisions.csv", "review.xlsx")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DISPUTE_STAGES = {"open1": "待一审", "open2": "待二审", "accepted": "已采纳", "rejected": "已驳回"}


def _dispute_stage(d) -> str:
    if d.state == OPEN:
        return "open2" if d.level == SECOND else "open1"
    return "accepted" if d.resolution is not None and d.resolution.action == ACCEPT else "rejected"


def _dispute_people(d) -> set[str]:
    """Everyone a dispute involves: the agent, the disputed decision's maker, who answered it."""
    found = {d.opened.actor}
    for e in (d.first, d.resolution, d.escalation):
        if e is not None:
            found.add(e.actor)
    if d.disputed is not None:
        found.add(d.disputed.actor)
    return found


def _iso_day(value: str | None) -> str | None:
    day = _parse_day(value)
    return day.isoformat() if day else None


def _empty_agent_view(key: str) -> dict[str, Any]:
    return {"key": key, "label": mask(key), "team": "—", "team_label": "全体", "n_calls": 0, "n_ok": 0, "n_failed": 0,
            "avg_score": "—", "pass_rate": "—", "n_review": 0, "item_rates": [], "trend": None, "worst": [],
            "failed_calls": []}


def _parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        return None


def _call_href(call_id: str, item_id: str | None = None, q: str = "", entry: str | None = None) -> str:
    """A call card's address; with ``q`` (the queue's filters) it remembers the queue entry it is for."""
    params = {"q": q, "entry": entry if entry is not None else (item_id or "")} if q else {}
    return (f"/calls/{quote(call_id, safe='')}" + (f"?{urlencode(params)}" if params else "")
            + (f"#item-{quote(item_id, safe='')}" if item_id else ""))


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
