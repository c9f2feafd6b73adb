import marshmallow as ma
from marshmallow import validate

from image_repo.http.fields import JsonBoolean, Text
from image_repo.http.images.schemas import IMAGE_ID, PageQuerySchema
from image_repo.http.renditions.schemas import FORMAT

PERSON_ID = {"description": "Opaque id of the person.", "example": "per_m4n5b6v7c2x3z4l5k6j7"}
FACE_ID = {"description": "Opaque id of the face.", "example": "fce_q2w3e4r5t6y7u2i3o4p5"}
PERSON_ID_PATTERN = validate.Regexp(r"^per_[a-z2-7]{20}$", error="Not a person id.")


class FaceBoxSchema(ma.Schema):
    left = ma.fields.Integer(required=True, metadata={"example": 377})
    top = ma.fields.Integer(required=True, metadata={"example": 158})
    width = ma.fields.Integer(required=True, metadata={"example": 249})
    height = ma.fields.Integer(required=True, metadata={"example": 248})


class FaceSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata=FACE_ID)
    image_id = ma.fields.String(required=True, metadata=IMAGE_ID)
    box = ma.fields.Nested(
        FaceBoxSchema,
        required=True,
        metadata={"description": "Where the face is, in the displayed (upright) image's pixels."},
    )
    person_id = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "The person it is grouped with."}
    )


class FaceListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(FaceSchema), required=True)


class FaceUpdateSchema(ma.Schema):
    # Required, but checked by the view after the face is found: an unknown face is 404
    # whatever the body.
    person_id = Text(
        validate=PERSON_ID_PATTERN,
        metadata={**PERSON_ID, "description": "The person the face belongs to."},
    )


class FaceThumbnailQuerySchema(ma.Schema):
    size = Text(
        load_default="thumb",
        validate=validate.Length(min=1, max=32),
        metadata={
            "description": "A thumbnail preset (small, thumb, medium, large): the square's side."
        },
    )
    format = FORMAT


class PersonSchema(ma.Schema):
    id = ma.fields.String(required=True, metadata=PERSON_ID)
    name = ma.fields.String(allow_none=True, required=True, metadata={"example": "Ada"})
    hidden = ma.fields.Boolean(
        required=True, metadata={"description": "Left out of `GET /people` unless asked for."}
    )
    face_count = ma.fields.Integer(required=True, metadata={"description": "How many faces."})
    cover_face_id = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "The face to show for the person (`GET /faces/{id}/thumbnail`)."},
    )
    created_at = ma.fields.AwareDateTime(required=True)


class PeopleQuerySchema(PageQuerySchema):
    include_hidden = ma.fields.Boolean(
        load_default=False, metadata={"description": "List hidden people too."}
    )


class PeoplePageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(PersonSchema), required=True)
    next_cursor = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "Pass as `cursor` for the next page; null on the last page."},
    )


class PersonUpdateSchema(ma.Schema):
    name = Text(
        allow_none=True,
        validate=validate.Length(max=200),
        metadata={"description": "The person's name; null or empty to clear it."},
    )
    hidden = JsonBoolean(metadata={"description": "Hide the person from `GET /people`."})
    cover_face_id = Text(
        validate=validate.Regexp(r"^fce_[a-z2-7]{20}$", error="Not a face id."),
        metadata={"description": "One of the person's faces, to show for it."},
    )


class PersonMergeSchema(ma.Schema):
    # At least one (checked once the target is found: an unknown target is 404).
    people = ma.fields.List(
        Text(validate=PERSON_ID_PATTERN),
        load_default=list,
        validate=validate.Length(max=100),
        metadata={"description": "People whose faces join this one; they are deleted."},
    )


class FaceSettingsSchema(ma.Schema):
    enabled = ma.fields.Boolean(required=True, metadata={"description": "The tenant's own switch."})
    available = ma.fields.Boolean(
        required=True,
        metadata={"description": "Whether the operator allows face analysis (`IMAGE_REPO_FACES`)."},
    )
    active = ma.fields.Boolean(
        required=True, metadata={"description": "Both on: new images are analysed."}
    )
    faces = ma.fields.Integer(required=True, metadata={"description": "Faces stored."})
    people = ma.fields.Integer(required=True, metadata={"description": "People stored."})


class FaceSettingsUpdateSchema(ma.Schema):
    enabled = JsonBoolean(
        required=True,
        metadata={
            "description": "Turn face analysis on or off for the tenant. Off deletes every "
            "face, descriptor and person of the tenant at once."
        },
    )
