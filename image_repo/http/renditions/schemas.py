import marshmallow as ma
from marshmallow import validate

from image_repo.http.fields import Choice, JsonBoolean, Text
from image_repo.http.images.schemas import SignedUrlQuerySchema
from image_repo.imaging.formats import OUTPUT_FORMATS
from image_repo.imaging.render import FITS, GRAVITY_NAMES

FORMAT = Choice(
    [*OUTPUT_FORMATS, "jpg"],
    metadata={
        "description": "Output format, any case (default: the service's, webp unless configured)."
    },
)


class ThumbnailQuerySchema(SignedUrlQuerySchema):
    size = Text(
        load_default="thumb",
        validate=validate.Length(min=1, max=32),
        metadata={
            "description": "Preset: small (128 px), thumb (256 px), medium (512 px), large "
            "(1024 px) on the long edge, unless the operator configured others.",
            "example": "thumb",
        },
    )
    format = FORMAT
    gravity = Text(
        validate=validate.OneOf(list(GRAVITY_NAMES)),
        metadata={
            "description": "Make a square of the size, cropped from the picture: `smart`, "
            "`face`, or a side or corner (default: no crop, the whole picture)."
        },
    )


class RenderQuerySchema(SignedUrlQuerySchema):
    width = ma.fields.Integer(
        validate=validate.Range(min=1), metadata={"description": "Width in pixels."}
    )
    height = ma.fields.Integer(
        validate=validate.Range(min=1), metadata={"description": "Height in pixels."}
    )
    fit = Text(
        load_default="contain",
        validate=validate.OneOf(FITS),
        metadata={
            "description": "contain: fit inside the box; inside: contain, never bigger; "
            "cover: fill the box and crop by gravity; fill: stretch to the box."
        },
    )
    gravity = Text(
        load_default="center",
        validate=validate.OneOf(list(GRAVITY_NAMES)),
        metadata={
            "description": "Which part survives a cover crop: a side or corner, `smart` (the "
            "most interesting region: edges, saturation, skin tones) or `face` (keep the "
            "detected faces; `smart` when there are none)."
        },
    )
    format = FORMAT
    quality = ma.fields.Integer(
        load_default=82, validate=validate.Range(min=1, max=100), metadata={"description": "1-100"}
    )
    upscale = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Allow output bigger than the original (if the operator allows)."},
    )
    background = Text(
        validate=validate.Regexp(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"),
        # No example: Swagger UI would send it in place of the configured background.
        metadata={
            "description": "Hex colour for transparent pixels in JPEG output, e.g. `#ffffff` "
            "(default: the service's)."
        },
    )
    animated = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Keep animation (webp, png, avif output); else the first frame."},
    )


SIGNED_URL_EXAMPLE = {"rendition": "render", "width": 800, "format": "webp", "expires_in": 3600}


class SignUrlSchema(ma.Schema):
    """What to sign: the original, a thumbnail, or a rendition with its parameters.

    Only the parameters given go into the URL (the others take their defaults
    when it is fetched).
    """

    rendition = Text(
        load_default="render",
        validate=validate.OneOf(["original", "thumbnail", "render"]),
        metadata={
            "description": "`original` (the file), `thumbnail` (a named size) or `render` "
            "(width, height, fit, ...)."
        },
    )
    expires_in = ma.fields.Integer(
        validate=validate.Range(min=1),
        metadata={
            "description": "Seconds the URL works (default `IMAGE_REPO_SIGNED_URL_TTL`, at "
            "most `IMAGE_REPO_SIGNED_URL_MAX_TTL`)."
        },
    )
    download = JsonBoolean(metadata={"description": "original: ask to save, not show."})
    size = Text(validate=validate.Length(min=1, max=32), metadata={"description": "thumbnail"})
    width = ma.fields.Integer(validate=validate.Range(min=1), metadata={"description": "render"})
    height = ma.fields.Integer(validate=validate.Range(min=1), metadata={"description": "render"})
    fit = Text(validate=validate.OneOf(FITS), metadata={"description": "render"})
    gravity = Text(validate=validate.OneOf(list(GRAVITY_NAMES)), metadata={"description": "render"})
    format = FORMAT
    quality = ma.fields.Integer(validate=validate.Range(min=1, max=100))
    upscale = JsonBoolean()
    background = Text(validate=validate.Regexp(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"))
    animated = JsonBoolean()


class SignedUrlSchema(ma.Schema):
    url = ma.fields.Url(
        required=True, metadata={"description": "Absolute URL that works with no key."}
    )
    expires_at = ma.fields.AwareDateTime(required=True)
