"""One JSON error envelope for every error the service answers.

``{"code": 404, "status": "Not Found", "message": "...", "errors": {...}}``:
flask-smorest already shapes HTTP errors this way; this module makes sure a
message is always present and that unexpected exceptions become a 500 in the
same envelope, logged here and never shown to the client. ``ErrorExample``
is how the spec shows an error an operation answers (see ``http.api``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus

import marshmallow as ma
from flask import Flask, current_app
from werkzeug.exceptions import HTTPException, InternalServerError

from image_repo.domain import errors as domain

log = logging.getLogger(__name__)

# Said by the service, and shown as examples by the spec: one wording for both.
VALIDATION_MESSAGE = "The request was well-formed but had invalid values."
NO_KEY_MESSAGE = "This operation needs an API key: send X-API-Key or Authorization: Bearer."
BAD_KEY_MESSAGE = "The API key is unknown, revoked or expired."
FORBIDDEN_MESSAGE = "This key's group may not do this (needs permission {permission!r})."


class ErrorSchema(ma.Schema):
    """The error envelope, as documented in the spec.

    No field examples: each error response carries an example of its own.
    """

    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = ma.fields.String(required=True, metadata={"description": "HTTP status name"})
    message = ma.fields.String(
        required=True, metadata={"description": "What went wrong, for a person"}
    )
    errors = ma.fields.Dict(
        metadata={"description": "Details per input location and field, for validation errors"}
    )


@dataclass(frozen=True)
class ErrorExample:
    """An error answer as the spec shows it: the message, and details, the service gives.

    ``summary`` names the example among several for one status.
    """

    message: str
    errors: dict | None = None
    summary: str | None = None

    def envelope(self, code: int) -> dict:
        payload: dict = {"code": code, "status": HTTPStatus(code).phrase, "message": self.message}
        if self.errors is not None:
            payload["errors"] = self.errors
        return payload


def invalid(location: str, field: str, *messages: str, summary: str | None = None) -> ErrorExample:
    """A 422 as webargs words it: ``messages`` about ``field`` of input ``location``."""
    return ErrorExample(VALIDATION_MESSAGE, {location: {field: list(messages)}}, summary)


def error_content(code: int, examples: Sequence[ErrorExample]) -> dict:
    """The ``content`` of an error response showing ``examples`` (one, or several by name)."""
    media: dict = {"schema": ErrorSchema}
    if len(examples) == 1:
        media["example"] = examples[0].envelope(code)
    else:
        media["examples"] = {
            _example_name(example, index): {
                "summary": example.summary or example.message,
                "value": example.envelope(code),
            }
            for index, example in enumerate(examples)
        }
    return {"application/json": media}


def _example_name(example: ErrorExample, index: int) -> str:
    words = re.findall(r"[a-z0-9]+", (example.summary or "").lower())
    return "-".join(words) or f"example-{index + 1}"


def complete_envelope(
    error: HTTPException, answer: tuple[dict, int, dict]
) -> tuple[dict, int, dict]:
    """flask-smorest's answer to an HTTP error (``ErrorHandlerMixin.handle_http_exception``),
    completed: a message always (webargs' 422 in our words, else the error's own
    description), and the headers the exception carries (Allow on 405, ...)."""
    payload, code, given_headers = answer
    if "message" not in payload:
        webargs_422 = code == 422 and "messages" in (getattr(error, "data", None) or {})
        message = VALIDATION_MESSAGE if webargs_422 else error.description
        payload = {"code": payload["code"], "status": payload["status"], "message": message} | {
            name: value for name, value in payload.items() if name not in ("code", "status")
        }
    headers = dict(given_headers or {})
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


def register_error_handlers(app: Flask, api) -> None:
    """Domain errors and unexpected exceptions; HTTP errors are the Api's
    (flask-smorest registers its handler for them)."""

    @app.errorhandler(domain.DomainError)
    def handle_domain_error(exc: domain.DomainError):
        return domain_error_response(exc)

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return api.handle_http_exception(exc)
        if current_app.config.get("PROPAGATE_EXCEPTIONS"):
            raise exc
        # Logged with its traceback for operators; the client sees only the envelope.
        log.exception("unhandled exception")
        return api.handle_http_exception(InternalServerError())
