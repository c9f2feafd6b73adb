import marshmallow as ma
from marshmallow import validate

from image_repo.domain.tenancy import MAX_BYTES_QUOTA, MAX_IMAGES_QUOTA
from image_repo.http.fields import Text
from image_repo.http.keys.schemas import NewKeySchema

# No quotas: a sample of 0 would be a tenant that may store nothing.
TENANT_CREATE_EXAMPLE = {"name": "acme"}


class TenantCreateSchema(ma.Schema):
    name = Text(
        required=True,
        validate=[
            validate.Length(min=1, max=100),
            validate.Regexp(
                r"^\s*[A-Za-z0-9][A-Za-z0-9 ._-]*\s*$",
                error="Letters, digits, spaces, dots, dashes or underscores, "
                "starting with a letter or digit.",
            ),
        ],
        metadata={"description": "Unique name of the tenant.", "example": "acme"},
    )
    max_images = ma.fields.Integer(
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_IMAGES_QUOTA),
        metadata={"description": "Quota: most images the tenant may keep (none: unlimited)."},
    )
    max_bytes = ma.fields.Integer(
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_BYTES_QUOTA),
        metadata={"description": "Quota: most bytes of originals (none: unlimited)."},
    )


class TenantSchema(ma.Schema):
    tenant_id = ma.fields.String(required=True, attribute="id")
    name = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    max_images = ma.fields.Integer(allow_none=True, required=True)
    max_bytes = ma.fields.Integer(allow_none=True, required=True)


class NewTenantSchema(TenantSchema):
    admin_key = ma.fields.Nested(
        NewKeySchema,
        required=True,
        metadata={"description": "The tenant's first admin key; its secret is shown only here."},
    )


class TenantListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(TenantSchema), required=True)
