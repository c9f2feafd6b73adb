"""Engines and sessions for a database URL, with SQLite made safe for a web server."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})
        path = sqlite_path(engine)
        if path is not None:
            # Its folder is made on the first connection, not here: building
            # an app (as every command does) creates nothing on disk.
            event.listen(
                engine,
                "do_connect",
                lambda *_: path.parent.mkdir(parents=True, exist_ok=True),
            )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "savepoint", _sqlite_savepoint_in_a_transaction)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def sqlite_path(engine: Engine) -> Path | None:
    """The file of a SQLite database (None for other databases and in-memory ones)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):  # a URI filename: leave it to SQLite
        return None
    return Path(url.database)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers and one writer work at once; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_savepoint_in_a_transaction(connection, _name) -> None:
    """Open the transaction a savepoint belongs in, if none is open yet.

    Python's sqlite3 begins a transaction only before a write: a SAVEPOINT
    taken before any write would itself begin one, and its RELEASE would
    commit it, whatever the session does next. A deferred BEGIN first keeps
    the savepoint inside the session's transaction (it takes no lock until
    the savepoint's first write).
    """
    dbapi_connection = connection.connection.dbapi_connection
    if not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
