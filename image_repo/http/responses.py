"""Response helpers shared by endpoints: ETags and binary image responses."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

import marshmallow as ma
from flask import current_app, request
from werkzeug.http import quote_etag

from image_repo.domain.errors import PreconditionFailed
from image_repo.imaging.formats import ACCEPTED_FORMATS, OUTPUT_FORMATS

BINARY = {"schema": {"type": "string", "format": "binary"}}
# Any of the image types, for clients that read a body as plain bytes: code
# generators (openapi-python-client among them) know no image/* media type
# and return bytes only for this one. The body itself is always served with
# its image type in Content-Type.
ANY_BYTES = "application/octet-stream"

ORIGINAL_MEDIA_TYPES = tuple(dict.fromkeys(f.mime_type for f in ACCEPTED_FORMATS.values()))
RENDITION_MEDIA_TYPES = tuple(dict.fromkeys(f.mime_type for f in OUTPUT_FORMATS.values()))


def binary_responses(media_types: Iterable[str], what: str, headers: dict) -> dict:
    """The responses of an operation that answers image bytes of ``media_types``."""
    media_types = tuple(media_types)
    content = {media_type: BINARY for media_type in (*media_types, ANY_BYTES)}
    listed = ", ".join(f"`{media_type}`" for media_type in media_types)
    return {
        "200": {
            "description": f"{what} `Content-Type` says which image type it is: {listed}. "
            f"`{ANY_BYTES}` stands for any of them, for clients that take the body as bytes.",
            "content": content,
            "headers": headers,
        },
        "206": {
            "description": "The byte range asked for in `Range` (`Content-Range` says which).",
            "content": content,
        },
        "304": {"description": "Not modified: the copy you hold is current."},
        "307": {
            "description": "With presigned S3 redirects configured: the bytes are at "
            "`Location`, for a few minutes.",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
    }


ORIGINAL_RESPONSES = binary_responses(
    ORIGINAL_MEDIA_TYPES,
    "The file exactly as uploaded.",
    {
        "ETag": {"schema": {"type": "string"}, "description": "Strong validator."},
        "Last-Modified": {"schema": {"type": "string"}},
        "Content-Disposition": {
            "schema": {"type": "string"},
            "description": "The uploaded file name with the extension of the image's format "
            "(`evil.html` holding a PNG is `evil.png`); `attachment` with `download=true`.",
        },
    },
)

RENDITION_RESPONSES = binary_responses(
    RENDITION_MEDIA_TYPES,
    "The rendition, in `format` (else the service's default format).",
    {
        "ETag": {"schema": {"type": "string"}, "description": "Strong validator."},
        "X-Rendition-Cache": {
            "schema": {"type": "string", "enum": ["hit", "miss"]},
            "description": "`miss` when this request made the rendition.",
        },
    },
)


class IfMatchHeader(ma.Schema):
    """Documents If-Match (werkzeug parses it); passed to views as ``if_match``."""

    if_match = ma.fields.String(
        data_key="If-Match",
        load_default=None,
        metadata={
            "description": "The ETag you read: the update is refused (412) if it changed. "
            "Compared strongly: a weak (`W/`) or unparseable value never matches (412); "
            "`*` matches any current version. Without the header the update always applies."
        },
    )


class IfNoneMatchHeader(ma.Schema):
    if_none_match = ma.fields.String(
        data_key="If-None-Match",
        load_default=None,
        metadata={"description": "An ETag you hold: 304 when it still matches."},
    )


NOT_MODIFIED = "Not modified: the ETag sent in If-None-Match is current. No body."


class FileRequestHeaders(IfNoneMatchHeader):
    range = ma.fields.String(
        data_key="Range",
        load_default=None,
        metadata={
            "description": "A byte range, e.g. `bytes=0-1023` (206; 416 when it lies beyond "
            "the end). A Range that cannot be used (malformed, another unit, several ranges) "
            "is ignored: 200 with the whole body."
        },
    )


ETAG_HEADER = {
    "ETag": {"schema": {"type": "string"}, "description": "Strong validator of this version."}
}


def with_etag(body, etag: str, status: int = 200):
    """A flask-smorest return value carrying a strong ETag.

    A GET or HEAD whose If-None-Match holds the ETag (weak comparison, as
    RFC 9110 13.1.2 asks) gets 304 with the ETag and no body instead.
    """
    conditional = status == 200 and request.method in ("GET", "HEAD")
    if conditional and request.if_none_match.contains_weak(etag):
        response = current_app.response_class(status=304)
        response.set_etag(etag)
        return response
    return body, status, {"ETag": quote_etag(etag)}


def representation_etag(schema: ma.Schema, obj) -> str:
    """A strong ETag for what ``schema`` makes of ``obj``: changes whenever the JSON does."""
    dumped = json.dumps(schema.dump(obj), sort_keys=True, default=str)
    return hashlib.sha256(dumped.encode()).hexdigest()[:32]


def if_match_tags() -> set[str] | None:
    """The ETags If-Match may match (``{"*"}`` for a star), or None without the header.

    If-Match compares strongly (RFC 9110 13.1.1): a weak tag never matches,
    so it is left out, and a header with no usable tag (``W/"..."``,
    ``, ,``, empty) gives an empty set, which nothing matches (412). Only an
    absent header means "no precondition".
    """
    if "If-Match" not in request.headers:
        return None
    if_match = request.if_match
    if if_match.star_tag:
        return {"*"}
    return set(if_match.as_set())


def check_if_match(current_etag: str, what: str) -> None:
    """Refuse (412) a request whose If-Match does not hold ``current_etag``."""
    tags = if_match_tags()
    if tags is not None and "*" not in tags and current_etag not in tags:
        raise PreconditionFailed(f"The {what} changed since you read it (ETag mismatch).")
