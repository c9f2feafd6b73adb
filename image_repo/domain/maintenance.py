"""Keeping the blob store and the database in step: ``gc`` and ``fsck``.

Deleting an image removes its row only. Bytes no row refers to are removed
here, once they are older than a grace period: an upload stores its bytes
before committing its row, so young unreferenced bytes may belong to an
upload still in flight.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from image_repo.db.models import Image
from image_repo.db.types import utcnow
from image_repo.domain.renditions import put_preview
from image_repo.imaging import preview
from image_repo.imaging.limits import DEFAULT_LIMITS, DecodeLimits
from image_repo.imaging.probe import ImageRejected, probe
from image_repo.storage import BlobNotFound, BlobStore, blob_key, preview_key, rendition_prefix

ORIGINALS = "originals/"
RENDITIONS = "renditions/"


def _sha_of_key(key: str) -> str:
    # originals/ab/cd/<sha> and renditions/ab/cd/<sha>/<digest>
    return key.split("/")[3]


def _referenced(session: Session) -> set[str]:
    return set(session.scalars(select(Image.sha256).distinct()))


@dataclass
class GcReport:
    originals_removed: list[str] = field(default_factory=list)
    renditions_removed: int = 0
    kept_young: int = 0
    temp_removed: int = 0


def collect_garbage(session: Session, store: BlobStore, *, grace: timedelta) -> GcReport:
    report = GcReport()
    cutoff = utcnow() - grace
    referenced = _referenced(session)
    for key in list(store.iter_keys(ORIGINALS)):
        sha = _sha_of_key(key)
        if sha in referenced:
            continue
        if store.modified_at(key) > cutoff:
            report.kept_young += 1
            continue
        # Re-check against the database right before deleting: an upload of
        # the same bytes may have committed since the set was read.
        if session.scalar(select(Image.id).where(Image.sha256 == sha).limit(1)):
            continue
        for rendition in list(store.iter_keys(rendition_prefix(sha))):
            store.delete(rendition)
            report.renditions_removed += 1
        store.delete(key)
        report.originals_removed.append(sha)
    # Renditions whose original is gone (left by a crash between deletes).
    for key in list(store.iter_keys(RENDITIONS)):
        sha = _sha_of_key(key)
        if sha not in referenced and not store.exists(blob_key(sha)):
            store.delete(key)
            report.renditions_removed += 1
    report.temp_removed = store.cleanup_temp(grace)
    return report


@dataclass
class FsckReport:
    checked: int = 0
    missing: list[str] = field(default_factory=list)  # image ids whose bytes are gone
    corrupt: list[str] = field(default_factory=list)  # image ids whose bytes changed
    orphans: list[str] = field(default_factory=list)  # blob hashes no image refers to

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt


def _stream_sha256(store: BlobStore, key: str) -> str:
    digest = hashlib.sha256()
    with store.open(key) as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def image_rows(session: Session) -> list[tuple[str, str]]:
    query = select(Image.id, Image.sha256).order_by(Image.sha256)
    return [(image_id, sha) for image_id, sha in session.execute(query)]


def fsck(
    session: Session,
    store: BlobStore,
    rows: list[tuple[str, str]],
    *,
    progress: Callable[[Iterator], Iterator] = iter,
) -> FsckReport:
    """Check every image row's bytes (present, right hash) and list orphaned bytes."""
    report = FsckReport()
    verdicts: dict[str, str] = {}  # sha -> "ok" | "missing" | "corrupt"
    for image_id, sha in progress(iter(rows)):
        report.checked += 1
        if sha not in verdicts:
            try:
                verdicts[sha] = "ok" if _stream_sha256(store, blob_key(sha)) == sha else "corrupt"
            except BlobNotFound:
                verdicts[sha] = "missing"
        if verdicts[sha] == "missing":
            report.missing.append(image_id)
        elif verdicts[sha] == "corrupt":
            report.corrupt.append(image_id)
    referenced = {sha for _, sha in rows}
    report.orphans = [
        _sha_of_key(key) for key in store.iter_keys(ORIGINALS) if _sha_of_key(key) not in referenced
    ]
    return report


@dataclass
class PreviewReport:
    made: int = 0
    present: int = 0
    skipped: int = 0  # decoded, but the rules give it no preview (changed since upload)
    missing: list[str] = field(default_factory=list)  # hashes whose original is gone
    failed: list[str] = field(default_factory=list)  # hashes refused by a decode now


def preview_candidates(session: Session) -> list[str]:
    """Hashes of stored originals that an upload today would give a preview."""
    side = preview.MIN_SOURCE_SIDE
    query = (
        select(Image.sha256)
        .where(
            Image.format.in_(preview.FORMATS),
            Image.color_mode.in_(preview.MODES),
            or_(Image.stored_width >= side, Image.stored_height >= side),
        )
        .distinct()
        .order_by(Image.sha256)
    )
    return list(session.scalars(query))


def make_previews(
    store: BlobStore,
    hashes: list[str],
    *,
    max_pixels: int,
    limits: DecodeLimits = DEFAULT_LIMITS,
    progress: Callable[[Iterator], Iterator] = iter,
) -> PreviewReport:
    """Make the previews these originals lack (uploaded before previews, or with them off)."""
    report = PreviewReport()
    for sha in progress(iter(hashes)):
        if store.exists(preview_key(sha)):
            report.present += 1
            continue
        try:
            with store.open(blob_key(sha)) as stream:
                info = probe(stream, max_pixels=max_pixels, make_preview=True, limits=limits)
        except BlobNotFound:
            report.missing.append(sha)
            continue
        except ImageRejected:
            report.failed.append(sha)
            continue
        if info.preview is None:
            report.skipped += 1
            continue
        put_preview(store, sha, info.preview)
        report.made += 1
    return report
