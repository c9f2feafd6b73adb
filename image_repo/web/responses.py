"""Response helpers shared by endpoints: ETags and binary image responses."""

from __future__ import annotations

from collections.abc import Iterable

import marshmallow as ma
from flask import request
from werkzeug.http import quote_etag

from ..imaging.formats import ACCEPTED_FORMATS, OUTPUT_FORMATS

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
            "description": "The uploaded file name; `attachment` with `download=true`.",
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
        metadata={"description": "The ETag you read: the update is refused (412) if it changed."},
    )


class IfNoneMatchHeader(ma.Schema):
    if_none_match = ma.fields.String(
        data_key="If-None-Match",
        load_default=None,
        metadata={"description": "An ETag you hold: 304 when it still matches."},
    )


class FileRequestHeaders(IfNoneMatchHeader):
    range = ma.fields.String(
        data_key="Range",
        load_default=None,
        metadata={
            "description": "A byte range, e.g. `bytes=0-1023` (206; 416 when unsatisfiable)."
        },
    )


ETAG_HEADER = {
    "ETag": {"schema": {"type": "string"}, "description": "Strong validator of this version."}
}


def with_etag(body, etag: str, status: int = 200):
    """A flask-smorest return value carrying a strong ETag."""
    return body, status, {"ETag": quote_etag(etag)}


def if_match_tags() -> set[str] | None:
    """ETags from If-Match (``{"*"}`` for a star), or None when the header is absent."""
    if_match = request.if_match
    if if_match.star_tag:
        return {"*"}
    tags = set(if_match.as_set())
    return tags or None
