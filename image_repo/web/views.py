"""Serve the gallery's page and its static files under a strict Content-Security-Policy.

Asset URLs carry a digest of the static folder's contents, so browsers may keep
them for a year: a new release has new URLs. The page itself is revalidated.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, request, send_from_directory
from flask_smorest import abort

from image_repo.http.api import mark_public

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
PAGE = HERE / "index.html"
ASSET_PREFIX = "__ASSETS__"

# Everything from the service itself; no inline script or style, no plugins,
# no framing. Images may be blob: URLs (thumbnails fetched with the key).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The page's URL never holds a key, but share tokens may pass through it.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
ASSET_MAX_AGE = 365 * 86400

gallery_bp = Blueprint("gallery", __name__, url_prefix="/app")


@cache
def assets_version() -> str:
    """A digest of every static file's name and bytes (read once per process)."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(STATIC)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@cache
def _page() -> bytes:
    return PAGE.read_text().replace(ASSET_PREFIX, f"static/{assets_version()}").encode()


@gallery_bp.after_request
def _secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@gallery_bp.get("/")
def gallery_page():
    response = Response(_page(), mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    response.add_etag()
    return response.make_conditional(request)


@gallery_bp.get("/static/<version>/<path:filename>")
def gallery_asset(version: str, filename: str):
    if version != assets_version():
        # An older page asks for files this release no longer has.
        abort(404, message="No such gallery file (the gallery was updated: reload the page).")
    response = send_from_directory(STATIC, filename, max_age=ASSET_MAX_AGE)
    response.cache_control.immutable = True
    return response


mark_public(gallery_page)
mark_public(gallery_asset)
