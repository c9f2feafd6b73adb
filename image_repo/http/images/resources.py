from flask import current_app, url_for
from flask.views import MethodView

from image_repo.domain import images, trash
from image_repo.domain.image_fields import ImageFields, served_filename
from image_repo.domain.images import ImageFilter
from image_repo.domain.ingest import ingest
from image_repo.domain.permissions import IMAGES_DELETE, IMAGES_READ, IMAGES_WRITE
from image_repo.domain.similar import similar_images
from image_repo.http.auth import current_principal
from image_repo.http.blobs import send_blob
from image_repo.http.caching import signed_cache_control
from image_repo.http.context import blob_store, current_services
from image_repo.http.errors import ErrorExample, invalid
from image_repo.http.images.blueprint import images_bp
from image_repo.http.images.models import ImageModel, ImagePageModel
from image_repo.http.images.schemas import (
    IMAGE_ID,
    IMAGE_UPDATE_EXAMPLE,
    FileQuerySchema,
    ImageListQuerySchema,
    ImagePageSchema,
    ImageSchema,
    ImageUpdateSchema,
    ImageUploadSchema,
    SimilarListSchema,
    SimilarQuerySchema,
    TimelineQuerySchema,
    TimelineSchema,
    UrlsQuerySchema,
)
from image_repo.http.observability import metrics
from image_repo.http.paging import decode_cursor, encode_cursor
from image_repo.http.responses import (
    ETAG_HEADER,
    NOT_MODIFIED,
    ORIGINAL_RESPONSES,
    FileRequestHeaders,
    IfMatchHeader,
    IfNoneMatchHeader,
    if_match_tags,
    with_etag,
)
from image_repo.http.sessions import db_session
from image_repo.http.signing import attach_urls, signed_max_age
from image_repo.imaging.limits import DecodeLimits
from image_repo.storage import blob_key

# What the operations below answer on errors, as the spec shows it.
NO_IMAGE = f"No image {IMAGE_ID['example']!r}."
BAD_CURSOR = ErrorExample("The cursor is not valid.", {"query": {"cursor": ["invalid"]}})
BYTES_MISSING = ErrorExample(
    "The image's bytes are missing; an operator should run fsck.", summary="Bytes missing"
)
STORE_DOWN = "The image store is not available."
UPLOAD_ERRORS = {
    409: [
        ErrorExample(
            "The tenant's quota of 10000 images is used up.",
            {"quota": ["max_images"]},
            summary="Image quota used up",
        ),
        ErrorExample(
            "This upload would pass the tenant's quota of 1000000000 bytes (999000000 used).",
            {"quota": ["max_bytes"]},
            summary="Byte quota used up",
        ),
    ],
    413: [
        ErrorExample(
            "The image is 20000 x 15000 pixels (300.0 megapixels), more than the limit of "
            "100.0 megapixels.",
            {"image": ["too_many_pixels"]},
            summary="Too many pixels",
        ),
        ErrorExample(
            "The file is 104857700 bytes; the limit is 104857600.",
            {"image": ["too large"]},
            summary="File over the upload limit",
        ),
        ErrorExample(
            "The data value transmitted exceeds the capacity limit.",
            summary="Request body far over the upload limit",
        ),
    ],
    415: [
        ErrorExample(
            "The file is a PDF document, which is not an accepted image format (accepted: "
            "JPEG, PNG, GIF, WebP, AVIF, HEIC/HEIF, TIFF, BMP).",
            {"image": ["unsupported_format"]},
            summary="Another kind of file",
        ),
        ErrorExample("The file is empty.", {"image": ["not_an_image"]}, summary="Empty file"),
    ],
    422: [
        ErrorExample(
            "The JPEG image is incomplete: the file ends before its image data.",
            {"image": ["corrupt"]},
            summary="Damaged image",
        ),
        invalid("multipart", "image", "Missing data for required field.", summary="No file"),
    ],
    503: "The image store is not available; nothing was saved.",
}


def _tenant_id() -> str:
    return current_principal().tenant_id


def page_of_images(args: dict, *, collection_id: str | None = None) -> ImagePageModel:
    """One page of the tenant's images for list query ``args`` (shared with collections)."""
    sort = args["sort"]
    descending = sort.startswith("-")
    filters = ImageFilter(
        **{k: args[k] for k in ImageFilter.__dataclass_fields__ if k in args},
        collection_id=collection_id,
    )
    # A cursor is only valid for the query that made it.
    query = sorted((k, str(v)) for k, v in args.items() if k not in ("cursor", "limit", "urls"))
    context = repr((query, collection_id))
    page = images.list_images(
        db_session(),
        _tenant_id(),
        filters=filters,
        sort=sort.lstrip("-"),
        descending=descending,
        after=decode_cursor(args.get("cursor"), context),
        limit=args["limit"],
    )
    result = ImagePageModel(page.items, encode_cursor(page.next_after, context))
    if args.get("urls"):
        attach_urls(result.items, current_principal().key_id)
    return result


def _model(image, urls: bool) -> ImageModel:
    model = ImageModel(image)
    if urls:
        attach_urls([model], current_principal().key_id)
    return model


@images_bp.route("")
class Images(MethodView):
    @images_bp.operation(
        "listImages",
        permission=IMAGES_READ,
        errors={
            422: [
                invalid(
                    "query",
                    "limit",
                    "Must be greater than or equal to 1 and less than or equal to 200.",
                    summary="Bad parameter",
                ),
                BAD_CURSOR,
            ]
        },
    )
    @images_bp.arguments(ImageListQuerySchema(), location="query")
    @images_bp.response(200, ImagePageSchema)
    def get(self, args):
        """List images

        Newest first by default; filter by tag, format, dates, text, GPS or hash.
        Pages are keyset-based: pass `next_cursor` back as `cursor`.
        """
        return page_of_images(args)

    @images_bp.operation("uploadImage", permission=IMAGES_WRITE, errors=UPLOAD_ERRORS)
    @images_bp.arguments(ImageUploadSchema(), location="multipart")
    @images_bp.arguments(UrlsQuerySchema(), location="query", as_kwargs=True)
    @images_bp.response(201, ImageSchema, description="The image was stored.")
    @images_bp.alt_response(
        200,
        schema=ImageSchema,
        description="The tenant had these bytes already: that image (restored, as it was, "
        "when it was in the trash).",
    )
    def post(self, args, urls=False):
        """Upload an image

        `multipart/form-data` with the file in `image`, plus optional title,
        description, tags and taken_at. The file is checked by decoding it.
        Bytes the tenant already has answer 200 with the existing image; bytes
        of an image in the trash restore it and answer 200 with it.
        """
        upload = args.pop("image")
        config = current_app.config
        result = ingest(
            db_session(),
            blob_store(),
            tenant_id=_tenant_id(),
            stream=upload.stream,
            filename=upload.filename,
            fields=ImageFields(**args),
            max_bytes=config["MAX_UPLOAD_BYTES"],
            max_pixels=config["MAX_PIXELS"],
            make_preview=config["RENDITION_PREVIEWS"],
            limits=DecodeLimits.from_config(config),
            services=current_services(),
        )
        if result.created:
            observed = metrics()
            observed.uploaded_bytes.inc(result.image.bytes)
            observed.decode_seconds.labels("upload").observe(result.decode_seconds)
        location = {"Location": url_for("images.ImageById", image_id=result.image.id)}
        return _model(result.image, urls), (201 if result.created else 200), location


@images_bp.route("/timeline")
class Timeline(MethodView):
    @images_bp.operation(
        "getTimeline",
        permission=IMAGES_READ,
        errors={422: invalid("query", "granularity", "Must be one of: year, month, day.")},
    )
    @images_bp.arguments(TimelineQuerySchema(), location="query")
    @images_bp.response(200, TimelineSchema)
    def get(self, args):
        """Count images per year, month or day

        By capture time, or upload time for images without one; newest period first.
        """
        buckets = images.timeline(db_session(), _tenant_id(), args["granularity"])
        return {
            "granularity": args["granularity"],
            "buckets": [{"period": p, "count": c} for p, c in buckets],
        }


@images_bp.route("/<image_id:image_id>")
class ImageById(MethodView):
    @images_bp.operation("getImage", permission=IMAGES_READ, errors={404: NO_IMAGE})
    @images_bp.arguments(UrlsQuerySchema(), location="query", as_kwargs=True)
    @images_bp.arguments(IfNoneMatchHeader(), location="headers", as_kwargs=True)
    @images_bp.response(200, ImageSchema, headers=ETAG_HEADER)
    @images_bp.alt_response(304, description=NOT_MODIFIED, headers=ETAG_HEADER)
    def get(self, image_id, urls=False, if_none_match=None):
        """Show an image's metadata

        The `ETag` header goes back in `If-Match` to update safely, or in
        `If-None-Match` to get 304 while it is current. With `urls=true`, signed
        URLs of its bytes come along.
        """
        image = images.get_image(db_session(), _tenant_id(), image_id)
        return with_etag(_model(image, urls), images.etag_of(image))

    @images_bp.operation(
        "updateImage",
        permission=IMAGES_WRITE,
        errors={
            404: NO_IMAGE,
            412: "The image changed since you read it (ETag mismatch).",
            422: invalid("json", "title", "Longer than maximum length 200."),
        },
    )
    @images_bp.arguments(ImageUpdateSchema(), required=False, example=IMAGE_UPDATE_EXAMPLE)
    @images_bp.arguments(IfMatchHeader(), location="headers", as_kwargs=True)
    @images_bp.response(200, ImageSchema, headers=ETAG_HEADER)
    def patch(self, changes, image_id, if_match=None):
        """Update an image's title, description, tags or capture time

        Send `If-Match` with the ETag you read to refuse lost updates (412).
        """
        session = db_session()
        image = images.get_image(session, _tenant_id(), image_id)
        image = images.update_image(session, image, changes, if_match=if_match_tags())
        return with_etag(ImageModel(image), images.etag_of(image))

    @images_bp.operation("deleteImage", permission=IMAGES_DELETE, errors={404: NO_IMAGE})
    @images_bp.response(204)
    def delete(self, image_id):
        """Delete an image (to the trash)

        The image moves to the tenant's trash (`GET /trash`), gone at once from
        lists, albums, search, similar and every rendition, until it is restored
        or purged (after `IMAGE_REPO_TRASH_DAYS`, by `image-repo gc`). With the
        trash off (0 days) it is deleted for good at once. Its bytes are removed
        by `image-repo gc` once no image refers to them.
        """
        trash.delete_image(
            db_session(),
            _tenant_id(),
            image_id,
            trash_days=current_app.config["TRASH_DAYS"],
        )


@images_bp.route("/<image_id:image_id>/file")
class ImageFile(MethodView):
    @images_bp.operation(
        "getImageFile",
        permission=IMAGES_READ,
        errors={
            404: [ErrorExample(NO_IMAGE, summary="No such image"), BYTES_MISSING],
            416: "The server cannot provide the requested range.",
            422: invalid("query", "download", "Not a valid boolean."),
            503: STORE_DOWN,
        },
    )
    @images_bp.arguments(FileQuerySchema(), location="query")
    @images_bp.arguments(FileRequestHeaders(), location="headers", as_kwargs=True)
    @images_bp.doc(responses=ORIGINAL_RESPONSES)
    def get(self, args, image_id, if_none_match=None, range=None):
        """Download the original file

        Exactly the bytes uploaded. Supports Range (206), conditional GET
        (If-None-Match / If-Modified-Since: 304) and HEAD.
        """
        image = images.get_image(db_session(), _tenant_id(), image_id)
        signed_for = signed_max_age()
        response = send_blob(
            blob_store(),
            blob_key(image.sha256),
            mimetype=image.mime_type,
            etag=image.sha256,
            size=image.bytes,
            last_modified=image.uploaded_at,
            max_age=86400 if signed_for is None else signed_for,
            download_name=served_filename(image.filename, image.format),
            as_attachment=args["download"],
        )
        if signed_for is not None and response.status_code in (200, 206, 304):
            response.headers["Cache-Control"] = signed_cache_control(signed_for)
        elif response.status_code in (200, 206, 304):
            # The bytes never change, but they are a tenant's: private caches only.
            response.cache_control.public = False
            response.cache_control.private = True
            response.cache_control.immutable = True
        return response


# Documented with the renditions, where the spec has always listed it.
@images_bp.route("/<image_id:image_id>/similar", tags=["renditions"])
class Similar(MethodView):
    @images_bp.operation(
        "listSimilarImages",
        permission=IMAGES_READ,
        errors={
            404: NO_IMAGE,
            422: invalid(
                "query",
                "max_distance",
                "Must be greater than or equal to 0 and less than or equal to 64.",
            ),
        },
    )
    @images_bp.arguments(SimilarQuerySchema(), location="query")
    @images_bp.response(200, SimilarListSchema)
    def get(self, args, image_id):
        """List images that look like this one

        By perceptual hash, nearest first; the image itself is not listed.
        """
        session = db_session()
        image = images.get_image(session, _tenant_id(), image_id)
        found = similar_images(
            session, image, max_distance=args["max_distance"], limit=args["limit"]
        )
        return {"items": [{"distance": d, "image": ImageModel(i)} for d, i in found]}
