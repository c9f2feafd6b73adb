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
from limits import parse_many

from image_repo.domain.permissions import METRICS_READ, TENANTS_MANAGE, group_map
from image_repo.domain.tenancy import Principal, authenticate
from image_repo.http.api import Access
from image_repo.http.errors import BAD_KEY_MESSAGE, FORBIDDEN_MESSAGE, NO_KEY_MESSAGE
from image_repo.http.sessions import db_session
from image_repo.services.ratelimits import FILE_NAME as RATE_LIMITS_FILE
from image_repo.services.ratelimits import storage_uri

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="image-repo", charset="UTF-8"'}
OPERATOR = Principal(
    tenant_id=None, key_id=None, group=None, permissions=frozenset({TENANTS_MANAGE, METRICS_READ})
)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def key_from_headers(x_api_key: str | None, authorization: str | None) -> str | None:
    """The key from ``X-API-Key`` or ``Authorization: Bearer`` (never the query string)."""
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def presented_key() -> str | None:
    return key_from_headers(request.headers.get("X-API-Key"), request.headers.get("Authorization"))


def _unauthorized(message: str):
    abort(401, message=message, headers=CHALLENGE)


def is_operator_key(config, api_key: str) -> bool:
    expected = config.get("OPERATOR_KEY_SHA256")
    if not expected:
        return False
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    return hmac.compare_digest(digest, expected.strip().lower())


def authorize(access: Access) -> None:
    api_key = presented_key()
    if api_key is None:
        _unauthorized(NO_KEY_MESSAGE)
    if is_operator_key(current_app.config, api_key):
        principal = OPERATOR
    else:
        groups = current_app.extensions["image_repo"]["group_permissions"]
        principal = authenticate(db_session(), api_key, groups)
    if principal is None:
        _unauthorized(BAD_KEY_MESSAGE)
    g.principal = principal
    if access.permission not in principal.permissions:
        abort(403, message=FORBIDDEN_MESSAGE.format(permission=access.permission))


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


RATE_LIMIT_PREFIX = "image-repo"


def spend_read_budget(app: Flask, key_id: str) -> list[tuple[str, str]] | None:
    """Charge one read to ``key_id`` outside a Flask request: its rate-limit headers,
    or None when the budget is spent (the full stack then answers 429).

    For the rendition front (web.rendition_front). It charges the very counters
    flask-limiter charges for the ``read`` application limits (shared limits
    are keyed prefix/key/scope) and answers the headers flask-limiter would
    add; a test holds the two to one budget and the same headers.
    """
    limiter: Limiter = app.extensions["image_repo"]["limiter"]
    if not limiter.enabled:
        return []
    strategy = limiter.limiter
    items = app.extensions["image_repo"]["read_limits"]
    identity = (RATE_LIMIT_PREFIX, key_id, "read")
    for item in items:
        if not strategy.hit(item, *identity):
            return None
    shown = items[0]  # flask-limiter reports the first in its sort order
    reset_at, remaining = strategy.get_window_stats(shown, *identity)
    reset_at = int(reset_at + 1)
    return [
        ("X-RateLimit-Limit", str(shown.amount)),
        ("X-RateLimit-Remaining", str(remaining)),
        ("X-RateLimit-Reset", str(reset_at)),
    ]


def init_auth(app: Flask) -> None:
    try:
        app.extensions["image_repo"]["group_permissions"] = group_map(
            app.config.get("GROUP_PERMISSIONS")
        )
    except ValueError as exc:
        from image_repo.config import ConfigError

        raise ConfigError(f"IMAGE_REPO_GROUP_PERMISSIONS is invalid: {exc}") from exc
    config = app.config
    limiter = Limiter(
        key_func=_rate_limit_key,
        application_limits=[
            ApplicationLimit(config["RATELIMIT_READ"], scope="read", exempt_when=_is_write),
            ApplicationLimit(config["RATELIMIT_WRITE"], scope="write", exempt_when=_is_read),
        ],
        # One budget for the whole instance: Redis when set (shared by instances),
        # else a file in the data folder that all its processes share.
        storage_uri=config.get("REDIS_URL") or storage_uri(config["DATA_DIR"] / RATE_LIMITS_FILE),
        headers_enabled=True,
        enabled=config["RATELIMIT_ENABLED"],
        key_prefix=RATE_LIMIT_PREFIX,
    )
    # Public and refused requests spend no key's budget (and cost no lookup).
    limiter.request_filter(lambda: g.get("principal") is None)
    limiter.init_app(app)
    _only_for_keys(app, limiter)
    app.extensions["image_repo"]["limiter"] = limiter
    app.extensions["image_repo"]["read_limits"] = sorted(parse_many(config["RATELIMIT_READ"]))


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
        if g.get("principal") is None:
            return response
        had_retry_after = "Retry-After" in response.headers
        response = hook(response)
        # flask-limiter sends Retry-After with every answer; it belongs on a
        # refusal (RFC 9110 10.2.3), so keep it on 429 and where the app set it.
        if response.status_code != 429 and not had_retry_after:
            response.headers.pop("Retry-After", None)
        return response

    return run
