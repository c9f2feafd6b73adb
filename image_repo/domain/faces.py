"""Faces: finding them in a tenant's images, and the privacy switch that governs it.

Face analysis runs only when the operator allows it (``IMAGE_REPO_FACES``)
*and* the tenant has turned its own switch on (``faces_enabled``). What is
stored per face: its box in the displayed image, a 128-number descriptor
(a biometric template: it says who a face is like, not what it looked
like) and the person it was grouped with; per person: an optional name, a
hidden flag, a cover face and the sum of its faces' descriptors. Turning the
tenant's switch off deletes all of that at once; purging an image deletes
its faces (the database's cascade).

``analyse_image`` is what the "faces" analysis job runs: idempotent (an
image whose faces are recorded is left alone), quiet for an image that is
gone or in the trash, and a no-op while analysis is off.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from image_repo.db.models import Face, Image, Tenant
from image_repo.db.types import utcnow
from image_repo.domain import analyses, people
from image_repo.domain.errors import InvalidInput, NotFound
from image_repo.domain.ids import new_id
from image_repo.domain.trash import NOT_TRASHED
from image_repo.imaging import faces as face_finder
from image_repo.imaging.limits import DEFAULT_LIMITS, DecodeLimits, DecodeTimeout, LimitExceeded
from image_repo.storage import BlobNotFound, BlobStore, blob_key, preview_key

KIND = "faces"
# A job is not a request: on a busy machine a decode may take longer than a
# request's deadline. Still bounded, by this many times it.
JOB_DECODE_FACTOR = 6

# How much of the picture around a face its thumbnail shows: the face's
# larger side times this, so hair and chin are in.
THUMBNAIL_MARGIN = 1.6


@dataclass(frozen=True)
class Analysis:
    """What ``analyse_image`` did: ``status`` is done, skipped (analysis off), present
    (recorded before) or gone (no such image in the library)."""

    status: str
    faces: int = 0


def analysis_on(operator_setting: bool, tenant: Tenant) -> bool:
    return bool(operator_setting and tenant.faces_enabled)


def _tenant(session: Session, tenant_id: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"No tenant {tenant_id!r}.")
    return tenant


@contextmanager
def _read(store: BlobStore, key: str) -> Iterator[str | BinaryIO]:
    local = store.local_path(key)
    if local is not None:
        yield str(local)
        return
    with store.open(key) as stream:
        yield stream


def _find(store: BlobStore, image: Image, limits: DecodeLimits) -> list[face_finder.FoundFace]:
    displayed = (image.width, image.height)
    # The preview (1024 px) is what detection looks at anyway: far cheaper than the original.
    try:
        with _read(store, preview_key(image.sha256)) as source:
            return face_finder.analyse(source, displayed, limits)
    except BlobNotFound:
        pass
    except (OSError, SyntaxError, ValueError):
        pass  # a damaged preview: the original decides
    with _read(store, blob_key(image.sha256)) as source:
        return face_finder.analyse(source, displayed, limits)


def analyse_image(
    session: Session,
    store: BlobStore,
    tenant_id: str,
    image_id: str,
    *,
    operator_setting: bool,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> Analysis:
    """Find an image's faces, store them and group them into people (flushes only)."""
    tenant = _tenant(session, tenant_id)
    if not analysis_on(operator_setting, tenant):
        return Analysis("skipped")
    image = session.scalar(
        select(Image).where(Image.id == image_id, Image.tenant_id == tenant_id, NOT_TRASHED)
    )
    if image is None:
        return Analysis("gone")
    if session.scalar(select(Face.id).where(Face.image_id == image_id).limit(1)) is not None:
        return Analysis("present")
    found = _find(store, image, limits)
    now = utcnow()
    rows = [
        Face(
            id=new_id("fce"),
            tenant_id=tenant_id,
            image_id=image_id,
            box_left=face.box.left,
            box_top=face.box.top,
            box_width=face.box.width,
            box_height=face.box.height,
            descriptor=face_finder.descriptor_bytes(face.descriptor),
            created_at=now,
        )
        for face in found
    ]
    session.add_all(rows)
    session.flush()
    people.assign(session, tenant_id, rows)
    return Analysis("done", len(rows))


def image_faces(session: Session, tenant_id: str, image_id: str) -> list[Face]:
    """An image's faces, left to right (NotFound for an image not in the library)."""
    exists = session.scalar(
        select(Image.id).where(Image.id == image_id, Image.tenant_id == tenant_id, NOT_TRASHED)
    )
    if exists is None:
        raise NotFound(f"No image {image_id!r}.")
    return list(
        session.scalars(
            select(Face)
            .where(Face.image_id == image_id, Face.tenant_id == tenant_id)
            .order_by(Face.box_left, Face.box_top, Face.id)
        )
    )


def boxes_of(session: Session, tenant_id: str, image_id: str) -> list[tuple[int, int, int, int]]:
    """(left, top, width, height) of an image's faces: what gravity=face keeps in view."""
    rows = session.execute(
        select(Face.box_left, Face.box_top, Face.box_width, Face.box_height)
        .where(Face.image_id == image_id, Face.tenant_id == tenant_id)
        .order_by(Face.box_left, Face.box_top)
    ).all()
    return [tuple(row) for row in rows]


def get_face(session: Session, tenant_id: str, face_id: str) -> Face:
    """A face of an image in the library (NotFound otherwise)."""
    face = session.scalar(
        select(Face)
        .join(Image, Image.id == Face.image_id)
        .where(Face.id == face_id, Face.tenant_id == tenant_id, NOT_TRASHED)
    )
    if face is None:
        raise NotFound(f"No face {face_id!r}.")
    return face


def thumbnail_crop(face: Face, displayed: tuple[int, int]) -> tuple[int, int, int, int]:
    """A square (left, top, right, bottom) around the face, inside the displayed image."""
    side = round(max(face.box_width, face.box_height) * THUMBNAIL_MARGIN)
    side = max(1, min(side, *displayed))
    cx, cy = face.box_left + face.box_width / 2, face.box_top + face.box_height / 2
    left = min(max(0, round(cx - side / 2)), displayed[0] - side)
    top = min(max(0, round(cy - side / 2)), displayed[1] - side)
    return left, top, left + side, top + side


def face_source(session: Session, tenant_id: str, face_id: str) -> tuple[Face, Image]:
    face = get_face(session, tenant_id, face_id)
    image = session.get(Image, face.image_id)
    assert image is not None  # joined above
    return face, image


@dataclass(frozen=True)
class FaceSettings:
    enabled: bool  # the tenant's switch
    available: bool  # the operator's setting
    faces: int
    people: int

    @property
    def active(self) -> bool:
        return self.enabled and self.available


def settings(session: Session, tenant_id: str, *, operator_setting: bool) -> FaceSettings:
    from sqlalchemy import func

    from image_repo.db.models import Person

    tenant = _tenant(session, tenant_id)
    n_faces = session.scalar(select(func.count()).where(Face.tenant_id == tenant_id))
    n_people = session.scalar(select(func.count()).where(Person.tenant_id == tenant_id))
    return FaceSettings(tenant.faces_enabled, operator_setting, n_faces or 0, n_people or 0)


def set_enabled(session: Session, tenant_id: str, enabled: bool) -> tuple[int, int]:
    """Turn a tenant's face analysis on or off; off deletes its faces, descriptors and
    people at once. Returns the (faces, people) deleted."""
    tenant = _tenant(session, tenant_id)
    tenant.faces_enabled = enabled
    session.flush()
    if enabled:
        return 0, 0
    # Their analysis rows go too: turned on again, `image-repo analyze` finds
    # every image lacking faces.
    analyses.forget(session, KIND, tenant_id)
    return people.forget_tenant(session, tenant_id)


def unanalysed_images(session: Session, tenant_id: str) -> list[str]:
    """Ids of the tenant's library images with no face recorded (some have none to find)."""
    has_face = select(Face.id).where(Face.image_id == Image.id).exists()
    return list(
        session.scalars(
            select(Image.id).where(Image.tenant_id == tenant_id, NOT_TRASHED, ~has_face)
        )
    )


def focus_of(
    session: Session, tenant_id: str, image_id: str
) -> tuple[float, float, float, float] | None:
    """The region holding all of an image's faces, as fractions of the displayed image
    (what ``gravity=face`` keeps in view); None when it has none recorded."""
    row = session.execute(
        select(Image.width, Image.height).where(Image.id == image_id, Image.tenant_id == tenant_id)
    ).one_or_none()
    boxes = boxes_of(session, tenant_id, image_id)
    if row is None or not boxes or not row.width or not row.height:
        return None
    left = min(box[0] for box in boxes) / row.width
    top = min(box[1] for box in boxes) / row.height
    right = max(box[0] + box[2] for box in boxes) / row.width
    bottom = max(box[1] + box[3] for box in boxes) / row.height
    return (left, top, min(1.0, right), min(1.0, bottom))


# --- the "faces" analysis (domain.analyses; run by the job queue) ------------------


def _enabled(services: Any, tenant: Tenant) -> bool:
    return analysis_on(services.config["FACES"], tenant)


def _run(services: Any, session: Session, image: Image) -> None:
    limits = DecodeLimits.from_config(services.config)
    limits = replace(limits, decode_seconds=limits.decode_seconds * JOB_DECODE_FACTOR)
    try:
        analyse_image(
            session,
            services.blob_store,
            image.tenant_id,
            image.id,
            operator_setting=services.config["FACES"],
            limits=limits,
        )
    except (LimitExceeded, DecodeTimeout) as exc:
        # No retry mends these: the job fails for good.
        raise InvalidInput(f"no face analysis: {exc}") from exc


def mark_done(session: Session, image_id: str) -> None:
    """Record the image's "faces" analysis as done (when it was run outside a job)."""
    analyses.finish(session, image_id, KIND)


analyses.register(KIND, _run, enabled=_enabled)
