import marshmallow as ma
from marshmallow import validate

from image_repo.http.converters import ID_BODY
from image_repo.http.images.schemas import IMAGE_ID

MAX_SELECTION = 200


class SelectionQuerySchema(ma.Schema):
    ids = ma.fields.List(
        ma.fields.String(
            validate=validate.Regexp(f"^img_{ID_BODY}$", error="Not an image id."),
            metadata=IMAGE_ID,
        ),
        required=True,
        validate=validate.Length(min=1, max=MAX_SELECTION),
        metadata={
            "description": f"The images, 1 to {MAX_SELECTION}: repeat the parameter "
            "(`ids=img_...&ids=img_...`). In this order in the ZIP."
        },
    )


ZIP_RESPONSES = {
    "200": {
        "description": "A ZIP of the originals, exactly as uploaded, each under its file "
        "name (made unique: `a.jpg`, `a (2).jpg`). Streamed as it is built, so it has no "
        "`Content-Length`.",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            "Content-Disposition": {
                "schema": {"type": "string"},
                "description": "`attachment` with the archive's file name.",
            }
        },
    }
}
