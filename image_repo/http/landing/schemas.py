import marshmallow as ma
from marshmallow import validate

from image_repo.http.fields import Text


class LandingQuerySchema(ma.Schema):
    name = Text(
        load_default="guest",
        validate=validate.Length(min=1, max=100),
        # No example: Swagger UI would send it in place of the default.
        metadata={"description": "Who to greet (1 to 100 characters), e.g. `Ada`."},
    )


class LandingSchema(ma.Schema):
    hello = ma.fields.String(
        required=True, metadata={"description": "The name greeted.", "example": "Ada"}
    )
    info = ma.fields.String(required=True, metadata={"description": "What this service is."})
