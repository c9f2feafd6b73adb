"""Signed, expiring image URLs (the way imgproxy, S3 and CDNs sign theirs).

A signed URL is the image's ordinary path (``/images/{id}/file``,
``/thumbnail``, ``/render``) with three more query parameters:

* ``exp``: when it stops working, in Unix seconds;
* ``kid``: the id of the API key that asked for it: the URL works only while
  that key does (revoked, expired or its tenant suspended: refused at once);
* ``sig``: HMAC-SHA256, base64url, over the method, the path, the other query
  parameters sorted (so their order does not matter) and ``exp``, keyed with
  the server's URL secret.

The secret lives in the database (``url_signing_keys``), so every instance
checks with the same one; rotating it (``image-repo secrets rotate-url-key``)
stops every URL signed before, at once. Checking needs no lookup but the
secret and the key's row, read together: expiry and shape are checked first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from image_repo.db.models import UrlSigningKey
from image_repo.db.types import utcnow
from image_repo.domain.ids import new_id

EXPIRES, KEY_ID, SIGNATURE = "exp", "kid", "sig"
SIGNING_PARAMETERS = (EXPIRES, KEY_ID, SIGNATURE)
KEY_ID_PATTERN = re.compile(r"^key_[a-z2-7]{20}$")
SIGNATURE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
# Methods a signed URL may be used with; HEAD is signed as GET.
SIGNED_METHODS = {"GET": "GET", "HEAD": "GET"}


def current_secret_query():
    """SELECT of the one current secret (a scalar subquery can join it to others)."""
    return select(UrlSigningKey.secret).order_by(UrlSigningKey.created_at.desc()).limit(1)


def current_secret(session: Session) -> str:
    secret = session.scalar(current_secret_query())
    if secret is None:  # the migration made one; an operator may have deleted it
        secret = rotate_secret(session)
    return secret


def rotate_secret(session: Session) -> str:
    """A new secret replaces the old one: every URL signed before stops working."""
    session.execute(delete(UrlSigningKey))
    key = UrlSigningKey(id=new_id("usk"), secret=secrets.token_hex(32), created_at=utcnow())
    session.add(key)
    session.flush()
    return key.secret


def _message(method: str, path: str, pairs: Iterable[tuple[str, str]], expires: int) -> bytes:
    query = urlencode(sorted((k, v) for k, v in pairs if k not in (EXPIRES, SIGNATURE)))
    return f"{SIGNED_METHODS.get(method, method)}\n{path}\n{query}\n{expires}".encode()


def signature(
    secret: str, method: str, path: str, pairs: Iterable[tuple[str, str]], expires: int, key_id
) -> str:
    """The ``sig`` of a request; ``pairs`` are its query parameters (signing ones ignored)."""
    pairs = [*(p for p in pairs if p[0] not in SIGNING_PARAMETERS), (KEY_ID, key_id)]
    digest = hmac.new(
        secret.encode(), _message(method, path, pairs, expires), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_query(
    secret: str, path: str, params: dict[str, str], *, expires: int, key_id: str
) -> str:
    """The query string of a signed GET of ``path`` with ``params``."""
    pairs = [(k, str(v)) for k, v in params.items()]
    sig = signature(secret, "GET", path, pairs, expires, key_id)
    return urlencode([*pairs, (EXPIRES, str(expires)), (KEY_ID, key_id), (SIGNATURE, sig)])


@dataclass(frozen=True)
class SignedRequest:
    """The signing parameters of a request, well-formed (not yet verified)."""

    expires: int
    key_id: str
    signature: str
    pairs: tuple[tuple[str, str], ...]

    def verify(self, secret: str, method: str, path: str, now: float) -> bool:
        if self.expires <= now:
            return False
        expected = signature(secret, method, path, self.pairs, self.expires, self.key_id)
        return hmac.compare_digest(expected, self.signature)


def parse_signed(query_string: str) -> SignedRequest | None:
    """The signing parameters of a query string; None when it carries none.

    Raises ValueError when it carries some, badly formed or repeated.
    """
    pairs = parse_qsl(query_string, keep_blank_values=True)
    found = [(k, v) for k, v in pairs if k in SIGNING_PARAMETERS]
    if not found:
        return None
    given = dict(found)
    if len(given) != len(found) or set(given) != set(SIGNING_PARAMETERS):
        raise ValueError("a signed URL has exp, kid and sig once each")
    expires = given[EXPIRES]
    if not expires.isdigit() or len(expires) > 12:
        raise ValueError("bad exp")
    if not KEY_ID_PATTERN.match(given[KEY_ID]) or not SIGNATURE_PATTERN.match(given[SIGNATURE]):
        raise ValueError("bad kid or sig")
    return SignedRequest(int(expires), given[KEY_ID], given[SIGNATURE], tuple(pairs))


def strip_signing(query_string: str) -> str:
    """``query_string`` without the signing parameters, the others untouched and in order."""
    if SIGNATURE not in query_string:
        return query_string
    kept = [
        part for part in query_string.split("&") if part.partition("=")[0] not in SIGNING_PARAMETERS
    ]
    return "&".join(kept)


def bucketed_expiry(now: float, ttl: int) -> int:
    """An expiry at most ``ttl`` from now, rounded down to a quarter of ``ttl``:
    URLs asked for again within that quarter come out the same (cacheable)."""
    bucket = max(1, ttl // 4)
    return int((now + ttl) // bucket * bucket)
