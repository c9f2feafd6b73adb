"""Project subclasses of flask-smorest's Api and Blueprint.

``Blueprint.operation`` is the one way to expose an operation: it gives the
operation its stable ``operationId``, declares who may call it (a permission,
or public), and documents the error responses that follow from both. The
access declaration is read back by ``web.access`` on every request, so what
the spec says is what is enforced; a route that declares nothing is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus

import flask_smorest
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict

from .errors import ErrorSchema, error_payload

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


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        return error_payload(error)

    def _register_pagination_header(self):
        """Our lists page with cursors in the body; no X-Pagination header to document."""

    def _init_spec(self, *args, **kwargs):
        super()._init_spec(*args, **kwargs)
        for name, scheme in SECURITY_SCHEMES.items():
            self.spec.components.security_scheme(name, scheme)


class ArgumentsParser(FlaskParser):
    """webargs' Flask parser, plus ``multipart``: form fields and files in one schema.

    flask-smorest's ``files`` location drops form fields and stacking two
    ``arguments`` breaks Swagger UI's upload form; one location holding both
    gives one multipart/form-data body in the spec that every client can drive.
    """

    __location_map__ = {**FlaskParser.__location_map__, "multipart": "load_multipart"}

    def load_multipart(self, req, schema):
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)


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
        errors: Iterable[int] = (),
        public_when: str | None = None,
    ) -> Callable[[Callable], Callable]:
        """Declare an operation's id, its access and its error responses.

        ``permission`` is a permission name from the group map, or ``PUBLIC``.
        ``public_when`` names a setting that, when true, makes it public.
        ``errors`` lists the other error statuses the operation can answer
        (422 for bad parameters is added by flask-smorest itself).
        """
        access = Access(permission, operation_id, public_when)
        codes = set(errors)
        manual_doc: dict = {"operationId": operation_id}
        if access.public:
            manual_doc["security"] = []
        else:
            # With public_when the key is optional: {} means "no key".
            manual_doc["security"] = ([{}] if public_when else []) + SECURITY_REQUIREMENT
            manual_doc["x-permission"] = permission
            codes |= {401, 403, 429}

        def decorator(func: Callable) -> Callable:
            for code in sorted(codes, reverse=True):
                func = self.alt_response(code, response=_response_name(code))(func)
            func = self.doc(**manual_doc)(func)
            setattr(func, ACCESS_ATTR, access)
            return func

        return decorator


def _response_name(code: int) -> str:
    return HTTPStatus(code).name
