"""Per-key read and write budgets, and the counters they are kept in.

``Budgets`` charges requests with the ``limits`` library's public interface;
the full stack (``http.auth``) and the rendition front call the same
``charge``, so one key has one budget whichever answers it.

Counters shared by every process of one instance, without Redis: an
in-memory ``limits`` storage keeps counters in each process, so under
gunicorn with N workers a key got N times its budget. ``SQLiteStorage``
keeps them in a small SQLite file in the data folder instead (WAL, one
statement per hit), so every worker, the rendition front and the
development server charge the same counters. Redis (``IMAGE_REPO_REDIS_URL``)
remains the choice when several instances must share one budget.

Registered with ``limits`` under the scheme ``image-repo-sqlite`` (defining
the class registers it); :func:`storage_uri` builds the URI for a file.
Supports the fixed-window strategy (flask-limiter's default) and the moving
window. The file is opened on first use in each process (and again after a
fork), never when the app is built: commands that never charge a budget
create nothing. One connection per process, its statements taken in turn
(each is a few microseconds).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limits import RateLimitItem, parse_many
from limits.storage import MovingWindowSupport, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

SCHEME = "image-repo-sqlite"
FILE_NAME = "rate-limits.db"
PURGE_EVERY = 1024  # hits per process between sweeps of expired counters

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS counters ("
    " key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at REAL NOT NULL"
    ") WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS entries ("
    " key TEXT NOT NULL, at REAL NOT NULL, expires_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS entries_key_at ON entries (key, at)",
)
# A new window starts when the old one has expired; else the count grows.
_INCR = (
    "INSERT INTO counters (key, count, expires_at) VALUES (:key, :amount, :now + :expiry) "
    "ON CONFLICT (key) DO UPDATE SET "
    " count = CASE WHEN expires_at <= :now THEN excluded.count"
    " ELSE count + excluded.count END,"
    " expires_at = CASE WHEN expires_at <= :now THEN excluded.expires_at ELSE expires_at END "
    "RETURNING count"
)


# Counters are keyed as flask-limiter keys application limits (key prefix,
# then the key's id, then the limit's scope), for example
# ``LIMITER/image-repo/key_.../read/600/1/minute``: budgets kept in Redis by
# versions built on flask-limiter carry over.
KEY_PREFIX = "image-repo"
READ, WRITE = "read", "write"


def storage_uri(path: Path) -> str:
    return f"{SCHEME}://{urllib.parse.quote(str(Path(path).absolute()))}"


def counters_uri(config: Mapping[str, Any]) -> str:
    """Where the counters live: Redis when set (shared by instances), else the data folder."""
    return config.get("REDIS_URL") or storage_uri(config["DATA_DIR"] / FILE_NAME)


@dataclass(frozen=True)
class Charge:
    """One request charged to a budget: whether it may pass, and what to tell the client.

    ``limit`` is the limit reported: the first one spent, else the first of
    its kind (as flask-limiter reports it); ``reset_at`` is when its window
    ends, in epoch seconds.
    """

    allowed: bool
    limit: RateLimitItem
    remaining: int
    reset_at: int

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("X-RateLimit-Limit", str(self.limit.amount)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(self.reset_at)),
        ]

    def retry_after(self, now: float) -> int:
        """Seconds until the spent window ends (for Retry-After on a refusal)."""
        return int(self.reset_at - now)


class Budgets:
    """Read and write budgets per key, on one ``limits`` storage, in fixed windows.

    A kind may have several limits (``10 per second; 600 per minute``): they
    are charged smallest window first and the first one spent refuses the
    request. ``enabled=False`` charges nothing (and needs no storage).
    """

    def __init__(
        self, storage: Storage | None, *, read: str, write: str, enabled: bool = True
    ) -> None:
        self.enabled = enabled and storage is not None
        self.storage = storage
        self._strategy = FixedWindowRateLimiter(storage) if self.enabled else None
        self._limits = {READ: _limits(read), WRITE: _limits(write)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Budgets:
        enabled = bool(config["RATELIMIT_ENABLED"])
        storage = storage_from_string(counters_uri(config)) if enabled else None
        return cls(
            storage,
            read=config["RATELIMIT_READ"],
            write=config["RATELIMIT_WRITE"],
            enabled=enabled,
        )

    def charge(self, identity: str, kind: str) -> Charge | None:
        """Spend one ``kind`` (READ or WRITE) of ``identity``'s budget; None when off."""
        if self._strategy is None:
            return None
        identifiers = (KEY_PREFIX, identity, kind)
        items = self._limits[kind]
        shown, allowed = items[0], True
        for item in items:
            if not self._strategy.hit(item, *identifiers):
                shown, allowed = item, False
                break
        reset, remaining = self._strategy.get_window_stats(shown, *identifiers)
        return Charge(allowed, shown, remaining, int(reset + 1))


def _limits(text: str) -> list[RateLimitItem]:
    items = sorted(parse_many(text))  # smallest window first, as flask-limiter tries them
    if not items:
        raise ValueError(f"no rate limit in {text!r}")
    return items


class SQLiteStorage(Storage, MovingWindowSupport):
    """``limits`` storage on a SQLite file, safe across processes and threads."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        if not uri or not uri.startswith(f"{SCHEME}://"):
            raise ValueError(f"expected {SCHEME}:///path/to/file, got {uri!r}")
        self.path = Path(urllib.parse.unquote(uri.removeprefix(f"{SCHEME}://")))
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._hits = 0

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    # -- the connection: one per process, opened again in a forked child --------

    def _db(self) -> sqlite3.Connection:
        """The process's connection; call with ``self._lock`` held."""
        if self._pid != os.getpid():
            self._connection = self._connect()
            self._pid = os.getpid()
        return self._connection

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each statement is its own transaction.
        connection = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        # Counters need not survive a power cut: no fsync on the hot path.
        connection.execute("PRAGMA synchronous=OFF")
        for statement in _SCHEMA:
            connection.execute(statement)
        return connection

    # -- fixed window ------------------------------------------------------------

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            db = self._db()
            (count,) = db.execute(
                _INCR, {"key": key, "amount": amount, "now": now, "expiry": expiry}
            ).fetchone()
            self._upkeep(db, now)
        return count

    def get(self, key: str) -> int:
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT count FROM counters WHERE key = ? AND expires_at > ?",
                    (key, time.time()),
                )
                .fetchone()
            )
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT expires_at FROM counters WHERE key = ? AND expires_at > ?", (key, now)
                )
                .fetchone()
            )
        return row[0] if row else now

    # -- moving window -----------------------------------------------------------

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        now = time.time()
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")  # count and insert as one
            try:
                (count,) = db.execute(
                    "SELECT count(*) FROM entries WHERE key = ? AND at > ?", (key, now - expiry)
                ).fetchone()
                acquired = count + amount <= limit
                if acquired:
                    db.executemany(
                        "INSERT INTO entries (key, at, expires_at) VALUES (?, ?, ?)",
                        [(key, now, now + expiry)] * amount,
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._upkeep(db, now)
        return acquired

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        with self._lock:
            oldest, count = (
                self._db()
                .execute(
                    "SELECT min(at), count(*) FROM entries WHERE key = ? AND at > ?",
                    (key, now - expiry),
                )
                .fetchone()
            )
        return (oldest, count) if count else (now, 0)

    # -- upkeep ------------------------------------------------------------------

    def _upkeep(self, db: sqlite3.Connection, now: float) -> None:
        """Now and then, drop counters and entries whose window is over."""
        self._hits += 1
        if self._hits % PURGE_EVERY == 0:
            db.execute("DELETE FROM counters WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM entries WHERE expires_at <= ?", (now,))

    def check(self) -> bool:
        try:
            with self._lock:
                self._db().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        with self._lock:
            db = self._db()
            removed = db.execute("DELETE FROM counters").rowcount
            return removed + db.execute("DELETE FROM entries").rowcount

    def clear(self, key: str) -> None:
        with self._lock:
            db = self._db()
            db.execute("DELETE FROM counters WHERE key = ?", (key,))
            db.execute("DELETE FROM entries WHERE key = ?", (key,))
