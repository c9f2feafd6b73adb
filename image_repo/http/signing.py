"""Signed image URLs on the HTTP side: checking one in place of a key, and handing them out.

``signed_principal`` is what ``http.auth`` asks when a request carries no key
but a signature: expiry and shape first, then one query for the URL secret
and the signing key's row, the HMAC, and whether that key still works. The
principal it gives may only read, and only the operations in
``SIGNABLE_OPERATIONS``: the signature covers the method, path and query, so
a signed URL opens exactly one request. The rendition front checks the same
way (``http.front``), in its own single query.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app, request
from flask_smorest import abort

from image_repo.db.models import ApiKey
from image_repo.db.types import utcnow
from image_repo.domain import signing
from image_repo.domain.permissions import IMAGES_READ
from image_repo.domain.tenancy import Principal, key_row_is_active, key_row_query
from image_repo.http.context import current_services
from image_repo.http.sessions import db_session

# Operations a signed URL may open (reading an image's bytes, nothing else).
SIGNABLE_OPERATIONS = frozenset({"getImageFile", "getThumbnail", "renderImage"})
BAD_SIGNATURE = (
    "This signed URL is not valid: it has expired or been altered, or the key that "
    "signed it no longer works."
)


def signed_query_of(query_string: bytes | str) -> signing.SignedRequest | None:
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    try:
        return signing.parse_signed(text)
    except ValueError:
        abort(403, message=BAD_SIGNATURE)


def signed_principal(operation_id: str) -> Principal | None:
    """The principal of a signed request (403 when the signature does not hold);
    None when the request carries no signature."""
    signed = signed_query_of(request.query_string)
    if signed is None:
        return None
    now = time.time()
    if operation_id not in SIGNABLE_OPERATIONS or signed.expires <= now:
        abort(403, message=BAD_SIGNATURE)  # before any lookup
    secret = signing.current_secret_query().scalar_subquery().label("url_secret")
    row = (
        db_session()
        .execute(key_row_query().add_columns(secret).where(ApiKey.id == signed.key_id))
        .first()
    )
    if (
        row is None
        or row.url_secret is None
        or not signed.verify(row.url_secret, request.method, request.path, now)
        or not key_row_is_active(row, utcnow())
    ):
        abort(403, message=BAD_SIGNATURE)
    permissions = current_services().group_permissions.get(row.group, frozenset())
    return Principal(
        tenant_id=row.tenant_id,
        key_id=row.id,
        group=row.group,
        permissions=permissions & {IMAGES_READ},
    )


def signed_max_age() -> int | None:
    """Seconds the current (signed) request's URL has left; None for a keyed request."""
    signed = signed_query_of(request.query_string)
    if signed is None:
        return None
    return max(0, signed.expires - int(time.time()))


# --- handing them out -------------------------------------------------------------


@dataclass(frozen=True)
class UrlSigner:
    """Signs URLs for one key, with the current secret, read once."""

    secret: str
    key_id: str
    base: str  # scheme, host and script root

    @classmethod
    def for_key(cls, key_id: str) -> UrlSigner:
        return cls(
            signing.current_secret(db_session()),
            key_id,
            request.host_url.rstrip("/") + request.script_root,
        )

    def url(self, path: str, params: dict, expires: int) -> str:
        query = signing.signed_query(self.secret, path, params, expires=expires, key_id=self.key_id)
        return f"{self.base}{path}?{query}"


# The renditions the `urls` object names (the gallery's thumbnail and large view).
PREVIEW_SIDE = 1600
STANDARD_THUMBNAIL = "thumb"


def image_urls(signer: UrlSigner, image_id: str, expires: int) -> dict:
    base = f"/images/{image_id}"
    return {
        "original": signer.url(f"{base}/file", {}, expires),
        "thumbnail": signer.url(f"{base}/thumbnail", {"size": STANDARD_THUMBNAIL}, expires),
        "preview": signer.url(
            f"{base}/render", {"width": PREVIEW_SIDE, "height": PREVIEW_SIDE}, expires
        ),
        "expires_at": datetime.fromtimestamp(expires, UTC),
    }


def attach_urls(models: list, key_id: str) -> None:
    """Give each ImageModel its ``urls`` (one secret read, one expiry for the lot)."""
    signer = UrlSigner.for_key(key_id)
    expires = signing.bucketed_expiry(time.time(), current_app.config["SIGNED_URL_TTL"])
    for model in models:
        model.urls = image_urls(signer, model.id, expires)
