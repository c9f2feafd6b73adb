"""API-key authentication, group permissions and per-key rate limits.

``authorize`` is called by ``web.access`` for every non-public operation with
the permission the operation declared. Keys come from ``X-API-Key`` or
``Authorization: Bearer``, never from the query string, and are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import partial

from flask import Flask, current_app, g, request
from flask_limiter import ApplicationLimit, Limiter
from flask_smorest import abort

from ..permissions import METRICS_READ, TENANTS_MANAGE, group_map
from ..tenancy import Principal, authenticate
from .api import Access
from .database import db_session

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="image-repo", charset="UTF-8"'}
OPERATOR = Principal(
    tenant_id=None, key_id=None, group=None, permissions=frozenset({TENANTS_MANAGE, METRICS_READ})
)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def presented_key() -> str | None:
    header = request.headers.get("X-API-Key")
    if header:
        return header.strip()
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def _unauthorized(message: str):
    abort(401, message=message, headers=CHALLENGE)


def _is_operator_key(api_key: str) -> bool:
    expected = current_app.config.get("OPERATOR_KEY_SHA256")
    if not expected:
        return False
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    return hmac.compare_digest(digest, expected.strip().lower())


def authorize(access: Access) -> None:
    api_key = presented_key()
    if api_key is None:
        _unauthorized("This operation needs an API key: send X-API-Key or Authorization: Bearer.")
    if _is_operator_key(api_key):
        principal = OPERATOR
    else:
        groups = current_app.extensions["image_repo"]["group_permissions"]
        principal = authenticate(db_session(), api_key, groups)
    if principal is None:
        _unauthorized("The API key is unknown, revoked or expired.")
    g.principal = principal
    if access.permission not in principal.permissions:
        abort(
            403,
            message=f"This key's group may not do this (needs permission {access.permission!r}).",
        )


def current_principal() -> Principal:
    return g.principal


def group_names() -> frozenset[str]:
    return frozenset(current_app.extensions["image_repo"]["group_permissions"])


def _rate_limit_key() -> str:
    principal = g.get("principal")
    return principal.key_id or "operator" if principal else request.remote_addr or "unknown"


def _is_read() -> bool:
    return request.method in READ_METHODS


def _is_write() -> bool:
    return request.method not in READ_METHODS


def init_auth(app: Flask) -> None:
    try:
        app.extensions["image_repo"]["group_permissions"] = group_map(
            app.config.get("GROUP_PERMISSIONS")
        )
    except ValueError as exc:
        from ..config import ConfigError

        raise ConfigError(f"IMAGE_REPO_GROUP_PERMISSIONS is invalid: {exc}") from exc
    config = app.config
    limiter = Limiter(
        key_func=_rate_limit_key,
        application_limits=[
            ApplicationLimit(config["RATELIMIT_READ"], scope="read", exempt_when=_is_write),
            ApplicationLimit(config["RATELIMIT_WRITE"], scope="write", exempt_when=_is_read),
        ],
        storage_uri=config.get("REDIS_URL") or "memory://",
        headers_enabled=True,
        enabled=config["RATELIMIT_ENABLED"],
        key_prefix="image-repo",
    )
    # Public and refused requests spend no key's budget (and cost no lookup).
    limiter.request_filter(lambda: g.get("principal") is None)
    limiter.init_app(app)
    _only_for_keys(app, limiter)
    app.extensions["image_repo"]["limiter"] = limiter


def _only_for_keys(app: Flask, limiter: Limiter) -> None:
    """Run the limiter's per-request check only when a key was presented.

    The request filter above already exempts public requests, but the
    limiter still evaluates (and prices) an empty set of limits for each;
    on the cheapest endpoints that was a quarter of the request's cost.
    """
    hooks = app.before_request_funcs.setdefault(None, [])
    check = limiter._check_request_limit  # the hook init_app registered
    if check in hooks:
        hooks[hooks.index(check)] = lambda: check() if g.get("principal") is not None else None
    # Likewise its after-request hook, which adds the rate-limit headers.
    after = app.after_request_funcs.setdefault(None, [])
    for i, hook in enumerate(after):
        if isinstance(hook, partial) and hook.args == (limiter,):
            after[i] = _keyed_only(hook)


def _keyed_only(hook):
    def run(response):
        return hook(response) if g.get("principal") is not None else response

    return run
