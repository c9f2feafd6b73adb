import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import validate

from image_repo.domain.image_fields import MAX_TAG_LENGTH, MAX_TAGS
from image_repo.http.fields import Choice, FormText, Text, TimeBound, UTCDateTime
from image_repo.imaging.formats import ACCEPTED_FORMATS

IMAGE_ID = {"description": "Opaque id of the image.", "example": "img_k3j5h6g7f2d4s5a6q2w3"}
SHA256 = validate.Regexp(r"^[0-9a-f]{64}$", error="A SHA-256 is 64 lower-case hex digits.")


PRINTABLE = validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="Tags hold no control characters.")


TAGS_DESCRIPTION = (
    f"Up to {MAX_TAGS} tags of 1 to {MAX_TAG_LENGTH} characters; a value with commas holds several."
)

# Swagger UI's Try it out fills every field of a form with the field's first
# example (else its default, else a sample of its type: `string`, the current
# time) and sends it. Optional form fields therefore carry an empty example:
# the form starts empty, and the service reads an empty field as absent.
EMPTY_FORM_FIELD = {"examples": [""]}


class TagsField(ma.fields.List):
    """Tags from a JSON list, repeated form fields, or comma-separated values.

    ``item_max`` bounds one value: a form value may hold several tags.
    """

    def __init__(
        self, item_max: int = MAX_TAG_LENGTH, *, metadata: dict, form: bool = False, **kwargs
    ):
        super().__init__(
            (FormText if form else Text)(
                validate=[validate.Length(min=1, max=item_max), PRINTABLE]
            ),
            validate=validate.Length(max=MAX_TAGS),
            metadata=metadata,
            **kwargs,
        )


class DropEmptyFormFields:
    """Empty form fields mean "not given" (Swagger UI's form sends cleared fields empty)."""

    @ma.pre_load
    def _drop_empty(self, data, **kwargs):
        result = {}
        for key in data:
            value = data[key]
            if isinstance(value, list):
                value = [item for item in value if item != ""]
                if not value:
                    continue
            elif isinstance(value, str) and value == "":
                continue
            result[key] = value
        return result


class ImageUploadSchema(DropEmptyFormFields, ma.Schema):
    """A multipart form: fields are text or absent (multipart has no null)."""

    image = Upload(
        required=True,
        metadata={
            "description": "The image file: JPEG, PNG, GIF, WebP, AVIF, HEIC, TIFF, BMP or MPO."
        },
    )
    title = FormText(
        validate=validate.Length(max=200),
        metadata={"description": "Title (up to 200 characters); empty: none.", **EMPTY_FORM_FIELD},
    )
    description = FormText(
        validate=validate.Length(max=5000),
        metadata={
            "description": "Free text (up to 5000 characters); empty: none.",
            **EMPTY_FORM_FIELD,
        },
    )
    tags = TagsField(
        item_max=MAX_TAGS * (MAX_TAG_LENGTH + 1),
        metadata={"description": f"{TAGS_DESCRIPTION} Empty: none.", "examples": [[]]},
        form=True,
    )
    taken_at = UTCDateTime(
        metadata={
            "description": "When the picture was taken (ISO-8601 with offset); "
            "overrides the time found in EXIF. Empty: the time in EXIF, if any.",
            **EMPTY_FORM_FIELD,
        },
    )


IMAGE_UPDATE_EXAMPLE = {"title": "Sunset at the pier"}


class ImageUpdateSchema(ma.Schema):
    """Only these fields may change; everything else is the server's. null clears a field."""

    title = Text(
        allow_none=True,
        validate=validate.Length(max=200),
        metadata={"description": "Title (up to 200 characters).", "example": "Sunset at the pier"},
    )
    description = Text(
        allow_none=True,
        validate=validate.Length(max=5000),
        metadata={"description": "Free text (up to 5000 characters)."},
    )
    tags = TagsField(
        allow_none=True,
        # Without an example the spec's samples come from the pattern, and that
        # random text is often longer than a tag may be.
        metadata={"description": TAGS_DESCRIPTION, "example": ["holiday", "pier"]},
    )
    taken_at = UTCDateTime(
        allow_none=True,
        metadata={"description": "When the picture was taken (ISO-8601 with offset)."},
    )


class ImageUrlsSchema(ma.Schema):
    """Signed URLs of an image's bytes: they work with no key (in an `<img>` tag)."""

    original = ma.fields.Url(required=True, metadata={"description": "The original file."})
    thumbnail = ma.fields.Url(
        required=True, metadata={"description": "The standard thumbnail (`size=thumb`)."}
    )
    preview = ma.fields.Url(
        required=True,
        metadata={"description": "A large rendition (1600 px on the long edge at most)."},
    )
    expires_at = ma.fields.AwareDateTime(
        required=True, metadata={"description": "When these URLs stop working."}
    )


class AnalysisSchema(ma.Schema):
    kind = ma.fields.String(
        required=True,
        metadata={"description": "What is analysed: `preview`, ...", "example": "preview"},
    )
    state = ma.fields.String(
        required=True,
        metadata={
            "description": "`pending` (queued or running), `done` or `failed` (after retries).",
            "enum": ["pending", "done", "failed"],
            "example": "done",
        },
    )
    attempts = ma.fields.Integer(required=True, metadata={"description": "Runs so far."})
    error = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "Why the last run failed."}
    )
    updated_at = ma.fields.AwareDateTime(required=True)


class ImageSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata=IMAGE_ID)
    filename = ma.fields.String(required=True, metadata={"example": "IMG_0042.jpg"})
    title = ma.fields.String(allow_none=True, required=True)
    description = ma.fields.String(allow_none=True, required=True)
    tags = ma.fields.List(ma.fields.String(), required=True)
    taken_at = UTCDateTime(
        allow_none=True,
        required=True,
        metadata={"description": "Capture time with the camera's offset (UTC when unknown)."},
    )
    taken_at_offset_known = ma.fields.Boolean(required=True)
    uploaded_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(required=True)
    sha256 = ma.fields.String(required=True)
    bytes = ma.fields.Integer(required=True)
    format = ma.fields.String(required=True, metadata={"example": "JPEG"})
    mime_type = ma.fields.String(required=True, metadata={"example": "image/jpeg"})
    width = ma.fields.Integer(required=True, metadata={"description": "Width as displayed."})
    height = ma.fields.Integer(required=True, metadata={"description": "Height as displayed."})
    stored_width = ma.fields.Integer(required=True)
    stored_height = ma.fields.Integer(required=True)
    frames = ma.fields.Integer(required=True)
    animated = ma.fields.Boolean(required=True)
    color_mode = ma.fields.String(required=True, metadata={"example": "RGB"})
    has_alpha = ma.fields.Boolean(required=True)
    has_icc = ma.fields.Boolean(required=True)
    orientation = ma.fields.Integer(required=True, metadata={"description": "EXIF orientation."})
    camera_make = ma.fields.String(allow_none=True, required=True)
    camera_model = ma.fields.String(allow_none=True, required=True)
    lens = ma.fields.String(allow_none=True, required=True)
    exposure_time = ma.fields.Float(allow_none=True, required=True, metadata={"description": "s"})
    f_number = ma.fields.Float(allow_none=True, required=True)
    iso = ma.fields.Integer(allow_none=True, required=True)
    focal_length = ma.fields.Float(allow_none=True, required=True, metadata={"description": "mm"})
    has_gps = ma.fields.Boolean(
        required=True,
        metadata={"description": "The file carries GPS tags (a position may still be unreadable)."},
    )
    gps_latitude = ma.fields.Float(allow_none=True, required=True)
    gps_longitude = ma.fields.Float(allow_none=True, required=True)
    gps_altitude = ma.fields.Float(allow_none=True, required=True, metadata={"description": "m"})
    blurhash = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "BlurHash placeholder."}
    )
    phash = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "64-bit perceptual hash, hex."}
    )
    urls = ma.fields.Nested(
        ImageUrlsSchema,
        metadata={
            "description": "Signed URLs of the image's bytes, when asked with `urls=true`; "
            "bound to the key that asked (they stop when it is revoked)."
        },
    )
    analyses = ma.fields.List(
        ma.fields.Nested(AnalysisSchema),
        required=True,
        metadata={
            "description": "Background work on the image (its preview, ...): what is pending, "
            "done or failed. Only what applies is listed (a small image needs no preview)."
        },
    )


class ImagePageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ImageSchema), required=True)
    next_cursor = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "Pass as `cursor` for the next page; null on the last page."},
    )


class PageQuerySchema(ma.Schema):
    limit = ma.fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=200),
        metadata={"description": "Items per page (1 to 200)."},
    )
    cursor = Text(
        validate=validate.Length(max=500),
        metadata={"description": "`next_cursor` of the previous page."},
    )


URLS_FIELD = {
    "description": "Add `urls`: signed URLs of the original, a thumbnail and a large "
    "preview, which work with no key (expiry: `IMAGE_REPO_SIGNED_URL_TTL`)."
}


class UrlsQuerySchema(ma.Schema):
    urls = ma.fields.Boolean(load_default=False, metadata=URLS_FIELD)


class ImageListQuerySchema(PageQuerySchema):
    urls = ma.fields.Boolean(load_default=False, metadata=URLS_FIELD)
    tag = Text(validate=validate.Length(min=1, max=MAX_TAG_LENGTH))
    format = Choice(
        sorted(ACCEPTED_FORMATS),
        metadata={"description": "Only images of this format (any case: `gif` or `GIF`)."},
    )
    taken_after = TimeBound("Taken at or after this time.")
    taken_before = TimeBound(
        "Taken before this time (not included: `taken_before=2024-06-01` ends with May)."
    )
    uploaded_after = TimeBound("Uploaded at or after this time.")
    uploaded_before = TimeBound("Uploaded before this time (not included).")
    q = Text(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Text to find in the title or file name (case-insensitive)."},
    )
    has_gps = ma.fields.Boolean(metadata={"description": "Only images with (or without) GPS tags."})
    sha256 = Text(validate=SHA256)
    person = Text(
        validate=validate.Regexp(r"^per_[a-z2-7]{20}$", error="Not a person id."),
        metadata={"description": "Only images with a face of this person (see `GET /people`)."},
    )
    sort = Text(
        load_default="-uploaded_at",
        validate=validate.OneOf(["uploaded_at", "-uploaded_at", "taken_at", "-taken_at"]),
        metadata={
            "description": "Order; `-` for newest first. `taken_at` uses the upload time "
            "for images without a capture time.",
            "x-enum-varnames": ["UPLOADED_AT", "UPLOADED_AT_DESC", "TAKEN_AT", "TAKEN_AT_DESC"],
        },
    )


class TimelineQuerySchema(ma.Schema):
    granularity = Text(load_default="month", validate=validate.OneOf(["year", "month", "day"]))


class TimelineBucketSchema(ma.Schema):
    period = ma.fields.String(required=True, metadata={"example": "2024-05"})
    count = ma.fields.Integer(required=True)


class TimelineSchema(ma.Schema):
    granularity = ma.fields.String(required=True)
    buckets = ma.fields.List(ma.fields.Nested(TimelineBucketSchema), required=True)


class SignedUrlQuerySchema(ma.Schema):
    """What a signed URL adds to the query (see signImageUrl); the caller needs no key then."""

    exp = ma.fields.Integer(
        metadata={"description": "Signed URLs: when the URL stops working (Unix seconds)."}
    )
    kid = Text(
        validate=validate.Length(max=32),
        metadata={"description": "Signed URLs: the id of the key the URL was signed for."},
    )
    sig = Text(
        validate=validate.Length(max=64),
        metadata={"description": "Signed URLs: the signature (HMAC-SHA256, base64url)."},
    )


class FileQuerySchema(SignedUrlQuerySchema):
    download = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Ask the browser to save the file rather than show it."},
    )


class SimilarQuerySchema(ma.Schema):
    max_distance = ma.fields.Integer(
        load_default=10,
        validate=validate.Range(min=0, max=64),
        metadata={"description": "Largest Hamming distance between 64-bit perceptual hashes."},
    )
    limit = ma.fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class SimilarImageSchema(ma.Schema):
    distance = ma.fields.Integer(required=True)
    image = ma.fields.Nested(ImageSchema, required=True)


class SimilarListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SimilarImageSchema), required=True)
