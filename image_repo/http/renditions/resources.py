from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort

from image_repo.domain import images, renditions
from image_repo.domain.permissions import IMAGES_READ
from image_repo.domain.similar import similar_images
from image_repo.http.auth import current_principal
from image_repo.http.blobs import send_blob
from image_repo.http.errors import ErrorExample, invalid
from image_repo.http.front import CACHE_CONTROL, CACHE_MAX_AGE, VARY, remember_rendition
from image_repo.http.images.models import ImageModel
from image_repo.http.images.resources import BYTES_MISSING, NO_IMAGE, STORE_DOWN
from image_repo.http.locks import locks
from image_repo.http.observability import metrics
from image_repo.http.renditions.blueprint import renditions_bp
from image_repo.http.renditions.schemas import (
    RenderQuerySchema,
    SimilarListSchema,
    SimilarQuerySchema,
    ThumbnailQuerySchema,
)
from image_repo.http.responses import RENDITION_RESPONSES, IfNoneMatchHeader
from image_repo.http.sessions import db_session
from image_repo.http.storage import blob_store
from image_repo.imaging.limits import DecodeLimits
from image_repo.imaging.render import RenderError, RenderParams, validate
from image_repo.storage import BlobNotFound

RENDITION_ERRORS = {
    404: [ErrorExample(NO_IMAGE, summary="No such image"), BYTES_MISSING],
    503: STORE_DOWN,
}


def _params(args: dict) -> RenderParams:
    config = current_app.config
    if args.get("upscale") and not config["RENDER_ALLOW_UPSCALE"]:
        abort(
            422,
            message="Upscaling is not allowed here.",
            errors={"query": {"upscale": ["not allowed"]}},
        )
    args = {k: v for k, v in args.items() if v is not None}
    args.setdefault("format", config["RENDER_DEFAULT_FORMAT"])
    args.setdefault("background", config["RENDER_BACKGROUND"])
    side = config["RENDER_MAX_SIDE"]
    try:
        return validate(RenderParams(**args), max_width=side, max_height=side)
    except RenderError as exc:
        abort(422, message="Bad rendition parameters.", errors={"query": exc.errors})


def _send(image_id: str, params: RenderParams):
    sha256, full_size = images.get_original(db_session(), current_principal().tenant_id, image_id)
    ref = renditions.RenditionRef.of(sha256, params)
    remember_rendition(ref)
    if request.if_none_match.contains(ref.etag):
        # The client has it: no storage round trip, no decode.
        metrics().rendition_cache.labels("hit").inc()
        response = current_app.response_class(status=304)
        response.set_etag(ref.etag)
        return _cache_headers(response)
    store = blob_store()
    try:
        rendition = renditions.get_or_create(
            store,
            locks(),
            sha256,
            params,
            max_pixels=current_app.config["MAX_PIXELS"],
            ref=ref,
            full_size=full_size,
            limits=DecodeLimits.from_config(current_app.config),
        )
    except BlobNotFound:
        abort(404, message="The image's bytes are missing; an operator should run fsck.")
    # (Its decode time reaches the metrics through the renderer's observers.)
    metrics().rendition_cache.labels("miss" if rendition.computed else "hit").inc()
    response = send_blob(
        store,
        rendition.key,
        mimetype=rendition.mime_type,
        etag=rendition.etag,
        max_age=CACHE_MAX_AGE,
    )
    if response.status_code not in (200, 206):
        return response  # a redirect to a presigned URL
    response.headers["X-Rendition-Cache"] = "miss" if rendition.computed else "hit"
    return _cache_headers(response)


def _cache_headers(response):
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.vary.update(VARY)
    return response


@renditions_bp.route("/<image_id:image_id>/thumbnail")
class Thumbnail(MethodView):
    @renditions_bp.operation(
        "getThumbnail",
        permission=IMAGES_READ,
        errors={
            **RENDITION_ERRORS,
            422: ErrorExample(
                "Unknown thumbnail size 'huge'; sizes: small, thumb, medium, large.",
                {"query": {"size": ["must be one of small, thumb, medium, large"]}},
            ),
        },
    )
    @renditions_bp.arguments(ThumbnailQuerySchema(), location="query")
    @renditions_bp.arguments(IfNoneMatchHeader(), location="headers", as_kwargs=True)
    @renditions_bp.doc(responses=RENDITION_RESPONSES)
    def get(self, args, image_id, if_none_match=None):
        """Get a thumbnail

        A named size on the long edge, upright, in sRGB, without metadata.
        Made once, then served from the cache (`X-Rendition-Cache: hit`).
        """
        sizes = current_app.config["THUMBNAIL_SIZES"]
        side = sizes.get(args["size"])
        if side is None:
            abort(
                422,
                message=f"Unknown thumbnail size {args['size']!r}; sizes: {', '.join(sizes)}.",
                errors={"query": {"size": [f"must be one of {', '.join(sizes)}"]}},
            )
        return _send(
            image_id, _params({"width": side, "height": side, "format": args.get("format")})
        )


@renditions_bp.route("/<image_id:image_id>/render")
class Render(MethodView):
    @renditions_bp.operation(
        "renderImage",
        permission=IMAGES_READ,
        errors={
            **RENDITION_ERRORS,
            422: [
                ErrorExample(
                    "Bad rendition parameters.",
                    {"query": {"width": ["must be an integer from 1 to 4096"]}},
                    summary="Over the largest side",
                ),
                invalid(
                    "query",
                    "quality",
                    "Must be greater than or equal to 1 and less than or equal to 100.",
                    summary="Bad parameter",
                ),
            ],
        },
    )
    @renditions_bp.arguments(RenderQuerySchema(), location="query")
    @renditions_bp.arguments(IfNoneMatchHeader(), location="headers", as_kwargs=True)
    @renditions_bp.doc(responses=RENDITION_RESPONSES)
    def get(self, args, image_id, if_none_match=None):
        """Get a resized, cropped or converted copy

        Width and height are of the upright image; `fit` says how it meets the box.
        Never bigger than the original unless `upscale` is asked and allowed.
        Animated sources give their first frame unless `animated=true`.
        """
        return _send(image_id, _params(args))


@renditions_bp.route("/<image_id:image_id>/similar")
class Similar(MethodView):
    @renditions_bp.operation(
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
    @renditions_bp.arguments(SimilarQuerySchema(), location="query")
    @renditions_bp.response(200, SimilarListSchema)
    def get(self, args, image_id):
        """List images that look like this one

        By perceptual hash, nearest first; the image itself is not listed.
        """
        session = db_session()
        image = images.get_image(session, current_principal().tenant_id, image_id)
        found = similar_images(
            session, image, max_distance=args["max_distance"], limit=args["limit"]
        )
        return {"items": [{"distance": d, "image": ImageModel(i)} for d, i in found]}
