"""The face photos (``tests/data/faces``), their manifest, and running the analysis."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from image_repo.domain import faces
from image_repo.http.context import services_of
from image_repo.imaging.limits import DecodeLimits
from tests.support.images import upload

FACES_DIR = Path(__file__).resolve().parents[1] / "data" / "faces"


@cache
def manifest() -> dict[str, dict]:
    """file name -> {"faces": count, "people": [who, left to right]} (read at test time)."""
    return json.loads((FACES_DIR / "manifest.json").read_text())["files"]


def face_path(name: str) -> Path:
    return FACES_DIR / name


def upload_photo(client, headers, name: str) -> str:
    response = upload(client, headers, face_path(name).read_bytes(), name)
    assert response.status_code in (200, 201), response.json
    return response.json["id"]


def analyse(app, tenant_id: str, image_id: str) -> faces.Analysis:
    """What the "faces" analysis job does for one image, in its own transaction."""
    services = services_of(app)
    session = services.sessions()
    try:
        result = faces.analyse_image(
            session,
            services.blob_store,
            tenant_id,
            image_id,
            operator_setting=app.config["FACES"],
            limits=DecodeLimits.from_config(app.config),
        )
        session.commit()
        return result
    finally:
        session.close()
