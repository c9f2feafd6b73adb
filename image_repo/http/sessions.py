"""One session per request, from the app's services (closed when the request ends)."""

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


def db_session() -> Session:
    """The request's session (created on first use)."""
    if "db_session" not in g:
        g.db_session = current_services().sessions()
    return g.db_session
