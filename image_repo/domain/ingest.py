"""Taking an upload in: size, dedup, validation by decoding, quota, storage, row.

The order matters. The cheap checks come first (size, then the tenant's
existing copy by hash); the decode proves the bytes are an image we accept;
the bytes are stored before the row that points at them is written, so a
crash can leave unreferenced bytes (collected by ``gc``) but never a row
without its bytes. The unique (tenant, sha256) constraint settles concurrent
uploads of the same bytes: exactly one insert wins, the others (their insert
undone alone, in a savepoint) answer with the winner. The caller commits.

Bytes the tenant has in its trash are that image: the upload restores it, as
it was (metadata, tags, albums), and answers with it, as for any bytes the
tenant already has. (A new image beside the trashed one would break the one
image per content rule; replacing it would purge, which only ``trash:purge``
may do.) Trashed images count against the quotas, so restoring one never
passes a quota.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from image_repo.db.models import Image, ImageTag, Tenant
from image_repo.db.types import utcnow
from image_repo.domain import analyses, previews
from image_repo.domain.errors import (
    BackendUnavailable,
    InvalidInput,
    QuotaExceeded,
    TooLarge,
    UnsupportedMedia,
)
from image_repo.domain.ids import new_id
from image_repo.domain.image_fields import ImageFields, clean_tags, safe_filename, taken_at_fields
from image_repo.domain.renditions import put_preview
from image_repo.domain.trash import restore
from image_repo.imaging.formats import ACCEPTED_FORMATS
from image_repo.imaging.limits import DEFAULT_LIMITS, DecodeLimits
from image_repo.imaging.probe import ImageInfo, ImageRejected, probe
from image_repo.storage import BlobStore, StorageError, blob_key

log = logging.getLogger(__name__)

HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class IngestResult:
    image: Image
    created: bool
    decode_seconds: float = 0.0  # time spent validating by decoding


def sha256_of(stream: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    stream.seek(0)
    while chunk := stream.read(HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return digest.hexdigest(), size


_REJECTION = {
    "not_an_image": UnsupportedMedia,
    "unsupported_format": UnsupportedMedia,
    "corrupt": InvalidInput,
    "too_many_pixels": TooLarge,
    "too_many_frames": TooLarge,
    "too_many_scans": TooLarge,
    "too_many_decoded_pixels": TooLarge,
    "decode_timeout": InvalidInput,
}


def _validate(
    stream: BinaryIO, max_pixels: int, make_preview: bool, limits: DecodeLimits
) -> ImageInfo:
    try:
        return probe(stream, max_pixels=max_pixels, make_preview=make_preview, limits=limits)
    except ImageRejected as exc:
        raise _REJECTION[exc.reason](exc.message, image=[exc.reason]) from exc


def _check_quota(session: Session, tenant_id: str, size: int) -> None:
    # Lock the tenant row (PostgreSQL) so concurrent uploads see each other's use.
    # Every row counts, trashed ones too: they hold their bytes until purged.
    tenant = session.scalar(select(Tenant).where(Tenant.id == tenant_id).with_for_update())
    if tenant is None or (tenant.max_images is None and tenant.max_bytes is None):
        return
    count, used = session.execute(
        select(func.count(Image.id), func.coalesce(func.sum(Image.bytes), 0)).where(
            Image.tenant_id == tenant_id
        )
    ).one()
    if tenant.max_images is not None and count + 1 > tenant.max_images:
        raise QuotaExceeded(
            f"The tenant's quota of {tenant.max_images} images is used up.", quota=["max_images"]
        )
    if tenant.max_bytes is not None and used + size > tenant.max_bytes:
        raise QuotaExceeded(
            f"This upload would pass the tenant's quota of {tenant.max_bytes} bytes ({used} used).",
            quota=["max_bytes"],
        )


def _existing(session: Session, tenant_id: str, sha: str) -> Image | None:
    """The tenant's image of these bytes, in the library; one in the trash is restored.

    None when there is none (also when a trashed one was purged just now)."""
    for _ in range(3):
        image = session.scalar(
            select(Image).where(Image.tenant_id == tenant_id, Image.sha256 == sha)
        )
        if image is None or image.trashed_at is None or restore(session, image):
            return image
        # Restored or purged by another request meanwhile: look again.
        session.expire(image)
    return image


def ingest(
    session: Session,
    store: BlobStore,
    *,
    tenant_id: str,
    stream: BinaryIO,
    filename: str | None,
    fields: ImageFields,
    max_bytes: int,
    max_pixels: int,
    make_preview: bool = True,
    limits: DecodeLimits = DEFAULT_LIMITS,
    services: Any = None,
) -> IngestResult:
    """Take an upload in; with ``services``, a new image's analyses are asked for
    (``domain.analyses``: queued when the caller commits)."""
    sha, size = sha256_of(stream)
    if size > max_bytes:
        raise TooLarge(f"The file is {size} bytes; the limit is {max_bytes}.", image=["too large"])
    if size == 0:
        raise UnsupportedMedia("The file is empty.", image=["not_an_image"])
    # Fields are checked whether or not the bytes are new: same request, same answer.
    tags = clean_tags(fields.tags)
    existing = _existing(session, tenant_id, sha)
    if existing is not None:
        return IngestResult(existing, created=False)

    started = time.perf_counter()
    info = _validate(stream, max_pixels, make_preview, limits)
    decode_seconds = time.perf_counter() - started
    _check_quota(session, tenant_id, size)

    stream.seek(0)
    try:
        store.put(blob_key(sha), stream)
    except StorageError as exc:
        raise BackendUnavailable("The image store is not available; nothing was saved.") from exc
    previewed = info.preview is not None and _store_preview(store, sha, info.preview)

    image = _new_image(tenant_id, sha, size, info, filename, fields, tags)
    try:
        with session.begin_nested():
            session.add(image)
    except IntegrityError:
        # Another upload of the same bytes won the race: answer with its image.
        winner = _existing(session, tenant_id, sha)
        if winner is None:
            raise
        return IngestResult(winner, created=False, decode_seconds=decode_seconds)
    if services is not None:
        analyses.request_new(session, services, image, done=[previews.KIND] if previewed else [])
    return IngestResult(image, created=True, decode_seconds=decode_seconds)


def _store_preview(store: BlobStore, sha: str, data: bytes) -> bool:
    # A preview only saves time: renditions decode the original without it.
    try:
        put_preview(store, sha, data)
    except StorageError:
        log.warning("could not store the preview of %s; renditions will decode the original", sha)
        return False
    return True


def _new_image(
    tenant_id: str,
    sha: str,
    size: int,
    info: ImageInfo,
    filename: str | None,
    fields: ImageFields,
    tags: list[str],
) -> Image:
    now = utcnow()
    image_format = ACCEPTED_FORMATS[info.format]
    taken_at, offset = taken_at_fields(fields.taken_at or info.taken_at)
    image_id = new_id("img")
    return Image(
        id=image_id,
        tenant_id=tenant_id,
        sha256=sha,
        version=1,
        filename=safe_filename(filename, image_format.extension),
        title=fields.title,
        description=fields.description,
        uploaded_at=now,
        updated_at=now,
        taken_at=taken_at,
        taken_at_offset=offset,
        sort_time=taken_at or now,
        format=info.format,
        mime_type=info.mime_type,
        bytes=size,
        width=info.width,
        height=info.height,
        stored_width=info.stored_width,
        stored_height=info.stored_height,
        frames=info.frames,
        animated=info.animated,
        color_mode=info.mode,
        has_alpha=info.has_alpha,
        has_icc=info.has_icc,
        orientation=info.orientation,
        camera_make=_short(info.camera_make),
        camera_model=_short(info.camera_model),
        lens=_short(info.lens),
        exposure_time=info.exposure_time,
        f_number=info.f_number,
        iso=info.iso,
        focal_length=info.focal_length,
        has_gps=info.has_gps or info.gps_latitude is not None,
        gps_latitude=info.gps_latitude,
        gps_longitude=info.gps_longitude,
        gps_altitude=info.gps_altitude,
        blurhash=info.blurhash,
        phash=info.phash,
        tags=[ImageTag(tag=tag, tenant_id=tenant_id) for tag in tags],
    )


def _short(value: str | None, limit: int = 100) -> str | None:
    return value[:limit] if value else value
