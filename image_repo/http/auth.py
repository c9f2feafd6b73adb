"""API-key authentication, group permissions and per-key rate limits.

``authorize`` is called by ``http.access`` for every non-public operation with
the permission the operation declared. Keys come from ``X-API-Key`` or
``Authorization: Bearer``, never from the query string, and are never logged.
Once a key is known, the request is charged to its read or write budget
(``services.ratelimits``); public and refused requests spend none.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from flask import Flask, current_app, g, request
from flask_smorest import abort

from image_repo.domain.permissions import METRICS_READ, TENANTS_MANAGE
from image_repo.domain.tenancy import Principal, authenticate
from image_repo.http.api import Access
from image_repo.http.context import current_services
from image_repo.http.errors import BAD_KEY_MESSAGE, FORBIDDEN_MESSAGE, NO_KEY_MESSAGE
from image_repo.http.sessions import db_session
from image_repo.http.signing import signed_principal
from image_repo.services.ratelimits import READ, WRITE

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
    services = current_services()
    if api_key is None:
        # No key: a signed URL (http.signing) or nothing.
        principal = signed_principal(access.operation_id)
        if principal is None:
            _unauthorized(NO_KEY_MESSAGE)
    elif is_operator_key(current_app.config, api_key):
        principal = OPERATOR
    else:
        session = db_session()
        principal = authenticate(session, api_key, services.group_permissions)
        if principal is not None and principal.recorded_use:
            session.commit()  # the key was used, whatever becomes of the request
    if principal is None:
        _unauthorized(BAD_KEY_MESSAGE)
    g.principal = principal
    if access.permission not in principal.permissions:
        abort(403, message=FORBIDDEN_MESSAGE.format(permission=access.permission))
    kind = READ if request.method in READ_METHODS else WRITE
    charge = g.charge = services.budgets.charge(budget_identity(principal), kind)
    if charge is not None and not charge.allowed:
        abort(429, message=str(charge.limit))


def budget_identity(principal: Principal) -> str:
    """Whose budget a principal spends: its key's, or the operator's."""
    return principal.key_id or "operator"


def current_principal() -> Principal:
    return g.principal


def group_names() -> frozenset[str]:
    return frozenset(current_services().group_permissions)


def _budget_headers(response):
    """The charged budget's headers; Retry-After only on a refusal (RFC 9110 10.2.3)."""
    charge = g.get("charge")
    if charge is not None:
        for name, value in charge.headers():
            response.headers.add(name, value)
        if response.status_code == 429:
            response.headers["Retry-After"] = str(charge.retry_after(time.time()))
    return response


def init_auth(app: Flask) -> None:
    app.after_request(_budget_headers)
