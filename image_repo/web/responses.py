"""Response helpers shared by endpoints: ETags and binary image responses."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from werkzeug.http import quote_etag

BINARY = {"schema": {"type": "string", "format": "binary"}}

BINARY_IMAGE_RESPONSES = {
    "200": {
        "description": "The image bytes.",
        "content": {"image/*": BINARY},
        "headers": {
            "ETag": {"schema": {"type": "string"}, "description": "Strong validator."},
            "Last-Modified": {"schema": {"type": "string"}},
            "Content-Disposition": {"schema": {"type": "string"}},
        },
    },
    "206": {"description": "The requested byte range.", "content": {"image/*": BINARY}},
    "304": {"description": "Not modified since the copy you hold."},
}


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
