"""Deny by default: every request is checked against its operation's access.

The declaration comes from ``Blueprint.operation`` (or ``mark_public`` for
plain views). A route that declares nothing answers 403, so forgetting the
declaration can only ever close an endpoint, never open it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from flask import Flask, current_app, request
from flask_smorest import abort

from image_repo.http.api import PUBLIC, Access, access_of
from image_repo.http.docs import PUBLIC_DOC_ENDPOINTS

log = logging.getLogger(__name__)


def access_for(app: Flask, endpoint: str, method: str) -> Access | None:
    """The access declared for ``method`` on ``endpoint``, or None."""
    if endpoint in PUBLIC_DOC_ENDPOINTS:
        return Access(PUBLIC, endpoint)
    view = app.view_functions.get(endpoint)
    if view is None:
        return None
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return access_of(view)
    method = method.lower()
    handler = getattr(view_class, method, None)
    if handler is None and method == "head":
        handler = getattr(view_class, "get", None)
    return access_of(handler) if handler is not None else None


def _check_access(authorize: Callable[[Access], None] | None) -> None:
    if request.endpoint is None:
        return  # routing failed: Flask answers 404/405 in the envelope
    if request.method == "OPTIONS":
        return  # automatic OPTIONS and CORS preflight carry no data
    access = access_for(current_app, request.endpoint, request.method)
    if access is None:
        log.error("route %s declares no access; refusing", request.endpoint)
        abort(403, message="This operation is not available.")
    if access.public or (access.public_when and current_app.config.get(access.public_when)):
        return
    if authorize is None:
        abort(403, message="This operation is not available.")
    authorize(access)


def init_access(app: Flask, authorize: Callable[[Access], None] | None = None) -> None:
    """Check every request's access; ``authorize`` decides the non-public ones."""
    app.before_request(partial(_check_access, authorize))
