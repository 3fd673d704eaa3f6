"""Who may do what on the review desk: passwords, login cookies, the one permission check.

- Passwords are kept as argon2id hashes (argon2-cffi), never as text.
- A login is a cookie holding the user's name, their session generation and a random session id,
  signed with itsdangerous (and timed) under the key in OUT/review.key (0600, never in the
  database): a forged or edited cookie is no login. The cookie is HttpOnly and SameSite=Lax; the
  actor is resolved from it in one place (the app's middleware) and re-read from the database on
  every request, so a changed role applies at once, and a cookie whose generation is not the
  user's current one is no login: signing out, a new password and ``qa users disable`` move the
  generation on and end every session of that user at once.
- The form token (CSRF) is an HMAC of the session id under the same key (:func:`form_token`):
  a token is good for one session only, and a page of another origin can neither read nor set it.
- :func:`allowed` is the only permission check: actor × action × resource.
- :class:`LoginThrottle` refuses logins for a name or an address after repeated wrong passwords.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from qa_pipeline.choices import Role
from qa_pipeline.output.review_views import ROLE_LABELS

INSPECTOR = Role.inspector.value
SUPERVISOR = Role.supervisor.value
AGENT = Role.agent.value
MANAGER = Role.manager.value

SESSION_COOKIE = "qa_session"
SESSION_MAX_AGE_S = 12 * 3600

ROLES = (INSPECTOR, SUPERVISOR, AGENT, MANAGER)

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Checked for unknown names, so that they take as long as a real check."""
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("the password is empty")
    return _hasher.hash(password)


def unusable_hash() -> str:
    """A hash no password matches (accounts that sign in only by a one-time link)."""
    return _hasher.hash(secrets.token_urlsafe(32))


def check_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Actor:
    """The signed-in user of a request."""

    name: str
    role: str
    agent_id: str | None = None

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)


# --- the permission check -----------------------------------------------------------------------

VIEW_QUEUE = "view-queue"
VIEW_CALL = "view-call"  # the call card, its audio and its audit rows
VIEW_AGENT = "view-agent"
VIEW_AUDIT = "view-audit"  # the whole audit trail
DECIDE = "decide"  # confirm or override an item
NOTE = "note"
MARK_REVIEWED = "mark-reviewed"
DISPUTE = "dispute"  # 申诉 (the agent, on their own call)
ESCALATE = "escalate"  # ask for 二审 (the agent, once)
ACKNOWLEDGE = "acknowledge"  # 签收 an evaluation (the agent)
RESOLVE_FIRST = "resolve-first"  # 一审: accept or reject a dispute
RESOLVE_SECOND = "resolve-second"  # 二审: final
SEARCH = "search"  # the night's transcripts by phrase
EXPORT = "export"  # the reviewed calls and decisions as CSV / Excel
VIEW_WORKLOAD = "view-workload"  # each reviewer's work
ASSIGN_BLIND = "assign-blind"  # put a sample of calls to two inspectors (blind double review)
BLIND_REVIEW = "blind-review"  # hand in a blind verdict (only the two named; review/blind.py)

_DESK = frozenset({INSPECTOR, SUPERVISOR})
_READERS = frozenset({INSPECTOR, SUPERVISOR, MANAGER})
_AGENT = frozenset({AGENT})
RULES: dict[str, frozenset[str]] = {
    VIEW_QUEUE: _READERS,
    VIEW_AUDIT: _READERS,
    VIEW_CALL: _READERS | _AGENT,
    VIEW_AGENT: _READERS | _AGENT,
    DECIDE: _DESK,
    NOTE: _DESK,
    MARK_REVIEWED: _DESK,
    RESOLVE_FIRST: _DESK,
    RESOLVE_SECOND: frozenset({SUPERVISOR}),
    DISPUTE: _AGENT,
    ESCALATE: _AGENT,
    ACKNOWLEDGE: _AGENT,
    SEARCH: _READERS,
    EXPORT: _READERS,
    VIEW_WORKLOAD: frozenset({SUPERVISOR, MANAGER}),
    ASSIGN_BLIND: frozenset({SUPERVISOR}),
    BLIND_REVIEW: _DESK,
}
ACTIONS = tuple(RULES)
DUTIES = (DECIDE, RESOLVE_FIRST, RESOLVE_SECOND)  # the review policy may give these to other roles (never agents)


@dataclass(frozen=True)
class Resource:
    """What an action is on: the desk as a whole, or the calls of one agent (a call, an agent page)."""

    agent_id: str | None = None
    whole_desk: bool = False


DESK = Resource(whole_desk=True)


def allowed(actor: Actor | None, action: str, resource: Resource = DESK,
            rules: Mapping[str, frozenset[str]] = RULES) -> bool:
    """Whether ``actor`` may do ``action`` on ``resource`` under ``rules`` (role sets per action:
    :data:`RULES`, with the review policy's duties, ``Policy.rules``). Agents act only on their own calls."""
    if actor is None:
        return False
    if action not in rules:
        raise ValueError(f"unknown action {action!r} (known: {', '.join(rules)})")
    if actor.role not in rules[action]:
        return False
    if actor.role == AGENT:
        return not resource.whole_desk and resource.agent_id is not None and resource.agent_id == actor.agent_id
    return True


# --- login cookies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """What a login cookie says: who, at which of their session generations, and the session's id."""

    user: str
    generation: int
    sid: str


class Sessions:
    """Signs and reads the login cookie's value."""

    def __init__(self, secret: str, max_age_s: int = SESSION_MAX_AGE_S) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="qa-review-session")
        self.max_age_s = max_age_s

    def dump(self, name: str, generation: int) -> str:
        return self._signer.dumps({"user": name, "gen": generation, "sid": secrets.token_urlsafe(18)})

    def load(self, value: str | None) -> Session | None:
        if not value:
            return None
        try:
            data = self._signer.loads(value, max_age=self.max_age_s)
        except BadSignature:  # includes SignatureExpired
            return None
        if not isinstance(data, dict):
            return None
        name, generation, sid = data.get("user"), data.get("gen"), data.get("sid")
        if not isinstance(name, str) or type(generation) is not int or not isinstance(sid, str) or not sid:
            return None
        return Session(name, generation, sid)


def form_token(secret: str, binding: str) -> str:
    """The CSRF token of the session (or the anonymous visitor) ``binding`` names."""
    return hmac.new(secret.encode(), b"qa-review-form:" + binding.encode(), hashlib.sha256).hexdigest()


class OneTimeLinks:
    """Sign-in links that work once, within ``ttl_s`` (``qa review --root``)."""

    def __init__(self, ttl_s: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()

    def issue(self, name: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (name, self._clock() + self._ttl_s)
        return token

    def redeem(self, token: str) -> str | None:
        with self._lock:
            found = self._tokens.pop(token, None)
        if found is None or found[1] < self._clock():
            return None
        return found[0]


class LoginThrottle:
    """At most ``max_failures`` wrong passwords for a name, and ``max_per_address`` from one
    address (everyone on the desk's own machine shares 127.0.0.1), within ``window_s``; after
    that, logins for that name or from that address are refused until the oldest failure ages out."""

    def __init__(self, max_failures: int = 5, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, max_per_address: int = 20) -> None:
        self.max_failures = max_failures
        self.max_per_address = max_per_address
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _keys(self, name: str, address: str) -> tuple[str, str]:
        return f"user:{name}", f"addr:{address}"

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures[key]
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def wait_s(self, name: str, address: str) -> float:
        """Seconds until a login for ``name`` from ``address`` is accepted again; 0 when it is now."""
        now = self._clock()
        waits = []
        with self._lock:
            for key, limit in zip(self._keys(name, address), (self.max_failures, self.max_per_address)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(q[len(q) - limit] + self.window_s - now)
        return max(waits, default=0.0)

    def failed(self, name: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for k in self._keys(name, address):
                self._recent(k, now).append(now)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{name}", None)
