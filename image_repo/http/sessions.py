"""One session per request: the request's unit of work.

The session is made on first use from the app's services. Whatever the view
did through it is committed when the view returns (``commit_view``, called
by the app's ``dispatch_request``, so a failed commit is answered like any
error); if the view raises, nothing is committed, and closing the session
when the request ends rolls back. Domain functions never commit (see
``image_repo.domain``).
"""

from __future__ import annotations

from flask import Flask, g
from sqlalchemy.orm import Session

from image_repo.http.context import current_services


def init_database(app: Flask) -> None:
    @app.teardown_appcontext
    def _close_session(_exc) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def commit_view() -> None:
    """The view returned: commit what it did."""
    session = g.get("db_session")
    if session is not None:
        session.commit()


def db_session() -> Session:
    """The request's session (created on first use)."""
    if "db_session" not in g:
        g.db_session = current_services().sessions()
    return g.db_session
