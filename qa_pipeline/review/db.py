"""OUT/review.db: the review desk's SQLite database (WAL), shared by the web app and the batch.

Tables (see :data:`SCHEMA`):

- ``events``: the audit trail, append-only (triggers refuse UPDATE and DELETE). Every machine
  verdict the desk or a batch saw, every confirm, override, dispute, resolution, note and
  "reviewed" mark is one row: who, role, when, call, item, from, to, reason.
- ``users``: name, role, agent_id (agents), an argon2 hash of the password, the session
  generation (moved on to end every session of the user) and when the account was disabled.
- ``settings``: the schema version.
- ``blind_reviews`` / ``blind_verdicts``: blind double review (:mod:`qa_pipeline.review.blind`): a
  call put to two inspectors by a supervisor, and each one's verdicts, append-only too, kept out of
  the audit trail so that no page of the trail shows one inspector's verdict to the other.

The key that signs login cookies and form tokens is not in the database (whose file a backup or a
copy carries around) but in ``OUT/review.key`` beside it. Both, and SQLite's -wal and -shm files,
are created 0600 whatever the umask, and an older, wider file is narrowed to 0600 when opened.

Writes go through :meth:`ReviewDB.write`, one ``BEGIN IMMEDIATE`` transaction each, so a
writer sees the rows it checks against and nobody else writes in between (across processes,
too). SQLite in WAL mode with ``synchronous=FULL`` keeps every committed row and rolls back a
transaction that a killed process left open: a SIGKILL loses at most the save in flight.
"""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from qa_pipeline.errors import OutputError
from qa_pipeline.records import CallScore
from qa_pipeline.review.auth import ROLES
from qa_pipeline.final_verdicts import ACTIONS, MACHINE, Event

DB_FILE = "review.db"
KEY_FILE = "review.key"
SCHEMA_VERSION = 4
PRIVATE = 0o600

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ({", ".join(f"'{r}'" for r in ROLES)})),
    agent_id      TEXT,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    session_gen   INTEGER NOT NULL DEFAULT 0,
    disabled_at   TEXT,
    CHECK ((role = 'agent') = (agent_id IS NOT NULL))
);
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ({", ".join(f"'{a}'" for a in ACTIONS)})),
    call_id     TEXT NOT NULL,
    item_id     TEXT,
    from_result TEXT,
    to_result   TEXT,
    points      REAL,
    reason      TEXT,
    basis_id    INTEGER REFERENCES events(id),
    ref_id      INTEGER REFERENCES events(id)
);
CREATE INDEX IF NOT EXISTS events_call ON events (call_id, item_id, id);
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE INDEX IF NOT EXISTS events_actor ON events (actor, id);
CREATE TABLE IF NOT EXISTS blind_reviews (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id     TEXT NOT NULL,
    first       TEXT NOT NULL,
    second      TEXT NOT NULL,
    assigned_by TEXT NOT NULL,
    assigned_at TEXT NOT NULL,
    CHECK (first <> second),
    UNIQUE (call_id, first, second)
);
CREATE TABLE IF NOT EXISTS blind_verdicts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    review_id INTEGER NOT NULL REFERENCES blind_reviews(id),
    actor     TEXT NOT NULL,
    item_id   TEXT NOT NULL,
    result    TEXT NOT NULL CHECK (result IN ('pass','fail','na')),
    reason    TEXT,
    at        TEXT NOT NULL,
    UNIQUE (review_id, actor, item_id)
);
CREATE TRIGGER IF NOT EXISTS blind_reviews_append_only_update BEFORE UPDATE ON blind_reviews
BEGIN SELECT RAISE(ABORT, 'blind reviews are append-only'); END;
CREATE TRIGGER IF NOT EXISTS blind_reviews_append_only_delete BEFORE DELETE ON blind_reviews
BEGIN SELECT RAISE(ABORT, 'blind reviews are append-only'); END;
CREATE TRIGGER IF NOT EXISTS blind_verdicts_append_only_update BEFORE UPDATE ON blind_verdicts
BEGIN SELECT RAISE(ABORT, 'blind verdicts are append-only'); END;
CREATE TRIGGER IF NOT EXISTS blind_verdicts_append_only_delete BEFORE DELETE ON blind_verdicts
BEGIN SELECT RAISE(ABORT, 'blind verdicts are append-only'); END;
"""

_COLUMNS = "id, at, actor, role, action, call_id, item_id, from_result, to_result, points, reason, basis_id, ref_id"


_USER_COLUMNS = "name, role, agent_id, password_hash, created_at, session_gen, disabled_at"


@dataclass(frozen=True)
class User:
    name: str
    role: str
    agent_id: str | None
    password_hash: str
    created_at: str
    session_gen: int = 0
    disabled_at: str | None = None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


class Conflict(Exception):
    """The item (or call) changed since the page was loaded; ``latest`` is the row that changed it."""

    def __init__(self, latest: Event) -> None:
        super().__init__(f"changed by {latest.actor} at {latest.at}, reload")
        self.latest = latest


def now() -> str:
    """The local time with its offset, to the second (how the audit trail stamps rows)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _event(row: Sequence) -> Event:
    return Event(*row)


def db_path(out: Path) -> Path:
    return Path(out) / DB_FILE


def private_file(path: Path) -> None:
    """Make ``path`` exist with mode 0600 (created so, whatever the umask; an existing wider one
    narrowed)."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), PRIVATE)
    try:
        if os.fstat(fd).st_mode & 0o777 != PRIVATE:
            os.fchmod(fd, PRIVATE)
    finally:
        os.close(fd)


def signing_key(out: Path) -> str:
    """The secret of OUT's desk (OUT/review.key, 0600), made on first use."""
    path = Path(out) / KEY_FILE
    if not path.exists():
        key = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), PRIVATE)
        except FileExistsError:
            pass  # another process made it first: read theirs
        else:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(key)
                f.flush()
                os.fsync(f.fileno())
    private_file(path)
    try:
        key = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise OutputError(f"cannot read the desk's key {path}: {e}") from e
    if len(key) < 32:
        raise OutputError(f"{path}: not a key this desk wrote (remove it to make a new one; everyone signs in again)")
    return key


def _fault(point: str) -> None:
    """Fault injection for tests: with QA_FAULT_KILL=POINT the process SIGKILLs itself there.
    Point `review-save`: a decision's row is inserted, its transaction not yet committed."""
    if os.environ.get("QA_FAULT_KILL") == point:
        os.kill(os.getpid(), signal.SIGKILL)


class ReviewDB:
    """One review database; safe to share between threads (a connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        try:
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
                if p == self.path or p.exists():  # SQLite makes -wal and -shm with the database's mode
                    private_file(p)
            conn = self._connect_new()
            try:
                found = conn.execute("SELECT value FROM settings WHERE key = 'schema_version'").fetchone() \
                    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'settings'").fetchone() else None
                if found is not None and found[0] == "1":
                    _migrate_1_to_2(conn)
                    found = ("2",)
                if found is not None and found[0] == "2":
                    _migrate_2_to_3(conn)
                    found = ("3",)
                conn.executescript(SCHEMA)
                if found is not None and found[0] == "3":  # version 4 adds tables (blind double review) only
                    conn.execute("UPDATE settings SET value = '4' WHERE key = 'schema_version'")
                conn.execute("INSERT OR IGNORE INTO settings VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            finally:
                conn.close()
        except OSError as e:
            raise OutputError(f"cannot open the review database {self.path}: {e.strerror or e}") from e
        except sqlite3.Error as e:
            raise OutputError(f"cannot open the review database {self.path}: {e}") from e
        found = self.setting("schema_version")
        if found != str(SCHEMA_VERSION):
            raise OutputError(f"{self.path}: review database version {found}, this qa-pipeline reads {SCHEMA_VERSION}")

    @classmethod
    def open(cls, out: Path) -> "ReviewDB":
        return cls(db_path(out))

    def _connect_new(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect_new()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- reading ------------------------------------------------------------------------------

    def setting(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def data_version(self) -> int:
        """Changes whenever another connection commits: cached reads compare it."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def events(self, call_id: str | None = None) -> list[Event]:
        """Every row of the audit trail (of one call), oldest first."""
        if call_id is None:
            rows = self.conn.execute(f"SELECT {_COLUMNS} FROM events ORDER BY id")
        else:
            rows = self.conn.execute(f"SELECT {_COLUMNS} FROM events WHERE call_id = ? ORDER BY id", (call_id,))
        return [_event(r) for r in rows]

    def audit_page(self, *, people_only: bool = True, actor: str | None = None, actions: tuple[str, ...] = (),
                   call_id: str | None = None, since: str | None = None, until: str | None = None,
                   before: int | None = None, limit: int = 100) -> tuple[list[Event], bool]:
        """One page of the audit trail, newest first: rows with an id under ``before`` that match
        every filter given (``since`` / ``until``: days, YYYY-MM-DD, of ``at``); with
        ``people_only`` no machine rows. Returns the rows and whether older ones match too."""
        where, args = [], []
        if people_only:
            where.append("action != 'machine'")
        if actor:
            where.append("actor = ?")
            args.append(actor)
        if actions:
            where.append(f"action IN ({', '.join('?' for _ in actions)})")
            args.extend(actions)
        if call_id:
            where.append("call_id = ?")
            args.append(call_id)
        if since:
            where.append("substr(at, 1, 10) >= ?")
            args.append(since)
        if until:
            where.append("substr(at, 1, 10) <= ?")
            args.append(until)
        if before is not None:
            where.append("id < ?")
            args.append(before)
        sql = f"SELECT {_COLUMNS} FROM events" + (f" WHERE {' AND '.join(where)}" if where else "")
        rows = [_event(r) for r in self.conn.execute(f"{sql} ORDER BY id DESC LIMIT ?", (*args, limit + 1))]
        return rows[:limit], len(rows) > limit

    def actors(self) -> list[str]:
        """Everyone (but the machine) with a row in the audit trail, by name."""
        return [r[0] for r in self.conn.execute("SELECT DISTINCT actor FROM events WHERE action != 'machine' ORDER BY actor")]

    def latest_machine(self) -> dict[tuple[str, str], Event]:
        """The latest machine row of every (call, item)."""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE id IN "
            "(SELECT max(id) FROM events WHERE action = 'machine' GROUP BY call_id, item_id)"
        )
        return {(e.call_id, e.item_id): e for e in map(_event, rows)}

    # --- users --------------------------------------------------------------------------------

    def user(self, name: str) -> User | None:
        row = self.conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
        return User(*row) if row else None

    def users(self) -> list[User]:
        rows = self.conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name")
        return [User(*r) for r in rows]

    def put_user(self, name: str, role: str, agent_id: str | None, password_hash: str) -> User:
        """Add a user, or replace the role and password of an existing one (which ends their sessions)."""
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if (role == "agent") != bool(agent_id):
            raise ValueError("an agent needs --agent-id; other roles take none")
        with self.write() as conn:
            conn.execute(
                "INSERT INTO users (name, role, agent_id, password_hash, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET role = excluded.role, agent_id = excluded.agent_id, "
                "password_hash = excluded.password_hash, session_gen = session_gen + 1",
                (name, role, agent_id or None, password_hash, now()),
            )
        user = self.user(name)
        assert user is not None
        return user

    def _change_user(self, name: str, sql: str, args: tuple = ()) -> User | None:
        with self.write() as conn:
            changed = conn.execute(f"UPDATE users SET {sql}, session_gen = session_gen + 1 WHERE name = ?",
                                   (*args, name)).rowcount
        return self.user(name) if changed else None

    def set_password(self, name: str, password_hash: str) -> User | None:
        """A new password; every session of the user ends. None when there is no such user."""
        return self._change_user(name, "password_hash = ?", (password_hash,))

    def disable(self, name: str) -> User | None:
        """The user can no longer sign in; every session ends. None when there is no such user."""
        return self._change_user(name, "disabled_at = coalesce(disabled_at, ?)", (now(),))

    def enable(self, name: str) -> User | None:
        return self._change_user(name, "disabled_at = NULL")

    def end_sessions(self, name: str) -> None:
        """Sign the user out everywhere (their session generation moves on)."""
        self._change_user(name, "session_gen = session_gen")

    # --- writing ------------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT; ROLLBACK on any error)."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def append(self, conn: sqlite3.Connection, event: Event) -> Event:
        """Insert ``event`` (its id and, when empty, its time are assigned) inside ``write()``."""
        at = event.at or now()
        cur = conn.execute(
            "INSERT INTO events (at, actor, role, action, call_id, item_id, from_result, to_result, points, reason, "
            "basis_id, ref_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (at, event.actor, event.role, event.action, event.call_id, event.item_id, event.from_result,
             event.to_result, event.points, event.reason, event.basis_id, event.ref_id),
        )
        if event.action != MACHINE:
            _fault("review-save")
        return Event(cur.lastrowid, at, *(_astuple(event)[2:]))

    def events_in(self, conn: sqlite3.Connection, call_id: str) -> list[Event]:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM events WHERE call_id = ? ORDER BY id", (call_id,))
        return [_event(r) for r in rows]

    def record_machine(self, scores: Iterable[CallScore]) -> int:
        """Add a machine row for each item verdict of ``scores`` that differs from the latest one
        recorded (result or points); returns how many were added."""
        with self.write() as conn:
            latest = {
                (r[0], r[1]): (r[2], r[3])
                for r in conn.execute(
                    "SELECT call_id, item_id, to_result, points FROM events WHERE id IN "
                    "(SELECT max(id) FROM events WHERE action = 'machine' GROUP BY call_id, item_id)"
                )
            }
            stamp = now()
            rows = []
            for s in scores:
                if s.status != "ok":
                    continue
                basis = " · ".join(x for x in (s.rubric_id, s.rubric_version, s.model) if x) or None
                for i in s.items:
                    before = latest.get((s.call_id, i.item_id))
                    if before is not None and before == (i.result, float(i.points)):
                        continue
                    rows.append((stamp, "machine", "machine", MACHINE, s.call_id, i.item_id,
                                 before[0] if before else None, i.result, float(i.points), basis))
            conn.executemany(
                "INSERT INTO events (at, actor, role, action, call_id, item_id, from_result, to_result, points, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Version 1 kept the cookie secret in ``settings`` and had no session generation: the secret
    goes (the key file signs from now on, under another salt, so the old secret signs nothing and
    everyone signs in again), the columns come."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(users)")}
        if "session_gen" not in columns:
            conn.execute("ALTER TABLE users ADD COLUMN session_gen INTEGER NOT NULL DEFAULT 0")
        if "disabled_at" not in columns:
            conn.execute("ALTER TABLE users ADD COLUMN disabled_at TEXT")
        conn.execute("DELETE FROM settings WHERE key = 'secret'")
        conn.execute("UPDATE settings SET value = '2' WHERE key = 'schema_version'")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """Version 3 knows more actions (escalate, acknowledge): the audit trail's CHECK is rebuilt, the
    way SQLite's manual says (a new table, every row copied in order, the old one dropped), in one
    transaction with foreign keys off; no row changes."""
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("BEGIN IMMEDIATE")
    try:
        events_sql = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS events"):SCHEMA.index(");", SCHEMA.index(
            "CREATE TABLE IF NOT EXISTS events")) + 2]
        conn.execute(events_sql.replace("CREATE TABLE IF NOT EXISTS events", "CREATE TABLE events_v3"))
        conn.execute(f"INSERT INTO events_v3 ({_COLUMNS}) SELECT {_COLUMNS} FROM events ORDER BY id")
        conn.execute("DROP TABLE events")  # its triggers and index go with it; SCHEMA makes them again
        conn.execute("ALTER TABLE events_v3 RENAME TO events")
        conn.execute("UPDATE settings SET value = '3' WHERE key = 'schema_version'")
        if conn.execute("PRAGMA foreign_key_check").fetchall():
            raise sqlite3.IntegrityError("the audit trail's references do not hold after the rebuild")
    except BaseException:
        conn.execute("ROLLBACK")
        conn.execute("PRAGMA foreign_keys=ON")
        raise
    conn.execute("COMMIT")
    conn.execute("PRAGMA foreign_keys=ON")


def _astuple(e: Event) -> tuple:
    return (e.id, e.at, e.actor, e.role, e.action, e.call_id, e.item_id, e.from_result, e.to_result, e.points,
            e.reason, e.basis_id, e.ref_id)


def open_if_exists(out: Path) -> ReviewDB | None:
    """The review database of ``out`` when the desk was ever opened there, else None."""
    return ReviewDB.open(out) if db_path(out).is_file() else None
