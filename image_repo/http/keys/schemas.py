import marshmallow as ma
from marshmallow import validate

from image_repo.http.fields import Text, UTCDateTime

KEY_ID = {"description": "Public id of the key.", "example": "key_3fj2k7d4a6s7d6f5g4h3"}


# No expires_at: a sample time would be "now", a key that expires at once.
KEY_CREATE_EXAMPLE = {"group": "reader", "name": "gallery website"}


class KeyCreateSchema(ma.Schema):
    group = Text(
        required=True,
        validate=validate.Length(min=1, max=32),
        metadata={"description": "Group deciding what the key may do.", "example": "reader"},
    )
    name = Text(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "A label to tell keys apart.", "example": "gallery website"},
    )
    expires_at = UTCDateTime(
        allow_none=True,
        metadata={"description": "When the key stops working (UTC ISO-8601 with offset)."},
    )


class KeySchema(ma.Schema):
    key_id = ma.fields.String(required=True, attribute="id", metadata=KEY_ID)
    name = ma.fields.String(required=True)
    group = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    expires_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    last_used_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    revoked_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class NewKeySchema(KeySchema):
    api_key = ma.fields.String(
        required=True,
        metadata={"description": "The secret key. Shown only this once: store it now."},
    )


class KeyListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(KeySchema), required=True)


class WhoAmISchema(ma.Schema):
    tenant_id = ma.fields.String(required=True)
    tenant_name = ma.fields.String(required=True)
    key_id = ma.fields.String(required=True, metadata=KEY_ID)
    group = ma.fields.String(required=True)
    permissions = ma.fields.List(ma.fields.String(), required=True)
