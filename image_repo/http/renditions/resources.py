import time
from dataclasses import replace
from datetime import UTC, datetime

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError

from image_repo.domain import faces, images, renditions
from image_repo.domain.permissions import IMAGES_READ
from image_repo.domain.signing import SIGNING_PARAMETERS
from image_repo.http.auth import current_principal
from image_repo.http.blobs import send_blob
from image_repo.http.caching import (
    CACHE_CONTROL,
    CACHE_MAX_AGE,
    CACHE_RESULT_HEADER,
    VARY,
    signed_cache_control,
)
from image_repo.http.context import blob_store, locks
from image_repo.http.errors import ErrorExample, invalid
from image_repo.http.front import remember_rendition
from image_repo.http.images.resources import BYTES_MISSING, NO_IMAGE, STORE_DOWN
from image_repo.http.observability import metrics
from image_repo.http.renditions.blueprint import renditions_bp
from image_repo.http.renditions.schemas import (
    SIGNED_URL_EXAMPLE,
    RenderQuerySchema,
    SignedUrlSchema,
    SignUrlSchema,
    ThumbnailQuerySchema,
)
from image_repo.http.responses import RENDITION_RESPONSES, IfNoneMatchHeader
from image_repo.http.sessions import db_session
from image_repo.http.signing import UrlSigner, signed_max_age
from image_repo.imaging.limits import DecodeLimits
from image_repo.imaging.render import RenderError, RenderParams, validate
from image_repo.storage import BlobNotFound

SHARED_CACHE_CONTROL = "private, no-cache"
RENDITION_ERRORS = {
    404: [ErrorExample(NO_IMAGE, summary="No such image"), BYTES_MISSING],
    503: STORE_DOWN,
}


def rendition_params(args: dict) -> RenderParams:
    config = current_app.config
    if args.get("upscale") and not config["RENDER_ALLOW_UPSCALE"]:
        abort(
            422,
            message="Upscaling is not allowed here.",
            errors={"query": {"upscale": ["not allowed"]}},
        )
    args = {k: v for k, v in args.items() if v is not None and k not in SIGNING_PARAMETERS}
    args.setdefault("format", config["RENDER_DEFAULT_FORMAT"])
    args.setdefault("background", config["RENDER_BACKGROUND"])
    side = config["RENDER_MAX_SIDE"]
    try:
        return validate(RenderParams(**args), max_width=side, max_height=side)
    except RenderError as exc:
        abort(422, message="Bad rendition parameters.", errors={"query": exc.errors})


def thumbnail_params(args: dict) -> RenderParams:
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
    return rendition_params(wanted)


def _send(image_id: str, params: RenderParams):
    return send_rendition(current_principal().tenant_id, image_id, params)


def send_rendition(
    tenant_id: str,
    image_id: str,
    params: RenderParams,
    *,
    shared: bool = False,
    remember: bool = True,
):
    """The rendition of a tenant's image; ``shared``: for a share link's visitor
    (not cacheable by others, and nothing taught to the rendition front);
    ``remember``: whether the front may map this query to this digest for any
    image (not when the parameters depend on the image, as a face's crop does)."""
    sha256, full_size = images.get_original(db_session(), tenant_id, image_id)
    if params.gravity == "face":
        # The image's faces are part of the rendition, and so of its digest.
        params = replace(params, focus=faces.focus_of(db_session(), tenant_id, image_id))
        remember = False
    ref = renditions.RenditionRef.of(sha256, params)
    if not shared and remember:
        remember_rendition(ref)
    if request.if_none_match.contains(ref.etag):
        # The client has it: no storage round trip, no decode.
        metrics().rendition_cache.labels("hit").inc()
        response = current_app.response_class(status=304)
        response.set_etag(ref.etag)
        return _cache_headers(response, shared)
    max_age = signed_max_age()
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
        max_age=CACHE_MAX_AGE if max_age is None else max_age,
    )
    if response.status_code not in (200, 206):
        return response  # a redirect to a presigned URL
    response.headers[CACHE_RESULT_HEADER] = "miss" if rendition.computed else "hit"
    return _cache_headers(response, shared)


def _cache_headers(response, shared: bool = False):
    if shared:
        # A share may be revoked at any time: the browser asks again each time (ETag).
        response.headers["Cache-Control"] = SHARED_CACHE_CONTROL
        return response
    max_age = signed_max_age()
    # A signed URL may be cached by anyone, until it expires.
    response.headers["Cache-Control"] = (
        CACHE_CONTROL if max_age is None else signed_cache_control(max_age)
    )
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
        return _send(image_id, thumbnail_params(args))


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
        return _send(image_id, rendition_params(args))


# What each kind of signed URL may carry, as its query parameters.
SIGNABLE_PARAMETERS = {
    "original": ("download",),
    "thumbnail": ("size", "format"),
    "render": tuple(name for name in RenderQuerySchema().fields if name not in SIGNING_PARAMETERS),
}
SIGNED_PATHS = {"original": "file", "thumbnail": "thumbnail", "render": "render"}


def _query_value(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _check_signable(kind: str, params: dict[str, str]) -> None:
    """422 unless the URL's query is one its operation would accept."""
    extra = sorted(set(params) - set(SIGNABLE_PARAMETERS[kind]))
    if extra:
        abort(
            422,
            message=f"Not a parameter of {kind!r}: {', '.join(extra)}.",
            errors={"json": {name: [f"not a parameter of {kind!r}"] for name in extra}},
        )
    if kind == "render":
        try:
            loaded = RenderQuerySchema().load(params)
        except ValidationError as exc:  # the same checks as the request will meet
            abort(422, message="Bad rendition parameters.", errors={"json": exc.messages})
        rendition_params(loaded)
    elif kind == "thumbnail":
        sizes = current_app.config["THUMBNAIL_SIZES"]
        if params.get("size", "thumb") not in sizes:
            abort(
                422,
                message=f"Unknown thumbnail size {params['size']!r}; sizes: {', '.join(sizes)}.",
                errors={"json": {"size": [f"must be one of {', '.join(sizes)}"]}},
            )


@renditions_bp.route("/<image_id:image_id>/signed-url")
class SignedUrl(MethodView):
    @renditions_bp.operation(
        "signImageUrl",
        permission=IMAGES_READ,
        errors={
            404: NO_IMAGE,
            422: [
                ErrorExample(
                    "expires_in is over the longest a signed URL may live (604800 seconds).",
                    {"json": {"expires_in": ["must be at most 604800"]}},
                    summary="Too long",
                ),
                ErrorExample(
                    "Not a parameter of 'original': width.",
                    {"json": {"width": ["not a parameter of 'original'"]}},
                    summary="Parameter of another rendition",
                ),
            ],
        },
    )
    @renditions_bp.arguments(SignUrlSchema(), example=SIGNED_URL_EXAMPLE)
    @renditions_bp.response(200, SignedUrlSchema)
    def post(self, body, image_id):
        """Sign a URL of the image's original, a thumbnail or a rendition

        The URL works with no key (in an `<img>` tag, a CDN) until `expires_at`,
        for exactly this image and these parameters, while the key that asked
        works: revoking the key, or rotating the service's URL secret, stops it.
        """
        config = current_app.config
        kind = body.pop("rendition")
        expires_in = body.pop("expires_in", config["SIGNED_URL_TTL"])
        longest = config["SIGNED_URL_MAX_TTL"]
        if expires_in > longest:
            abort(
                422,
                message=f"expires_in is over the longest a signed URL may live ({longest} seconds).",
                errors={"json": {"expires_in": [f"must be at most {longest}"]}},
            )
        params = {name: _query_value(value) for name, value in body.items()}
        _check_signable(kind, params)
        images.get_original(db_session(), current_principal().tenant_id, image_id)  # 404
        expires = int(time.time()) + expires_in
        path = f"/images/{image_id}/{SIGNED_PATHS[kind]}"
        url = UrlSigner.for_key(current_principal().key_id).url(path, params, expires)
        return {"url": url, "expires_at": datetime.fromtimestamp(expires, UTC)}
