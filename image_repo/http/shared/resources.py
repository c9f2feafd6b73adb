"""The public side of share links, for visitors with no key.

``/s/{token}`` is a page (the image, or the collection as a grid) or, with
``Accept: application/json``, the same data as JSON; ``/s/{token}/images/{id}``
one image of it; ``.../thumbnail``, ``.../render`` and (when the share allows)
``.../original`` its bytes. Every answer is charged to the share's own budget
(``IMAGE_REPO_SHARE_RATELIMIT``) and carries a strict Content-Security-Policy,
``Referrer-Policy: no-referrer`` and ``X-Robots-Tag: noindex`` so that the
token leaks nowhere. An unknown, expired or deleted link gets the same 404.

A password-protected share first shows a form; the right password (attempts
limited by ``IMAGE_REPO_SHARE_PASSWORD_RATELIMIT``) sets a short-lived signed
cookie scoped to that link's path.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from flask import (
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    send_from_directory,
)
from flask.views import MethodView
from flask_smorest import abort
from itsdangerous import BadSignature, URLSafeTimedSerializer

from image_repo.domain import albums, shares
from image_repo.domain.errors import NotFound
from image_repo.domain.image_fields import served_filename
from image_repo.http.api import Blueprint as ApiBlueprint
from image_repo.http.api import mark_public
from image_repo.http.blobs import send_blob
from image_repo.http.context import current_services
from image_repo.http.images.schemas import FileQuerySchema
from image_repo.http.renditions.resources import (
    SHARED_CACHE_CONTROL,
    rendition_params,
    send_rendition,
    thumbnail_params,
)
from image_repo.http.renditions.schemas import RenderQuerySchema, ThumbnailQuerySchema
from image_repo.http.sessions import db_session
from image_repo.http.shared.blueprint import shared_bp
from image_repo.services.ratelimits import READ, WRITE
from image_repo.storage import blob_key

SHARE_ASSETS = Path(__file__).resolve().parent.parent.parent / "static" / "share"
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
ACCESS_SECONDS = 3600  # how long a right password opens its share in that browser
PREVIEW_SIDE = 1600
GRID_SIZE = "medium"
WRONG_PASSWORD = "That is not the password of this link."  # noqa: S105 - a message
NEEDS_PASSWORD = "This link needs its password: POST it as `password` to the link."  # noqa: S105


# --- what every answer here carries ------------------------------------------------


@shared_bp.after_request
def _privacy_headers(response):
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == (
        "application/json"
    )


def _gone(html: bool):
    """The one answer for unknown, expired and deleted links (and what they do not show)."""
    if html and not _wants_json():
        return make_response(render_template("share_gone.html"), 404)
    abort(404, message=shares.GONE)


def _open(token: str, *, html: bool = False):
    """The live share for ``token``, charged one request; else the 404 answer (raised)."""
    try:
        share = shares.open_share(db_session(), token)
    except NotFound:
        raise _Answer(_gone(html)) from None
    _charge(share, READ)
    return share


def _charge(share, kind: str) -> None:
    charge = g.charge = current_services().share_budgets.charge(f"share:{share.id}", kind)
    if charge is not None and not charge.allowed:
        abort(429, message=f"This link is asked too often ({charge.limit}); try again later.")


class _Answer(Exception):
    def __init__(self, response) -> None:
        super().__init__("answer")
        self.response = response


def _answers(func):
    def view(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except _Answer as answer:
            return answer.response

    view.__name__ = func.__name__
    view.__doc__ = func.__doc__
    return view


# --- passwords -----------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="image-repo.share-access")


def _cookie_name(share) -> str:
    return f"share_access_{share.id}"


def _unlocked(share) -> bool:
    if share.password_hash is None:
        return True
    value = request.cookies.get(_cookie_name(share))
    if not value:
        return False
    try:
        # Bound to the share and to its password hash (a new hash voids old cookies).
        opened = _serializer().loads(value, max_age=ACCESS_SECONDS)
    except BadSignature:
        return False
    return opened == [share.id, share.password_hash[-16:]]


def _locked(share, token: str, html: bool, message: str | None = None, status: int = 401):
    if html and not _wants_json():
        page = render_template("share_password.html", token=token, label=share.label, error=message)
        return make_response(page, status)
    abort(
        status,
        message=message or NEEDS_PASSWORD,
        errors={"password": ["wrong" if message else "required"]},
    )


def _require_unlocked(share, token: str, *, html: bool = False) -> None:
    if not _unlocked(share):
        raise _Answer(_locked(share, token, html))


# --- what a visitor sees ---------------------------------------------------------------


def _base(token: str) -> str:
    return f"{request.host_url.rstrip('/')}{request.script_root}/s/{token}"


def _image_view(share, token: str, image) -> dict:
    base = f"{_base(token)}/images/{image.id}"
    urls = {
        "page": base,
        "thumbnail": f"{base}/thumbnail",
        "preview": f"{base}/render?width={PREVIEW_SIDE}&height={PREVIEW_SIDE}",
        "render": f"{base}/render",
    }
    if share.allow_original:
        urls["original"] = f"{base}/original"
    return {
        "id": image.id,
        "title": image.title,
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "bytes": image.bytes,
        "taken_at": image.taken_at.isoformat() if image.taken_at else None,
        "urls": urls,
    }


def _share_view(share) -> dict:
    title = share.label
    if title is None and share.collection_id is not None:
        title = albums.get_collection(db_session(), share.tenant_id, share.collection_id).name
    return {
        "kind": "image" if share.image_id else "collection",
        "title": title,
        "expires_at": share.expires_at.astimezone(UTC).isoformat(),
        "allow_original": share.allow_original,
    }


def _srcset(image_view: dict) -> str:
    base = image_view["urls"]["render"]
    widths = [w for w in (480, 960, 1600) if w < image_view["width"]] + [
        min(image_view["width"], 2400)
    ]
    return ", ".join(f"{base}?width={w} {w}w" for w in widths)


class SharePage(MethodView):
    @_answers
    def get(self, token: str):
        share = _open(token, html=True)
        _require_unlocked(share, token, html=True)
        session = db_session()
        found = shares.shared_images(session, share)
        shares.record_view(session, share)
        data = {
            "share": _share_view(share),
            "images": [_image_view(share, token, i) for i in found],
        }
        if _wants_json():
            return data
        if share.image_id is not None:
            image = data["images"][0]
            return render_template(
                "share_image.html", data=data, image=image, srcset=_srcset(image), back=None
            )
        return render_template("share_grid.html", data=data, size=GRID_SIZE)

    @_answers
    def post(self, token: str):
        """The password form (or JSON ``{"password": ...}``)."""
        share = _open(token, html=True)
        if share.password_hash is None:
            return redirect(f"{request.script_root}/s/{token}", code=303)
        _charge(share, WRITE)  # attempts, right or wrong, against the share's own budget
        given = request.form.get("password")
        if given is None and request.is_json:
            body = request.get_json(silent=True)
            given = body.get("password") if isinstance(body, dict) else None
        if not isinstance(given, str) or not shares.check_password(share, given):
            return _locked(share, token, html=True, message=WRONG_PASSWORD, status=403)
        cookie = _serializer().dumps([share.id, share.password_hash[-16:]])
        if _wants_json() or request.is_json:
            response = make_response({"unlocked": True, "expires_in": ACCESS_SECONDS})
        else:
            response = redirect(f"{request.script_root}/s/{token}", code=303)
        response.set_cookie(
            _cookie_name(share),
            cookie,
            max_age=ACCESS_SECONDS,
            path=f"{request.script_root}/s/{token}",
            secure=request.is_secure,
            httponly=True,
            samesite="Strict",
        )
        return response


class SharedImagePage(MethodView):
    @_answers
    def get(self, token: str, image_id: str):
        share = _open(token, html=True)
        _require_unlocked(share, token, html=True)
        session = db_session()
        try:
            image = shares.shared_image(session, share, image_id)
        except NotFound:
            raise _Answer(_gone(html=True)) from None
        shares.record_view(session, share)
        view = _image_view(share, token, image)
        data = {"share": _share_view(share), "image": view}
        if _wants_json():
            return data
        back = f"{request.script_root}/s/{token}" if share.collection_id else None
        return render_template(
            "share_image.html", data=data, image=view, srcset=_srcset(view), back=back
        )


def _shared_image(token: str, image_id: str):
    share = _open(token)
    _require_unlocked(share, token)
    try:
        shares.shared_image(db_session(), share, image_id)
    except NotFound:
        abort(404, message=shares.GONE)
    return share


def _query(schema):
    return ApiBlueprint.ARGUMENTS_PARSER.parse(schema, request, location="query")


class SharedThumbnail(MethodView):
    @_answers
    def get(self, token: str, image_id: str):
        share = _shared_image(token, image_id)
        params = thumbnail_params(_query(ThumbnailQuerySchema()))
        return send_rendition(share.tenant_id, image_id, params, shared=True)


class SharedRender(MethodView):
    @_answers
    def get(self, token: str, image_id: str):
        share = _shared_image(token, image_id)
        params = rendition_params(_query(RenderQuerySchema()))
        return send_rendition(share.tenant_id, image_id, params, shared=True)


class SharedOriginal(MethodView):
    @_answers
    def get(self, token: str, image_id: str):
        share = _shared_image(token, image_id)
        if not share.allow_original:
            abort(404, message="This link shares renditions only, not the original files.")
        args = _query(FileQuerySchema())
        image = shares.shared_image(db_session(), share, image_id)
        response = send_blob(
            current_services().blob_store,
            blob_key(image.sha256),
            mimetype=image.mime_type,
            etag=image.sha256,
            size=image.bytes,
            last_modified=image.uploaded_at,
            max_age=0,
            download_name=served_filename(image.filename, image.format),
            as_attachment=args["download"],
        )
        response.headers["Cache-Control"] = SHARED_CACHE_CONTROL
        return response


def share_asset(filename: str):
    return send_from_directory(SHARE_ASSETS, filename, max_age=86400)


def _routes() -> None:
    def public(view_class, name: str, operation_id: str):
        for method in ("get", "post"):
            handler = getattr(view_class, method, None)
            if handler is not None:
                mark_public(handler, f"{operation_id}{method.title()}")
        return view_class.as_view(name)

    shared_bp.add_url_rule(
        "/<token>", view_func=public(SharePage, "SharePage", "sharePage"), methods=["GET", "POST"]
    )
    image = "/<token>/images/<image_id:image_id>"
    shared_bp.add_url_rule(
        image, view_func=public(SharedImagePage, "SharedImagePage", "sharedImage")
    )
    shared_bp.add_url_rule(
        f"{image}/thumbnail", view_func=public(SharedThumbnail, "SharedThumbnail", "sharedThumb")
    )
    shared_bp.add_url_rule(
        f"{image}/render", view_func=public(SharedRender, "SharedRender", "sharedRender")
    )
    shared_bp.add_url_rule(
        f"{image}/original", view_func=public(SharedOriginal, "SharedOriginal", "sharedOriginal")
    )
    shared_bp.add_url_rule(
        "/_assets/<path:filename>", view_func=mark_public(share_asset, "shareAsset")
    )


_routes()
