"""What every request to the desk passes before a view sees it: a Host it answers to, a cap on its
body, and for every request that can change something (any method but GET, HEAD, OPTIONS) the
origin check and the form token.

Why our own: asgi-csrf's token is a signed random value checked against its own cookie, so any
page of the same host on another port (cookies ignore ports) could set that cookie and post its
own valid pair; it has no way to bind the token to the login session, and it parsed multipart
bodies with a python-multipart API that had moved (every multipart POST answered 500). Here:

- :class:`HostGuard`: the request's ``Host`` must be one of the desk's names (the address it
  listens on, localhost's names when that is a loopback address, and the names given with
  ``qa review --allow-host``); anything else is 400. Without it a page of evil.example whose name
  is made to resolve to 127.0.0.1 (DNS rebinding) is, to the browser, the same origin as the desk
  it reaches: it reads every answer and passes the origin check (its Origin is its own Host), so
  it could try passwords from inside the victim's machine and read what it signs into.
- :class:`BodyLimit`: a body over ``max_bytes`` is refused with 413 before it is read (by its
  Content-Length), or as soon as a body sent without one passes the cap; anonymous requests too.
- :class:`CsrfGuard`: a browser's ``Sec-Fetch-Site`` must be ``same-origin`` (or ``none``) and its
  ``Origin`` the desk's own; a page on 127.0.0.1:<another port> is ``same-site``, another origin,
  and is refused. Then the form's ``csrftoken`` must be the HMAC of the request's session under
  the desk's key (:func:`auth.form_token`; ``scope["csrf_binding"]`` names the session, or the
  anonymous visitor's cookie on the sign-in page). A client that sends neither header (curl) still
  needs the session's token. Refusals are 403 with one Chinese line.
"""

from __future__ import annotations

import hmac
import socket
from collections.abc import Iterable
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa_pipeline.review import auth

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY = 64 * 1024  # a form: a reason of 2,000 characters is under 20 KB percent-encoded
TOKEN_FIELD = "csrftoken"


async def plain_page(send: Send, status: int, text: str) -> None:
    body = f"<!doctype html><meta charset='utf-8'><title>{status}</title><p>{text}</p>".encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


LOCAL_NAMES = ("127.0.0.1", "localhost", "::1")
LOOPBACK = frozenset(LOCAL_NAMES)
ALL_INTERFACES = frozenset({"0.0.0.0", "::", ""})


def host_name(host: str | None) -> str | None:
    """The name in a Host header, lower-cased, without its port, brackets or trailing dot;
    None when there is none."""
    if not host:
        return None
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8377
        end = host.find("]")
        name = host[1:end] if end > 0 else None
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host  # a bare IPv6 address keeps its colons
    return name.rstrip(".") if name else None


def desk_hosts(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The names the desk answers to: the address it listens on (localhost's names with a
    loopback address; this machine's names with every interface) and ``extra``."""
    names = {host_name(bound) or bound}
    if names & LOOPBACK:
        names |= LOOPBACK
    if names & ALL_INTERFACES:
        names = set(LOOPBACK) | {socket.gethostname().lower(), socket.getfqdn().lower()}
    names |= {n for n in (host_name(h) for h in extra) if n}
    return frozenset(names)


class HostGuard:
    """Refuses (400) a request whose Host header is not one of ``hosts`` (see :func:`desk_hosts`)."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str] = LOCAL_NAMES) -> None:
        self.app = app
        self.hosts = frozenset(n for n in (host_name(h) for h in hosts) if n)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and host_name(_header(scope, b"host")) not in self.hosts:
            await plain_page(send, 400, "请求被拒绝：本系统不以这个主机名提供服务（如需通过其他名称访问，"
                                        "请用 qa review --allow-host 名称 启动）。")
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """Reads a request's body whole, up to ``max_bytes``, and hands the app a replay of it; 413
    for anything longer (by its Content-Length before a byte is read)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and (not length.isascii() or not length.isdigit() or int(length) > self.max_bytes):
            await self._too_large(send)
            return
        if length is None and _header(scope, b"transfer-encoding") is None:
            await self.app(scope, receive, send)  # no body
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks)), send)

    async def _too_large(self, send: Send) -> None:
        await plain_page(send, 413, f"请求过大（上限 {self.max_bytes // 1024} KB），未处理。")


def own_origin(scope: Scope) -> str | None:
    host = _header(scope, b"host")
    return f"{scope.get('scheme', 'http')}://{host}".lower() if host else None


def origin_refusal(scope: Scope) -> str | None:
    """Why a state-changing request does not come from the desk's own pages; None when it does."""
    site = _header(scope, b"sec-fetch-site")
    if site is not None and site.lower() not in ("same-origin", "none"):
        return f"Sec-Fetch-Site: {site}"
    origin = _header(scope, b"origin")
    if origin is not None and origin.lower() != own_origin(scope):
        return f"Origin: {origin}"
    return None


async def _form_token(scope: Scope, receive: Receive) -> str | None:
    kind = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        message = await receive()  # BodyLimit has made it one message
        fields = parse_qsl(message.get("body", b"").decode("utf-8", "replace"), keep_blank_values=True)
        return next((v for k, v in fields if k == TOKEN_FIELD), None)
    if kind == "multipart/form-data":
        request = Request(scope, receive)
        try:
            async with request.form(max_files=10, max_fields=100) as form:
                value = form.get(TOKEN_FIELD)
                return value if isinstance(value, str) else None
        except Exception:  # noqa: BLE001 - a body python-multipart cannot parse has no token
            return None
    return None


class CsrfGuard:
    """Origin check and session-bound form token on every state-changing request; gives the pages
    ``scope["csrftoken"]()``, the token of the request's session."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        self.app = app
        self.secret = secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        expected = auth.form_token(self.secret, scope["csrf_binding"])
        scope = {**scope, "csrftoken": lambda: expected}
        if scope["method"] not in SAFE_METHODS:
            if origin_refusal(scope) is not None:
                await plain_page(send, 403, "请求被拒绝：来源不是本系统的页面（跨站请求）。")
                return
            body = b"".join([m.get("body", b"") async for m in _messages(receive)])
            token = await _form_token(scope, _replay(body))
            if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
                await plain_page(send, 403, "请求被拒绝：表单已过期或来源不明（CSRF 校验失败）。请返回页面刷新后再试。")
                return
            receive = _replay(body)
        await self.app(scope, receive, send)


async def _messages(receive: Receive):
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        yield message
        if not message.get("more_body", False):
            return
