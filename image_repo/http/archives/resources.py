from flask import current_app
from flask.views import MethodView

from image_repo.domain.permissions import IMAGES_READ
from image_repo.http.archives.blueprint import archives_bp
from image_repo.http.archives.schemas import ZIP_RESPONSES, SelectionQuerySchema
from image_repo.http.auth import current_principal
from image_repo.http.blobs import attachment
from image_repo.http.collections.resources import NO_COLLECTION
from image_repo.http.context import blob_store
from image_repo.http.errors import ErrorExample, invalid
from image_repo.http.images.schemas import IMAGE_ID
from image_repo.http.sessions import db_session
from image_repo.transfer import zip_archive

UNKNOWN_IMAGE = ErrorExample(
    f"The selection names an image you do not have: {IMAGE_ID['example']!r}.",
    {"query": {"ids": [f"no image {IMAGE_ID['example']!r}"]}},
    summary="An image that is not yours, or in the trash",
)


def _zip_response(plan: zip_archive.ZipPlan):
    body = zip_archive.zip_stream(blob_store(), plan.members)
    response = current_app.response_class(body, mimetype="application/zip")
    response.headers["Content-Disposition"] = attachment(plan.download_name)
    # A tenant's images: never in a shared cache.
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response


@archives_bp.route("/collections/<collection_id:collection_id>/archive", tags=["collections"])
class CollectionArchive(MethodView):
    @archives_bp.operation(
        "downloadCollectionArchive", permission=IMAGES_READ, errors={404: NO_COLLECTION}
    )
    @archives_bp.doc(responses=ZIP_RESPONSES)
    def get(self, collection_id):
        """Download a collection as a ZIP

        The originals of the collection's images (not those in the trash),
        in the order they were added, streamed as the ZIP is built.
        """
        plan = zip_archive.collection_plan(
            db_session(), current_principal().tenant_id, collection_id
        )
        return _zip_response(plan)


@archives_bp.route("/images/archive", tags=["images"])
class SelectionArchive(MethodView):
    @archives_bp.operation(
        "downloadImagesArchive",
        permission=IMAGES_READ,
        errors={422: [invalid("query", "ids", "Missing data for required field."), UNKNOWN_IMAGE]},
    )
    @archives_bp.arguments(SelectionQuerySchema(), location="query")
    @archives_bp.doc(responses=ZIP_RESPONSES)
    def get(self, args):
        """Download a selection of images as a ZIP

        The originals of the images named in `ids` (yours, not in the trash),
        in that order, streamed as the ZIP is built.
        """
        plan = zip_archive.selection_plan(db_session(), current_principal().tenant_id, args["ids"])
        return _zip_response(plan)
