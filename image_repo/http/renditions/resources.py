from dataclasses import replace

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort

from image_repo.domain import faces, images, renditions
from image_repo.domain.permissions import IMAGES_READ
from image_repo.http.auth import current_principal
from image_repo.http.blobs import send_blob
from image_repo.http.caching import CACHE_CONTROL, CACHE_MAX_AGE, CACHE_RESULT_HEADER, VARY
from image_repo.http.context import blob_store, locks
from image_repo.http.errors import ErrorExample, invalid
from image_repo.http.front import remember_rendition
from image_repo.http.images.resources import BYTES_MISSING, NO_IMAGE, STORE_DOWN
from image_repo.http.observability import metrics
from image_repo.http.renditions.blueprint import renditions_bp
from image_repo.http.renditions.schemas import RenderQuerySchema, ThumbnailQuerySchema
from image_repo.http.responses import RENDITION_RESPONSES, IfNoneMatchHeader
from image_repo.http.sessions import db_session
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
    tenant_id = current_principal().tenant_id
    sha256, full_size = images.get_original(db_session(), tenant_id, image_id)
    if params.gravity == "face":
        # The image's faces are part of the rendition (and of its digest).
        focus = faces.focus_of(db_session(), tenant_id, image_id)
        params = replace(params, focus=focus)
    return send_rendition(sha256, full_size, params, remember=params.gravity != "face")


def send_rendition(
    sha256: str, full_size: tuple[int, int], params: RenderParams, *, remember: bool = True
):
    """The rendition of original ``sha256`` for ``params``, made if missing, as a response.

    ``remember``: the rendition front may serve this query again for any image
    (false when the digest depends on the image, as with its faces).
    """
    ref = renditions.RenditionRef.of(sha256, params)
    if remember:
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
    response.headers[CACHE_RESULT_HEADER] = "miss" if rendition.computed else "hit"
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
        With `gravity`, a square of that size cropped from the picture instead
        (`smart`: its most interesting part; `face`: keeping its faces).
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
        wanted = {"width": side, "height": side, "format": args.get("format")}
        if args.get("gravity"):
            # A square crop of the picture, its window placed by gravity.
            wanted |= {"fit": "cover", "gravity": args["gravity"]}
        return _send(image_id, _params(wanted))


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
