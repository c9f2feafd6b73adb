"""Serve Swagger UI's and ReDoc's files from the service itself (no CDN)."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, send_from_directory

from image_repo.http.api import mark_public

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
REDOC_DIST = Path(__file__).resolve().parent.parent / "static" / "redoc"

# flask-smorest's own documentation views (bound methods it registers itself).
PUBLIC_DOC_ENDPOINTS = frozenset(
    f"api-docs.{name}" for name in ("openapi_json", "openapi_swagger_ui", "openapi_redoc")
)

docs_assets_bp = Blueprint("docs_assets", __name__, url_prefix="/docs/assets")


@docs_assets_bp.get("/swagger-ui/<path:filename>")
def swagger_ui_asset(filename: str):
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=86400)


@docs_assets_bp.get("/redoc/<path:filename>")
def redoc_asset(filename: str):
    return send_from_directory(REDOC_DIST, filename, max_age=86400)


mark_public(swagger_ui_asset)
mark_public(redoc_asset)
