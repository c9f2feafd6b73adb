from flask.views import MethodView

from image_repo.domain import albums as collections
from image_repo.domain import images
from image_repo.domain.permissions import IMAGES_DELETE, IMAGES_READ, IMAGES_WRITE
from image_repo.http.auth import current_principal
from image_repo.http.collections.blueprint import collections_bp
from image_repo.http.collections.schemas import (
    COLLECTION_CREATE_EXAMPLE,
    COLLECTION_ID,
    COLLECTION_UPDATE_EXAMPLE,
    CollectionCreateSchema,
    CollectionListQuerySchema,
    CollectionPageSchema,
    CollectionSchema,
    CollectionUpdateSchema,
    MembershipSchema,
)
from image_repo.http.errors import ErrorExample, invalid
from image_repo.http.images.resources import BAD_CURSOR, NO_IMAGE, page_of_images
from image_repo.http.images.schemas import IMAGE_ID, ImageListQuerySchema, ImagePageSchema
from image_repo.http.paging import decode_cursor, encode_cursor
from image_repo.http.responses import (
    ETAG_HEADER,
    NOT_MODIFIED,
    IfMatchHeader,
    IfNoneMatchHeader,
    check_if_match,
    representation_etag,
    with_etag,
)
from image_repo.http.sessions import db_session

CURSOR_CONTEXT = "collections"

# What the operations below answer on errors, as the spec shows it.
NO_COLLECTION = f"No collection {COLLECTION_ID!r}."
NAME_TAKEN = "A collection named 'Holidays 2024' exists already."
BAD_NAME = invalid("json", "name", "Length must be between 1 and 200.")
COLLECTION_CHANGED = "The collection changed since you read it (ETag mismatch)."


def _tenant_id() -> str:
    return current_principal().tenant_id


def _view(collection) -> dict:
    data = {
        name: getattr(collection, name)
        for name in ("id", "name", "description", "created_at", "updated_at")
    }
    data["image_count"] = collections.image_count(db_session(), collection)
    return data


def _collection(collection_id: str):
    return collections.get_collection(db_session(), _tenant_id(), collection_id)


def _etag(view: dict) -> str:
    return representation_etag(CollectionSchema(), view)


@collections_bp.route("")
class Collections(MethodView):
    @collections_bp.operation("listCollections", permission=IMAGES_READ, errors={422: BAD_CURSOR})
    @collections_bp.arguments(CollectionListQuerySchema(), location="query")
    @collections_bp.response(200, CollectionPageSchema)
    def get(self, args):
        """List collections

        Oldest first; pass `next_cursor` back as `cursor` for the next page.
        """
        items, after = collections.list_collections(
            db_session(),
            _tenant_id(),
            after=decode_cursor(args.get("cursor"), CURSOR_CONTEXT),
            limit=args["limit"],
        )
        return {
            "items": [_view(c) for c in items],
            "next_cursor": encode_cursor(after, CURSOR_CONTEXT),
        }

    @collections_bp.operation(
        "createCollection", permission=IMAGES_WRITE, errors={409: NAME_TAKEN, 422: BAD_NAME}
    )
    @collections_bp.arguments(CollectionCreateSchema, example=COLLECTION_CREATE_EXAMPLE)
    @collections_bp.response(201, CollectionSchema)
    def post(self, args):
        """Create a collection"""
        return _view(collections.create_collection(db_session(), _tenant_id(), **args))


@collections_bp.route("/<collection_id:collection_id>")
class CollectionById(MethodView):
    @collections_bp.operation("getCollection", permission=IMAGES_READ, errors={404: NO_COLLECTION})
    @collections_bp.arguments(IfNoneMatchHeader(), location="headers", as_kwargs=True)
    @collections_bp.response(200, CollectionSchema, headers=ETAG_HEADER)
    @collections_bp.alt_response(304, description=NOT_MODIFIED, headers=ETAG_HEADER)
    def get(self, collection_id, if_none_match=None):
        """Show a collection

        The `ETag` header goes back in `If-Match` to update safely, or in
        `If-None-Match` to get 304 while it is current.
        """
        view = _view(_collection(collection_id))
        return with_etag(view, _etag(view))

    @collections_bp.operation(
        "updateCollection",
        permission=IMAGES_WRITE,
        errors={404: NO_COLLECTION, 409: NAME_TAKEN, 412: COLLECTION_CHANGED, 422: BAD_NAME},
    )
    @collections_bp.arguments(
        CollectionUpdateSchema(), required=False, example=COLLECTION_UPDATE_EXAMPLE
    )
    @collections_bp.arguments(IfMatchHeader(), location="headers", as_kwargs=True)
    @collections_bp.response(200, CollectionSchema, headers=ETAG_HEADER)
    def patch(self, changes, collection_id, if_match=None):
        """Rename a collection or change its description

        Send `If-Match` with the ETag you read to refuse lost updates (412).
        """
        collection = _collection(collection_id)
        check_if_match(_etag(_view(collection)), "collection")
        view = _view(collections.update_collection(db_session(), collection, changes))
        return with_etag(view, _etag(view))

    @collections_bp.operation(
        "deleteCollection", permission=IMAGES_DELETE, errors={404: NO_COLLECTION}
    )
    @collections_bp.response(204)
    def delete(self, collection_id):
        """Delete a collection (its images stay)"""
        collections.delete_collection(db_session(), _collection(collection_id))


@collections_bp.route("/<collection_id:collection_id>/images")
class CollectionImages(MethodView):
    @collections_bp.operation(
        "listCollectionImages",
        permission=IMAGES_READ,
        errors={
            404: NO_COLLECTION,
            422: invalid(
                "query",
                "sort",
                "Must be one of: uploaded_at, -uploaded_at, taken_at, -taken_at.",
            ),
        },
    )
    @collections_bp.arguments(ImageListQuerySchema(), location="query")
    @collections_bp.response(200, ImagePageSchema)
    def get(self, args, collection_id):
        """List a collection's images

        The same filters, order and paging as listing all images.
        """
        collection = _collection(collection_id)
        return page_of_images(args, collection_id=collection.id)


@collections_bp.route("/<collection_id:collection_id>/images/<image_id:image_id>")
class CollectionImage(MethodView):
    @collections_bp.operation(
        "addImageToCollection",
        permission=IMAGES_WRITE,
        errors={
            404: [
                ErrorExample(NO_COLLECTION, summary="No such collection"),
                ErrorExample(NO_IMAGE, summary="No such image"),
            ]
        },
    )
    @collections_bp.response(200, MembershipSchema)
    def put(self, collection_id, image_id):
        """Add an image to a collection (idempotent)"""
        collection = _collection(collection_id)
        image = images.get_image(db_session(), _tenant_id(), image_id)
        added = collections.add_image(db_session(), collection, image)
        return {"collection_id": collection.id, "image_id": image.id, "added": added}

    @collections_bp.operation(
        "removeImageFromCollection",
        permission=IMAGES_WRITE,
        errors={
            404: [
                ErrorExample(NO_COLLECTION, summary="No such collection"),
                ErrorExample(
                    f"Image {IMAGE_ID['example']!r} is not in this collection.",
                    summary="Image not in the collection",
                ),
            ]
        },
    )
    @collections_bp.response(204)
    def delete(self, collection_id, image_id):
        """Remove an image from a collection (the image stays)"""
        collections.remove_image(db_session(), _collection(collection_id), image_id)
