"""One SELECT, compiled once, run straight on the database driver.

For the few queries on a hot path (the rendition fast path runs one per
request): SQLAlchemy's per-execution work (pool checkout, cache key, result
wrapping) costs more than SQLite answering an indexed lookup. The statement
is compiled once for the engine's dialect; each thread keeps a DBAPI
connection of its own, detached from the pool and in autocommit (it never
holds a snapshot or a lock between queries); values come back converted by
the columns' own types, as through a Session.
"""

from __future__ import annotations

import contextlib
import threading
from collections import namedtuple
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, Select, event


class DriverQuery:
    def __init__(self, engine: Engine, query: Select) -> None:
        self._engine = engine
        dialect = engine.dialect
        compiled = query.compile(dialect=dialect)
        self._sql = compiled.string
        self._compiled = compiled
        columns = list(query.selected_columns)
        self._row = namedtuple("Row", [c.key for c in columns], rename=True)
        self._convert = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ]
        self._local = threading.local()
        # Disposing of the engine (tests, a forked worker) closes ours too.
        event.listen(engine, "engine_disposed", lambda _engine: self._drop())

    def first(self, params: Mapping[str, Any]) -> Any | None:
        """The first row as a named tuple, or None; driver errors propagate."""
        values = self._compiled.construct_params(dict(params))
        if self._compiled.positional:
            values = tuple(values[name] for name in self._compiled.positiontup)
        connection = self._connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._sql, values)
                raw = cursor.fetchone()
            finally:
                cursor.close()
        except Exception:
            self._drop()  # a broken connection is not reused
            raise
        if raw is None:
            return None
        return self._row(*(f(v) if f else v for f, v in zip(self._convert, raw, strict=True)))

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        self._drop()

    def _connection(self):
        connection = getattr(self._local, "connection", None)
        if connection is None:
            pooled = self._engine.raw_connection()
            pooled.detach()  # ours for the thread's life; the pool makes others
            connection = pooled.dbapi_connection
            if self._engine.dialect.name == "postgresql":
                connection.autocommit = True
            else:  # sqlite3: no implicit BEGIN, so no snapshot is ever held
                connection.isolation_level = None
            self._local.connection = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with contextlib.suppress(Exception):  # already broken: nothing more to do
                connection.close()
