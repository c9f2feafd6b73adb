from flask import current_app
from flask.views import MethodView

from image_repo.domain import images, trash
from image_repo.domain.permissions import IMAGES_WRITE, TRASH_PURGE
from image_repo.http.auth import current_principal
from image_repo.http.images.models import ImageModel
from image_repo.http.images.resources import BAD_CURSOR
from image_repo.http.images.schemas import IMAGE_ID, ImageSchema
from image_repo.http.paging import decode_cursor, encode_cursor
from image_repo.http.responses import ETAG_HEADER, with_etag
from image_repo.http.sessions import db_session
from image_repo.http.trash.blueprint import trash_bp
from image_repo.http.trash.models import TrashPageModel
from image_repo.http.trash.schemas import (
    TrashEmptiedSchema,
    TrashListQuerySchema,
    TrashPageSchema,
)

CURSOR_CONTEXT = "trash"
NOT_IN_TRASH = f"No image {IMAGE_ID['example']!r} in the trash."


def _tenant_id() -> str:
    return current_principal().tenant_id


def _trash_days() -> int:
    return current_app.config["TRASH_DAYS"]


@trash_bp.route("")
class Trash(MethodView):
    # Listing and restoring need images:write, as a re-upload of the same bytes
    # (which restores) does: the trash is for those who may bring images back,
    # not for read-only keys (a website's key does not see what was deleted).
    @trash_bp.operation("listTrash", permission=IMAGES_WRITE, errors={422: BAD_CURSOR})
    @trash_bp.arguments(TrashListQuerySchema(), location="query")
    @trash_bp.response(200, TrashPageSchema)
    def get(self, args):
        """List the images in the trash

        Most recently deleted first, each with `trashed_at` and `purge_at`
        (when it goes for good). Pages are keyset-based: pass `next_cursor`
        back as `cursor`.
        """
        page = trash.list_trash(
            db_session(),
            _tenant_id(),
            after=decode_cursor(args.get("cursor"), CURSOR_CONTEXT),
            limit=args["limit"],
        )
        return TrashPageModel(
            page.items, encode_cursor(page.next_after, CURSOR_CONTEXT), _trash_days()
        )


@trash_bp.route("/<image_id:image_id>/restore")
class TrashRestore(MethodView):
    @trash_bp.operation("restoreImage", permission=IMAGES_WRITE, errors={404: NOT_IN_TRASH})
    @trash_bp.response(200, ImageSchema, headers=ETAG_HEADER)
    def post(self, image_id):
        """Restore an image from the trash

        It comes back as it was: metadata, tags, albums, ETag. (Uploading its
        bytes again restores it too.)
        """
        image = trash.restore_image(db_session(), _tenant_id(), image_id)
        return with_etag(ImageModel(image), images.etag_of(image))


@trash_bp.route("/<image_id:image_id>")
class TrashedImage(MethodView):
    @trash_bp.operation("purgeImage", permission=TRASH_PURGE, errors={404: NOT_IN_TRASH})
    @trash_bp.response(204)
    def delete(self, image_id):
        """Delete an image in the trash for good

        Its row, tags and album memberships go now; its bytes are removed by
        `image-repo gc` once no image refers to them. It cannot be restored.
        """
        trash.purge_image(db_session(), _tenant_id(), image_id)


@trash_bp.route("/empty")
class TrashEmpty(MethodView):
    @trash_bp.operation("emptyTrash", permission=TRASH_PURGE)
    @trash_bp.response(200, TrashEmptiedSchema)
    def post(self):
        """Empty the trash

        Deletes every image in the tenant's trash for good, at once.
        """
        return {"purged": trash.empty_trash(db_session(), _tenant_id())}
