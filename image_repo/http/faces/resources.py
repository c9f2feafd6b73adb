from flask import current_app
from flask.views import MethodView
from flask_smorest import abort

from image_repo.domain import faces, people
from image_repo.domain.permissions import FACES_MANAGE, PEOPLE_READ, PEOPLE_WRITE
from image_repo.http.auth import current_principal
from image_repo.http.errors import ErrorExample
from image_repo.http.faces.blueprint import faces_bp
from image_repo.http.faces.models import FaceListModel, FaceModel, PeoplePageModel
from image_repo.http.faces.schemas import (
    FACE_ID,
    PERSON_ID,
    FaceListSchema,
    FaceSchema,
    FaceSettingsSchema,
    FaceSettingsUpdateSchema,
    FaceThumbnailQuerySchema,
    FaceUpdateSchema,
    PeoplePageSchema,
    PeopleQuerySchema,
    PersonMergeSchema,
    PersonSchema,
    PersonUpdateSchema,
)
from image_repo.http.images.resources import BAD_CURSOR, NO_IMAGE
from image_repo.http.paging import decode_cursor, encode_cursor
from image_repo.http.renditions.resources import RENDITION_ERRORS, send_rendition
from image_repo.http.responses import RENDITION_RESPONSES
from image_repo.http.sessions import db_session
from image_repo.imaging.render import RenderError, RenderParams, validate

NO_PERSON = f"No person {PERSON_ID['example']!r}."
NO_FACE = f"No face {FACE_ID['example']!r}."
CURSOR_CONTEXT = "people"


def _tenant_id() -> str:
    return current_principal().tenant_id


@faces_bp.route("/images/<image_id:image_id>/faces")
class ImageFaces(MethodView):
    @faces_bp.operation("listImageFaces", permission=PEOPLE_READ, errors={404: NO_IMAGE})
    @faces_bp.response(200, FaceListSchema)
    def get(self, image_id):
        """List the faces found in an image

        Left to right, each with its box in the displayed (upright) image's
        pixels and the person it is grouped with. Empty until the image has
        been analysed (and always while face analysis is off).
        """
        return FaceListModel(faces.image_faces(db_session(), _tenant_id(), image_id))


@faces_bp.route("/faces/<face_id:face_id>")
class FaceById(MethodView):
    @faces_bp.operation("getFace", permission=PEOPLE_READ, errors={404: NO_FACE})
    @faces_bp.response(200, FaceSchema)
    def get(self, face_id):
        """Show one face"""
        return FaceModel(faces.get_face(db_session(), _tenant_id(), face_id))

    @faces_bp.operation(
        "updateFace",
        permission=PEOPLE_WRITE,
        errors={
            404: NO_FACE,
            422: ErrorExample(
                f"There is no person {PERSON_ID['example']!r} to move the face to.",
                {"json": {"person_id": ["no such person"]}},
            ),
        },
    )
    @faces_bp.arguments(FaceUpdateSchema, example={"person_id": PERSON_ID["example"]})
    @faces_bp.response(200, FaceSchema)
    def patch(self, args, face_id):
        """Move a face to another person

        For a face grouped with the wrong person. The people's means follow,
        so later faces are grouped with the correction in mind.
        """
        session = db_session()
        faces.get_face(session, _tenant_id(), face_id)  # 404 for a face of a trashed image
        if "person_id" not in args:
            abort(
                422,
                message="Name the person to move the face to.",
                errors={"json": {"person_id": ["Missing data for required field."]}},
            )
        return FaceModel(people.move_face(session, _tenant_id(), face_id, args["person_id"]))


@faces_bp.route("/faces/<face_id:face_id>/thumbnail")
class FaceThumbnail(MethodView):
    @faces_bp.operation(
        "getFaceThumbnail",
        permission=PEOPLE_READ,
        errors={
            **RENDITION_ERRORS,
            404: NO_FACE,
            422: ErrorExample(
                "Unknown thumbnail size 'huge'; sizes: small, thumb, medium, large.",
                {"query": {"size": ["must be one of small, thumb, medium, large"]}},
            ),
        },
    )
    @faces_bp.arguments(FaceThumbnailQuerySchema(), location="query")
    @faces_bp.doc(responses=RENDITION_RESPONSES)
    def get(self, args, face_id):
        """Get a square thumbnail of a face

        The face with some room around it, a preset size on each side (never
        bigger than the picture holds), upright, in sRGB. Cached like every
        rendition.
        """
        config = current_app.config
        sizes = config["THUMBNAIL_SIZES"]
        side = sizes.get(args["size"])
        if side is None:
            abort(
                422,
                message=f"Unknown thumbnail size {args['size']!r}; sizes: {', '.join(sizes)}.",
                errors={"query": {"size": [f"must be one of {', '.join(sizes)}"]}},
            )
        face, image = faces.face_source(db_session(), _tenant_id(), face_id)
        crop = faces.thumbnail_crop(face, (image.width, image.height))
        try:
            params = validate(
                RenderParams(
                    width=side,
                    height=side,
                    fit="cover",
                    format=args.get("format") or config["RENDER_DEFAULT_FORMAT"],
                    background=config["RENDER_BACKGROUND"],
                    crop=crop,
                ),
                max_width=config["RENDER_MAX_SIDE"],
                max_height=config["RENDER_MAX_SIDE"],
            )
        except RenderError as exc:
            abort(422, message="Bad rendition parameters.", errors={"query": exc.errors})
        # Not for the rendition front: its memo maps a query to one digest for any
        # image, and this digest depends on the face.
        return send_rendition(_tenant_id(), image.id, params, remember=False)


@faces_bp.route("/people")
class People(MethodView):
    @faces_bp.operation("listPeople", permission=PEOPLE_READ, errors={422: BAD_CURSOR})
    @faces_bp.arguments(PeopleQuerySchema(), location="query")
    @faces_bp.response(200, PeoplePageSchema)
    def get(self, args):
        """List people

        The people the tenant's faces are grouped into, first found first,
        with how many faces each has and a cover face. Hidden people only with
        `include_hidden=true`. Pages are keyset-based: pass `next_cursor` back
        as `cursor`.
        """
        context = f"{CURSOR_CONTEXT}:{args['include_hidden']}"
        page = people.list_people(
            db_session(),
            _tenant_id(),
            include_hidden=args["include_hidden"],
            after=decode_cursor(args.get("cursor"), context),
            limit=args["limit"],
        )
        return PeoplePageModel(page.items, encode_cursor(page.next_after, context))


@faces_bp.route("/people/<person_id:person_id>")
class PersonById(MethodView):
    @faces_bp.operation("getPerson", permission=PEOPLE_READ, errors={404: NO_PERSON})
    @faces_bp.response(200, PersonSchema)
    def get(self, person_id):
        """Show one person"""
        return people.get_person(db_session(), _tenant_id(), person_id)

    @faces_bp.operation(
        "updatePerson",
        permission=PEOPLE_WRITE,
        errors={
            404: NO_PERSON,
            422: ErrorExample(
                "The cover must be one of the person's faces.",
                {"json": {"cover_face_id": ["not a face of this person"]}},
            ),
        },
    )
    @faces_bp.arguments(PersonUpdateSchema, example={"name": "Ada"})
    @faces_bp.response(200, PersonSchema)
    def patch(self, args, person_id):
        """Name, hide or show a person, or choose its cover face

        Only the fields sent change.
        """
        return people.update_person(db_session(), _tenant_id(), person_id, **args)


@faces_bp.route("/people/<person_id:person_id>/merge")
class PersonMerge(MethodView):
    @faces_bp.operation(
        "mergePeople",
        permission=PEOPLE_WRITE,
        errors={
            404: NO_PERSON,
            422: ErrorExample(
                "A person cannot be merged into itself.",
                {"json": {"people": ["must not name the target"]}},
            ),
        },
    )
    @faces_bp.arguments(PersonMergeSchema, example={"people": ["per_a2b3c4d5e6f7g2h3i4j5"]})
    @faces_bp.response(200, PersonSchema)
    def post(self, args, person_id):
        """Merge people into this one

        Every face of the people listed moves to this person, and they are
        deleted. This person keeps its name (or takes the first name among
        them when it has none).
        """
        return people.merge(db_session(), _tenant_id(), person_id, args["people"])


@faces_bp.route("/account/faces")
class FaceSettings(MethodView):
    @faces_bp.operation("getFaceSettings", permission=PEOPLE_READ)
    @faces_bp.response(200, FaceSettingsSchema)
    def get(self):
        """Show the tenant's face-analysis switch

        Faces are analysed only when the operator allows it (`available`) and
        the tenant's own switch is on (`enabled`).
        """
        return _settings()

    @faces_bp.operation("updateFaceSettings", permission=FACES_MANAGE)
    @faces_bp.arguments(FaceSettingsUpdateSchema, example={"enabled": True})
    @faces_bp.response(200, FaceSettingsSchema)
    def patch(self, args):
        """Turn the tenant's face analysis on or off

        Off deletes every face, descriptor and person of the tenant at once.
        """
        faces.set_enabled(db_session(), _tenant_id(), args["enabled"])
        return _settings()


def _settings():
    state = faces.settings(db_session(), _tenant_id(), operator_setting=current_app.config["FACES"])
    return {
        "enabled": state.enabled,
        "available": state.available,
        "active": state.active,
        "faces": state.faces,
        "people": state.people,
    }
