import marshmallow as ma
from marshmallow import validate

from image_repo.http.fields import Text
from image_repo.http.images.schemas import PageQuerySchema

NAME = Text(
    required=True,
    validate=validate.Length(min=1, max=200),
    metadata={"description": "Unique name within the tenant.", "example": "Holidays 2024"},
)


COLLECTION_ID = "col_a2b3c4d5e6f7g2h3j4k5"
COLLECTION_CREATE_EXAMPLE = {"name": "Holidays 2024"}
COLLECTION_UPDATE_EXAMPLE = {"name": "Summer 2024"}


class CollectionCreateSchema(ma.Schema):
    name = NAME
    description = Text(allow_none=True, validate=validate.Length(max=5000))


class CollectionUpdateSchema(ma.Schema):
    name = Text(validate=validate.Length(min=1, max=200))
    description = Text(allow_none=True, validate=validate.Length(max=5000))


class CollectionSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata={"example": COLLECTION_ID})
    name = ma.fields.String(required=True)
    description = ma.fields.String(allow_none=True, required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(required=True)
    image_count = ma.fields.Integer(required=True)


class CollectionPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CollectionSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


class CollectionListQuerySchema(PageQuerySchema):
    pass


class MembershipSchema(ma.Schema):
    collection_id = ma.fields.String(required=True)
    image_id = ma.fields.String(required=True)
    added = ma.fields.Boolean(
        required=True,
        metadata={"description": "False when the image was in the collection already."},
    )
