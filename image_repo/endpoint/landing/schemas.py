import marshmallow as ma
from marshmallow import validate


class LandingQuerySchema(ma.Schema):
    name = ma.fields.String(
        load_default="guest",
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Who to greet (1 to 100 characters).", "example": "Ada"},
    )


class LandingSchema(ma.Schema):
    hello = ma.fields.String(
        required=True, metadata={"description": "The name greeted.", "example": "Ada"}
    )
    info = ma.fields.String(required=True, metadata={"description": "What this service is."})
