"""One JSON error envelope for every error the service answers.

``{"code": 404, "status": "Not Found", "message": "...", "errors": {...}}``:
flask-smorest already shapes HTTP errors this way; this module makes sure a
message is always present and that unexpected exceptions become a 500 in the
same envelope, logged here and never shown to the client.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import marshmallow as ma
from flask import Flask, current_app
from werkzeug.exceptions import HTTPException, InternalServerError

from .. import errors as domain

log = logging.getLogger(__name__)


class ErrorSchema(ma.Schema):
    """The error envelope, as documented in the spec."""

    code = ma.fields.Integer(
        required=True, metadata={"description": "HTTP status code", "example": 404}
    )
    status = ma.fields.String(
        required=True, metadata={"description": "HTTP status name", "example": "Not Found"}
    )
    message = ma.fields.String(
        required=True,
        metadata={"description": "What went wrong, for a person", "example": "No such image."},
    )
    errors = ma.fields.Dict(
        metadata={"description": "Details per input location and field, for validation errors"}
    )


def error_payload(error: HTTPException) -> tuple[dict, int, dict]:
    """Envelope, status and headers for an HTTP error."""
    code = error.code or 500
    payload: dict = {"code": code, "status": error.name, "message": error.description}
    headers: dict = {}
    data = getattr(error, "data", None) or {}
    if "message" in data:
        payload["message"] = data["message"]
    if "errors" in data:
        payload["errors"] = data["errors"]
    elif "messages" in data:  # webargs validation errors
        payload["errors"] = data["messages"]
        if "message" not in data:
            payload["message"] = "The request was well-formed but had invalid values."
    headers.update(data.get("headers") or {})
    # Headers the exception itself carries (Allow on 405, WWW-Authenticate on 401, ...).
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            headers.setdefault(name, value)
    return payload, code, headers


DOMAIN_STATUS: dict[type[domain.DomainError], int] = {
    domain.InvalidInput: 422,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.PreconditionFailed: 412,
    domain.TooLarge: 413,
    domain.QuotaExceeded: 409,
    domain.UnsupportedMedia: 415,
    domain.BackendUnavailable: 503,
}


def domain_error_response(exc: domain.DomainError) -> tuple[dict, int]:
    code = next((status for cls, status in DOMAIN_STATUS.items() if isinstance(exc, cls)), 500)
    payload: dict = {"code": code, "status": HTTPStatus(code).phrase, "message": exc.message}
    if exc.details:
        payload["errors"] = exc.details
    return payload, code


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(domain.DomainError)
    def handle_domain_error(exc: domain.DomainError):
        return domain_error_response(exc)

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return error_payload(exc)
        if current_app.config.get("PROPAGATE_EXCEPTIONS"):
            raise exc
        # Logged with its traceback for operators; the client sees only the envelope.
        log.exception("unhandled exception")
        return error_payload(InternalServerError())
