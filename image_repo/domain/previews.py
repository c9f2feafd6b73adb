"""The ``preview`` analysis: a 1024 px copy of every large original, made in a job.

Small renditions start from it instead of decoding the original (see
``imaging.preview`` and ``imaging.render.previews``). A large L or RGB JPEG
gets its preview during the upload, from the decode that validates it, and
its row is done at once; every other large image (PNG, WebP, AVIF, HEIC,
TIFF, GIF, CMYK JPEG, or any image uploaded with previews off) gets it here.
The preview is named by the original's hash: making it twice writes the
same bytes, and a preview already there is kept.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from image_repo.db.models import Image, Tenant
from image_repo.domain import analyses
from image_repo.domain.errors import InvalidInput
from image_repo.domain.renditions import put_preview
from image_repo.imaging.limits import DecodeLimits, DecodeTimeout, LimitExceeded
from image_repo.imaging.preview import MIN_SOURCE_SIDE
from image_repo.imaging.render.previews import make_preview
from image_repo.storage import blob_key, preview_key

KIND = "preview"
# A job is not a request: a large HEIC may take longer than a request's
# decode deadline on a busy machine. Still bounded, by this many times it.
JOB_DECODE_FACTOR = 6


def enabled(services: Any, tenant: Tenant) -> bool:
    return bool(services.config["RENDITION_PREVIEWS"])


def applies(services: Any, image: Image) -> bool:
    return max(image.stored_width, image.stored_height) >= MIN_SOURCE_SIDE


def run(services: Any, session: Session, image: Image) -> None:
    store = services.blob_store
    if store.exists(preview_key(image.sha256)):
        return  # made at upload, or by an earlier run
    config = services.config
    limits = DecodeLimits.from_config(config)
    limits = replace(limits, decode_seconds=limits.decode_seconds * JOB_DECODE_FACTOR)
    try:
        local = store.local_path(blob_key(image.sha256))
        if local is not None:
            data = make_preview(local, limits=limits)
        else:
            with store.open(blob_key(image.sha256)) as stream:
                data = make_preview(stream, limits=limits)
    except (LimitExceeded, DecodeTimeout) as exc:
        raise InvalidInput(f"no preview: {exc}") from exc
    if data is not None:
        put_preview(store, image.sha256, data)


analyses.register(KIND, run, enabled=enabled, applies=applies)
