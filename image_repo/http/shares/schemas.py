import marshmallow as ma
from marshmallow import validate

from image_repo.http.fields import JsonBoolean, Text
from image_repo.http.images.schemas import PageQuerySchema

SHARE_ID = "shr_a2b3c4d5e6f7g2h3j4k5"
SHARE_CREATE_EXAMPLE = {
    "image_id": "img_k3j5h6g7f2d4s5a6q2w3",
    "expires_in": 604800,
    "label": "For grandma",
}


class ShareCreateSchema(ma.Schema):
    """One of image_id or collection_id."""

    image_id = Text(
        validate=validate.Length(max=32), metadata={"description": "The image to share."}
    )
    collection_id = Text(
        validate=validate.Length(max=32),
        metadata={"description": "The collection (album) to share, as a grid."},
    )
    expires_in = ma.fields.Integer(
        validate=validate.Range(min=1),
        metadata={
            "description": "Seconds the link works (default `IMAGE_REPO_SHARE_DEFAULT_TTL`, "
            "at most `IMAGE_REPO_SHARE_MAX_TTL`)."
        },
    )
    allow_original = JsonBoolean(
        load_default=False,
        metadata={
            "description": "Let visitors download the original files (default: renditions only)."
        },
    )
    password = Text(
        validate=validate.Length(min=1, max=200),
        load_only=True,
        metadata={"description": "Visitors must give it first (stored hashed)."},
    )
    label = Text(
        validate=validate.Length(max=200),
        metadata={"description": "A name for you, shown on the page too."},
    )


class ShareSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata={"example": SHARE_ID})
    kind = ma.fields.String(
        required=True, metadata={"description": "`image` or `collection`.", "example": "image"}
    )
    image_id = ma.fields.String(allow_none=True, required=True)
    collection_id = ma.fields.String(allow_none=True, required=True)
    label = ma.fields.String(allow_none=True, required=True)
    allow_original = ma.fields.Boolean(required=True)
    has_password = ma.fields.Boolean(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    expires_at = ma.fields.AwareDateTime(required=True)
    expired = ma.fields.Boolean(required=True)
    view_count = ma.fields.Integer(
        required=True, metadata={"description": "Page views (HTML or JSON) so far."}
    )
    last_viewed_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class NewShareSchema(ShareSchema):
    url = ma.fields.Url(
        required=True,
        metadata={
            "description": "The public link, shown only now (only a hash of its token is "
            "kept): anyone with it sees what it shows until it expires or is deleted.",
            "example": "https://images.example.org/s/0aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0u",
        },
    )


class SharePageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ShareSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


class ShareListQuerySchema(PageQuerySchema):
    pass
