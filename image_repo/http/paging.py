"""Opaque, signed page cursors for keyset pagination.

A cursor carries the (sort value, id) where the previous page ended and the
query it belongs to; it is signed with the app's secret so a client can
neither forge a position nor reuse a cursor with other filters.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from flask_smorest import abort
from itsdangerous import BadSignature, URLSafeSerializer


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="image-repo.cursor")


def encode_cursor(after: tuple[datetime, str] | None, context: str) -> str | None:
    if after is None:
        return None
    return _serializer().dumps([after[0].isoformat(), after[1], context])


def decode_cursor(cursor: str | None, context: str) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        when, last_id, cursor_context = _serializer().loads(cursor)
        position = (datetime.fromisoformat(when), str(last_id))
    except (BadSignature, ValueError, TypeError):
        abort(422, message="The cursor is not valid.", errors={"query": {"cursor": ["invalid"]}})
    if cursor_context != context:
        abort(
            422,
            message="The cursor belongs to another query (sort or filters changed).",
            errors={"query": {"cursor": ["does not match this query"]}},
        )
    return position
