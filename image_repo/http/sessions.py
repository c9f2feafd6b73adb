"""One engine per app, one session per request (closed when the request ends)."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from image_repo.db.engine import make_engine, make_session_factory


def init_database(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    state = app.extensions["image_repo"]
    state["engine"] = engine
    state["session_factory"] = make_session_factory(engine)

    @app.teardown_appcontext
    def _close_session(_exc) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def db_session() -> Session:
    """The request's session (created on first use)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["image_repo"]["session_factory"]()
    return g.db_session


def engine_of(app: Flask):
    return app.extensions["image_repo"]["engine"]
