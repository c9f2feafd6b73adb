"""Project subclasses of flask-smorest's Api and Blueprint.

``Blueprint.operation`` is the one way to expose an operation: it gives the
operation its stable ``operationId``, declares who may call it (a permission,
or public), and documents the error responses that follow from both, each
with an example of what the service says then. The access declaration is
read back by ``http.access`` on every request, so what the spec says is what
is enforced; a route that declares nothing is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import wraps
from http import HTTPStatus
from typing import NoReturn

import flask_smorest
from flask import request
from flask_smorest import abort
from limits import parse
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict
from werkzeug.exceptions import InternalServerError, default_exceptions

from image_repo.config import SETTINGS_BY_KEY
from image_repo.http.errors import (
    BAD_KEY_MESSAGE,
    FORBIDDEN_MESSAGE,
    NO_KEY_MESSAGE,
    VALIDATION_MESSAGE,
    ErrorExample,
    ErrorSchema,
    complete_envelope,
    error_content,
)

PUBLIC = "public"
SECURITY_SCHEMES = {
    "ApiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key, as `X-API-Key: <key>`.",
    },
    "BearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "The same API key, as `Authorization: Bearer <key>`.",
    },
}
SECURITY_REQUIREMENT = [{"ApiKeyHeader": []}, {"BearerKey": []}]


@dataclass(frozen=True)
class Access:
    """Who may call an operation: ``permission`` is a name, or ``PUBLIC``."""

    permission: str
    operation_id: str
    # A config key that, when true, opens the operation to everyone.
    public_when: str | None = None

    @property
    def public(self) -> bool:
        return self.permission == PUBLIC


ACCESS_ATTR = "_image_repo_access"


def access_of(func: Callable) -> Access | None:
    return getattr(func, ACCESS_ATTR, None)


def mark_public(func: Callable, operation_id: str | None = None) -> Callable:
    """Mark a plain view (docs, assets) as callable without a key."""
    setattr(func, ACCESS_ATTR, Access(PUBLIC, operation_id or func.__name__))
    return func


UNEXPECTED_ERROR = {
    "description": "Any other error, in the same envelope: 500 is a bug (its details are "
    "in the service's log, never in the answer).",
    "content": error_content(500, [ErrorExample(InternalServerError.description)]),
}


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema
    # The `default` response of every operation, with an example of its own.
    DEFAULT_ERROR_RESPONSE_NAME = "UNEXPECTED_ERROR"

    def handle_http_exception(self, error):
        return complete_envelope(error, super().handle_http_exception(error))

    def _register_pagination_header(self):
        """Our lists page with cursors in the body; no X-Pagination header to document."""

    def _init_spec(self, *args, **kwargs):
        super()._init_spec(*args, **kwargs)
        for name, scheme in SECURITY_SCHEMES.items():
            self.spec.components.security_scheme(name, scheme)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, UNEXPECTED_ERROR)


class ArgumentsParser(FlaskParser):
    """webargs' Flask parser, plus ``multipart``: form fields and files in one schema.

    flask-smorest's ``files`` location drops form fields and stacking two
    ``arguments`` breaks Swagger UI's upload form; one location holding both
    gives one multipart/form-data body in the spec that every client can drive.
    """

    __location_map__ = {**FlaskParser.__location_map__, "multipart": "load_multipart"}
    # webargs ignores unknown query parameters by default, so a misspelt
    # `limt=5` went unnoticed; None lets the schema decide, and marshmallow
    # raises on unknown fields (422 naming them), as for JSON bodies.
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": None,
        "querystring": None,
    }

    def load_multipart(self, req, schema):
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            # Python's decoder gives up near its recursion limit (about 1000 levels).
            _bad_json("it is nested too deeply")

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        undecodable = error if isinstance(error, UnicodeDecodeError) else error.__cause__
        if isinstance(undecodable, UnicodeDecodeError):
            _bad_json(f"it is not UTF-8 (byte {undecodable.start})")
        _bad_json(f"{error.msg} (line {error.lineno}, column {error.colno})")


def _bad_json(reason: str) -> NoReturn:
    abort(400, message=f"The request body is not valid JSON: {reason}.", errors={"json": [reason]})


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ArgumentsParser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "multipart": "multipart/form-data",
    }

    def operation(
        self,
        operation_id: str,
        *,
        permission: str,
        errors: Mapping[int, ErrorExamples] | Iterable[int] = (),
        public_when: str | None = None,
    ) -> Callable[[Callable], Callable]:
        """Declare an operation's id, its access and its error responses.

        ``permission`` is a permission name from the group map, or ``PUBLIC``.
        ``public_when`` names a setting that, when true, makes it public.
        ``errors`` maps the other error statuses the operation can answer to
        what it says then: a message, an ``ErrorExample``, or several when a
        status has more than one cause. A bare status shows werkzeug's wording.
        401, 403 and 429 follow from the access; 422 for bad arguments is
        documented by ``arguments`` (give its example here). An operation
        without query parameters refuses any with 422, as one with a query
        schema refuses those it does not know.
        """
        access = Access(permission, operation_id, public_when)
        declared = dict(errors) if isinstance(errors, Mapping) else dict.fromkeys(errors)
        manual_doc: dict = {"operationId": operation_id}
        if access.public:
            manual_doc["security"] = []
        else:
            # With public_when the key is optional: {} means "no key".
            manual_doc["security"] = ([{}] if public_when else []) + SECURITY_REQUIREMENT
            manual_doc["x-permission"] = permission

        def decorator(func: Callable) -> Callable:
            responses = {} if access.public else _access_responses(permission, func.__name__)
            # The statuses `arguments` documents (422), shown with webargs' wording.
            for code in getattr(func, "_apidoc", {}).get("arguments", {}).get("responses", {}):
                responses[code] = _error_response(code, [ErrorExample(VALIDATION_MESSAGE)])
            if not _reads_query(func):
                func = _refuse_query(func)
                responses.setdefault(422, NO_QUERY_PARAMETERS)
            for code, given in declared.items():
                responses[code] = _error_response(code, _examples(code, given))
            doc = {**manual_doc, "responses": dict(sorted(responses.items()))}
            func = self.doc(**doc)(func)
            setattr(func, ACCESS_ATTR, access)
            return func

        return decorator


ErrorExamples = str | ErrorExample | Sequence[ErrorExample] | None

# What an error status means, whatever the operation.
ERROR_DESCRIPTIONS = {
    401: "No API key, or one that is unknown, revoked or expired.",
    404: "Not found among the tenant's own.",
    409: "In conflict with what is stored.",
    412: "`If-Match` does not match: it changed since you read it.",
    413: "Too large.",
    415: "Not an image in an accepted format.",
    416: "The range lies outside the file.",
    422: "Invalid parameters or body: `errors` says which, per input location and field.",
    503: "A backend (database or storage) is not available; try again later.",
}
RATE_LIMIT_HEADERS = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds until the budget refills.",
    },
    "X-RateLimit-Limit": {"schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Unix time of the refill."},
}
CHALLENGE_HEADER = {
    "WWW-Authenticate": {"schema": {"type": "string"}, "description": '`Bearer realm="image-repo"`'}
}
READ_VIEWS = frozenset({"get", "head"})


def _access_responses(permission: str, view_name: str) -> dict[int, dict]:
    """401, 403 and 429 of an operation that needs ``permission``."""
    budget = SETTINGS_BY_KEY["RATELIMIT_READ" if view_name in READ_VIEWS else "RATELIMIT_WRITE"]
    kind = "read" if view_name in READ_VIEWS else "write"
    return {
        401: _error_response(
            401,
            [
                ErrorExample(NO_KEY_MESSAGE, summary="No key"),
                ErrorExample(BAD_KEY_MESSAGE, summary="Unknown, revoked or expired key"),
            ],
            headers=CHALLENGE_HEADER,
        ),
        403: _error_response(
            403,
            [ErrorExample(FORBIDDEN_MESSAGE.format(permission=permission))],
            description=f"The key's group lacks the permission `{permission}`.",
        ),
        429: _error_response(
            429,
            # flask-limiter says which limit was reached; this is the default one.
            [ErrorExample(str(parse(budget.default)))],
            description=f"The key's {kind} budget (`{budget.env_name}`, by default "
            f"{budget.default}) is spent: retry after `Retry-After` seconds.",
            headers=RATE_LIMIT_HEADERS,
        ),
    }


def _examples(code: int, given: ErrorExamples) -> list[ErrorExample]:
    if given is None:
        return [ErrorExample(default_exceptions[code].description)]
    if isinstance(given, str):
        return [ErrorExample(given)]
    if isinstance(given, ErrorExample):
        return [given]
    return list(given)


def _error_response(
    code: int,
    examples: Sequence[ErrorExample],
    *,
    description: str | None = None,
    headers: dict | None = None,
) -> dict:
    response = {
        "description": description or ERROR_DESCRIPTIONS.get(code) or HTTPStatus(code).phrase,
        "content": error_content(code, examples),
    }
    if headers:
        response["headers"] = headers
    return response


# What an operation without query parameters answers to one (as others answer
# a parameter they do not know): `errors.query` names it.
NO_QUERY_PARAMETERS = _error_response(
    422,
    [ErrorExample(VALIDATION_MESSAGE)],
    description="A query parameter, which this operation takes none of: `errors.query` names it.",
)


def _reads_query(func: Callable) -> bool:
    parameters = getattr(func, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    return any(parameter["in"] == "query" for parameter in parameters)


def _refuse_query(func: Callable) -> Callable:
    """For an operation without query parameters: any parameter is unknown (422),
    as an operation with a query schema answers one it does not know."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        if request.args:
            abort(
                422,
                message=VALIDATION_MESSAGE,
                errors={"query": {name: ["Unknown field."] for name in request.args}},
            )
        return func(*args, **kwargs)

    return wrapper
