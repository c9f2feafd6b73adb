"""Repeat rendition requests answered straight from the rendition store.

A stored rendition is a file whose URL never changes: the request that asks
for it again needs the key checked, the image found in the key's tenant and
the file sent, nothing more. This WSGI front does exactly that, in one SQL
query, for the plainest case only:

* GET or HEAD of ``/images/{id}/render`` or ``/images/{id}/thumbnail`` with a
  query string the full stack has already validated in this process (the
  front never parses parameters itself: it reuses what the view worked out);
* an API key in ``X-API-Key`` or ``Authorization: Bearer`` that is valid now,
  whose group may read images, and whose ``last_used_at`` is fresh; or, with
  no key, a signed URL (``domain.signing``) whose signature holds and whose
  key still works (the same query reads the URL secret);
* the image in that key's tenant, not in its trash, and its rendition in a
  local data folder;
* no ``Origin`` (CORS), ``Range`` or other conditional headers than
  ``If-None-Match``; and the key's read budget not spent (the front charges
  the same rate-limit counters as the full stack).

Everything else, every miss and every error goes to the Flask app untouched,
which answers it the long way: so there is one place for errors and the
front can only ever answer what the full stack would answer the same way
(a test compares the two, header by header). It logs, counts and times its
answers like the full stack, with the same operation ids.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable

from flask import Flask, current_app, request
from sqlalchemy import and_, bindparam
from werkzeug.http import http_date, parse_etags
from werkzeug.wsgi import wrap_file

from image_repo.db.driver_query import DriverQuery
from image_repo.db.models import ApiKey, Image
from image_repo.db.types import utcnow
from image_repo.domain.permissions import IMAGES_READ
from image_repo.domain.renditions import RenditionRef
from image_repo.domain.signing import (
    SignedRequest,
    current_secret_query,
    parse_signed,
    strip_signing,
)
from image_repo.domain.tenancy import (
    KEY_PATTERN,
    key_row_is_active,
    key_row_is_valid,
    key_row_query,
    last_used_is_stale,
)
from image_repo.domain.trash import NOT_TRASHED
from image_repo.http.auth import is_operator_key, key_from_headers
from image_repo.http.caching import (
    CACHE_CONTROL,
    CACHE_MAX_AGE,
    CACHE_RESULT_HEADER,
    VARY,
    signed_cache_control,
)
from image_repo.http.context import http_state, services_of
from image_repo.http.converters import ID_BODY
from image_repo.http.observability import operation_name, record_request, request_id_from
from image_repo.services.ratelimits import READ
from image_repo.storage import rendition_key

log = logging.getLogger(__name__)

PATH = re.compile(rf"^/images/(img_{ID_BODY})/(render|thumbnail)$")
# Request headers whose handling the front leaves to the full stack.
STEP_ASIDE_HEADERS = (
    "HTTP_ORIGIN",
    "HTTP_RANGE",
    "HTTP_IF_RANGE",
    "HTTP_IF_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
)
MEMO_SIZE = 4096  # distinct (route, query string) pairs remembered per process

Answer = tuple[str, list[tuple[str, str]], object | None, object]


class RenditionFront:
    def __init__(self, app: Flask, wsgi_app: Callable) -> None:
        self.app = app
        self.services = services_of(app)
        self.wsgi_app = wsgi_app
        self.enabled = app.config["RENDITION_FRONT"]
        self.served = 0  # answers given here (the rest went the full way)
        self._memo: dict[tuple[str, str], tuple[str, str]] = {}
        # kind -> (operation id, route) as the full stack logs them
        self._names: dict[str, tuple[str, str]] = {}
        self._memo_lock = threading.Lock()
        self._hits = self.services.metrics.rendition_cache.labels("hit")
        query = (
            key_row_query()
            .add_columns(Image.sha256)
            .outerjoin(
                Image,
                and_(
                    Image.tenant_id == ApiKey.tenant_id,
                    Image.id == bindparam("image_id"),
                    NOT_TRASHED,  # a trashed image's renditions are gone at once
                ),
            )
            .where(ApiKey.id == bindparam("key_id"))
        )
        engine = self.services.engine
        self._query = DriverQuery(engine, query)
        # A signed URL's: the same, with the URL secret (http.signing checks the same).
        self._signed_query = DriverQuery(
            engine,
            query.add_columns(current_secret_query().scalar_subquery().label("url_secret")),
        )

    # -- what the full stack teaches the front ----------------------------------

    def remember(self, kind: str, query_string: str, ref: RenditionRef, names) -> None:
        """The digest and type the view derived from this query (for any image),
        and the operation id and route the full stack logs such requests under."""
        known = (ref.digest, ref.mime_type)
        if self._memo.get((kind, query_string)) == known:
            return
        with self._memo_lock:
            if len(self._memo) >= MEMO_SIZE:
                del self._memo[next(iter(self._memo))]  # oldest first
            self._memo[(kind, query_string)] = known
            self._names[kind] = names

    # -- WSGI ---------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        answer = None
        if self.enabled:
            try:
                answer = self._answer(environ)
            except Exception as exc:  # a backend down, a file just collected: the
                # full stack meets the same trouble and answers it in the envelope
                log.debug("rendition front stepped aside: %r", exc)
        if answer is None:
            return self.wsgi_app(environ, start_response)
        status, headers, body, seen = answer
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        headers.append(("X-Request-ID", request_id))
        start_response(status, headers)
        self.served += 1
        kind, tenant_id, key_id = seen
        operation, route = self._names[kind]
        self._hits.inc()
        record_request(
            self.app,
            request_id=request_id,
            method=environ["REQUEST_METHOD"],
            route=route,
            operation=operation,
            status=int(status[:3]),
            duration=time.perf_counter() - started,
            tenant_id=tenant_id,
            key_id=key_id,
            remote_addr=environ.get("REMOTE_ADDR"),
        )
        if body is None:
            return []
        return wrap_file(environ, body)

    def _answer(self, environ: dict) -> Answer | None:
        """The response for a plain repeat request, or None to go the full way."""
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD"):
            return None
        match = PATH.match(environ.get("PATH_INFO", ""))
        if match is None or any(environ.get(h) for h in STEP_ASIDE_HEADERS):
            return None
        image_id, kind = match.groups()
        query_string = environ.get("QUERY_STRING", "")
        unsigned_query = strip_signing(query_string)
        known = self._memo.get((kind, unsigned_query))
        if known is None:
            return None
        api_key = key_from_headers(environ.get("HTTP_X_API_KEY"), environ.get("HTTP_AUTHORIZATION"))
        services = self.services
        store = services.blob_store
        if not store.has_local_files:
            return None
        signed = max_age = None
        if api_key is None:
            signed = self._signed(query_string)
            if signed is None:
                return None
            key_id = signed.key_id
        elif unsigned_query != query_string:
            return None  # a key and a signature: the full stack sorts that out
        else:
            key_match = KEY_PATTERN.match(api_key)
            if key_match is None or is_operator_key(self.app.config, api_key):
                return None
            key_id = key_match.group(1)
        query = self._signed_query if signed else self._query
        row = query.first({"key_id": key_id, "image_id": image_id})
        now = utcnow()
        if row is None or row.sha256 is None:
            return None
        if signed is not None:
            # Checked as http.signing checks it: the secret, this exact request, the key.
            if row.url_secret is None or not key_row_is_active(row, now):
                return None
            if not signed.verify(row.url_secret, method, environ["PATH_INFO"], time.time()):
                return None
            max_age = max(0, signed.expires - int(time.time()))
        elif not key_row_is_valid(row, api_key, now) or last_used_is_stale(row, now):
            return None  # (the full stack records a stale key's use)
        if IMAGES_READ not in services.group_permissions.get(row.group, ()):
            return None
        digest, mime_type = known
        etag = RenditionRef.etag_for(row.sha256, digest)
        seen = (kind, row.tenant_id, row.id)
        not_modified = parse_etags(environ.get("HTTP_IF_NONE_MATCH")).contains(etag)
        path = None
        if not not_modified:
            path = store.local_path(rendition_key(row.sha256, digest))
            if path is None:
                return None  # not made yet, or collected: the full stack makes it
        charge = services.budgets.charge(row.id, READ)  # what the full stack charges
        if charge is not None and not charge.allowed:
            return None  # over budget: the full stack answers 429
        budget = charge.headers() if charge is not None else []
        if not_modified:
            return "304 NOT MODIFIED", self._headers(etag, max_age) + budget, None, seen
        body = open(path, "rb")  # noqa: SIM115 - closed by the WSGI server
        stat = os.fstat(body.fileno())
        headers = [
            ("Content-Disposition", f"inline; filename={path.name}"),
            ("Content-Type", mime_type),
            ("Content-Length", str(stat.st_size)),
            ("Last-Modified", http_date(stat.st_mtime)),
            *self._headers(etag, max_age, with_expires=True),
            ("Date", http_date()),
            ("Accept-Ranges", "bytes"),
            (CACHE_RESULT_HEADER, "hit"),
            *budget,
        ]
        if method == "HEAD":
            body.close()
            body = None
        return "200 OK", headers, body, seen

    @staticmethod
    def _signed(query_string: str) -> SignedRequest | None:
        """A well-formed signature that has not expired (checked for real later)."""
        try:
            signed = parse_signed(query_string)
        except ValueError:
            return None
        return signed if signed is not None and signed.expires > time.time() else None

    def _headers(
        self, etag: str, max_age: int | None = None, *, with_expires: bool = False
    ) -> list[tuple[str, str]]:
        """``max_age``: what a signed URL has left (None: a keyed request)."""
        cache_control = CACHE_CONTROL if max_age is None else signed_cache_control(max_age)
        headers = [("ETag", f'"{etag}"'), ("Cache-Control", cache_control)]
        if with_expires:
            lifetime = CACHE_MAX_AGE if max_age is None else max_age
            headers.append(("Expires", http_date(time.time() + lifetime)))
        headers += [("Vary", ", ".join(VARY)), ("X-Content-Type-Options", "nosniff")]
        return headers


def install_rendition_front(app: Flask) -> None:
    front = RenditionFront(app, app.wsgi_app)
    app.wsgi_app = front
    http_state(app).rendition_front = front


def remember_rendition(ref: RenditionRef) -> None:
    """Called by the rendition views once a request's parameters proved valid."""
    front = http_state(current_app).rendition_front
    if front is not None and front.enabled:
        front.remember(
            request.path.rpartition("/")[2],  # what PATH calls the kind
            strip_signing(request.query_string.decode("latin-1")),
            ref,
            (operation_name(current_app, request.endpoint, request.method), request.url_rule.rule),
        )
