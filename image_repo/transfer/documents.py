"""The archive's JSON documents, checked on the way in: an archive is input like an upload.

Only what an import uses is read; anything else in an entry is ignored, so
newer exporters may add fields. Every bound is the one the API applies.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from image_repo.domain.image_fields import MAX_TAG_LENGTH, MAX_TAGS
from image_repo.transfer.archive_format import FORMAT, VERSION

SHA256 = validate.Regexp(r"^[0-9a-f]{64}$", error="not a SHA-256 (64 lower-case hex digits)")
MEMBER_NAME = validate.Regexp(
    r"^(images\.json|albums\.json|originals/[0-9a-f]{64})$", error="not a member of this format"
)
MAX_MEMBERS = 10_000_000


class _Lenient(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE


class TenantEntry(_Lenient):
    name = ma.fields.String(required=True, validate=validate.Length(min=1, max=100))
    max_images = ma.fields.Integer(load_default=None, allow_none=True, strict=True)
    max_bytes = ma.fields.Integer(load_default=None, allow_none=True, strict=True)


class MemberEntry(_Lenient):
    name = ma.fields.String(required=True, validate=MEMBER_NAME)
    sha256 = ma.fields.String(required=True, validate=SHA256)
    bytes = ma.fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class ManifestDocument(_Lenient):
    format = ma.fields.String(required=True, validate=validate.Equal(FORMAT))
    version = ma.fields.Integer(required=True, strict=True, validate=validate.Equal(VERSION))
    tenant = ma.fields.Nested(TenantEntry, required=True)
    members = ma.fields.List(
        ma.fields.Nested(MemberEntry), required=True, validate=validate.Length(max=MAX_MEMBERS)
    )


class ImageEntry(_Lenient):
    id = ma.fields.String(required=True, validate=validate.Length(min=1, max=64))
    sha256 = ma.fields.String(required=True, validate=SHA256)
    filename = ma.fields.String(required=True, validate=validate.Length(max=1000))
    title = ma.fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    description = ma.fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=5000)
    )
    tags = ma.fields.List(
        ma.fields.String(validate=validate.Length(min=1, max=MAX_TAG_LENGTH)),
        load_default=list,
        validate=validate.Length(max=MAX_TAGS),
    )
    taken_at = ma.fields.AwareDateTime(load_default=None, allow_none=True)
    taken_at_offset = ma.fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(-24 * 60, 24 * 60)
    )
    uploaded_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(required=True)
    trashed_at = ma.fields.AwareDateTime(load_default=None, allow_none=True)
    version = ma.fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1))


class ImagesDocument(_Lenient):
    images = ma.fields.List(ma.fields.Nested(ImageEntry), required=True)


class MembershipEntry(_Lenient):
    image_id = ma.fields.String(required=True, validate=validate.Length(min=1, max=64))
    added_at = ma.fields.AwareDateTime(required=True)


class AlbumEntry(_Lenient):
    name = ma.fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = ma.fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=5000)
    )
    created_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(required=True)
    members = ma.fields.List(ma.fields.Nested(MembershipEntry), load_default=list)


class AlbumsDocument(_Lenient):
    albums = ma.fields.List(ma.fields.Nested(AlbumEntry), required=True)


def first_error(messages, path: str = "") -> str:
    """marshmallow's nested messages as one line: where, then what."""
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        return first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(messages, list) and messages:
        return (
            first_error(messages[0], path)
            if not isinstance(messages[0], str)
            else (f"{path}: {messages[0]}")
        )
    return f"{path}: {messages}"
