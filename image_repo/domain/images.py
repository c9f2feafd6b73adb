"""Finding, listing, changing and removing a tenant's images.

Listing is keyset-paged: a page ends with the (sort key, id) of its last
row, and the next page starts strictly after it, so the cost of a page does
not grow with its depth. Every query is scoped by tenant: another tenant's
image is simply not found; and to the library: an image in the trash is not
found either (see ``domain.trash``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Select, exists, func, or_, select, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from image_repo.db.models import CollectionImage, Image, ImageDayCount, ImageTag
from image_repo.db.types import utcnow
from image_repo.domain.errors import NotFound, PreconditionFailed
from image_repo.domain.image_fields import clean_tags, taken_at_fields
from image_repo.domain.trash import NOT_TRASHED

SORT_COLUMNS = {"uploaded_at": Image.uploaded_at, "taken_at": Image.sort_time}
# The same keys, as copied onto each tag of the image.
TAG_SORT_COLUMNS = {"uploaded_at": ImageTag.uploaded_at, "taken_at": ImageTag.sort_time}


@dataclass(frozen=True)
class ImageFilter:
    tag: str | None = None
    format: str | None = None
    taken_after: datetime | None = None
    taken_before: datetime | None = None
    uploaded_after: datetime | None = None
    uploaded_before: datetime | None = None
    q: str | None = None
    has_gps: bool | None = None
    sha256: str | None = None
    collection_id: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[Image]
    # (sort value, id) of the last item when there may be more, else None.
    next_after: tuple[datetime, str] | None


def get_image(session: Session, tenant_id: str, image_id: str) -> Image:
    image = session.scalar(
        select(Image).where(Image.id == image_id, Image.tenant_id == tenant_id, NOT_TRASHED)
    )
    if image is None:
        raise NotFound(f"No image {image_id!r}.")
    return image


def get_original(session: Session, tenant_id: str, image_id: str) -> tuple[str, tuple[int, int]]:
    """Content hash and stored size of an image (what renditions need): one narrow query."""
    row = session.execute(
        select(Image.sha256, Image.stored_width, Image.stored_height).where(
            Image.id == image_id, Image.tenant_id == tenant_id, NOT_TRASHED
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"No image {image_id!r}.")
    return row.sha256, (row.stored_width, row.stored_height)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filtered(query: Select, tenant_id: str, f: ImageFilter) -> Select:
    query = query.where(Image.tenant_id == tenant_id, NOT_TRASHED)
    if f.tag:
        query = query.where(
            exists().where(
                ImageTag.tenant_id == tenant_id,
                ImageTag.tag == f.tag,
                ImageTag.image_id == Image.id,
            )
        )
    if f.collection_id:
        query = query.where(
            exists().where(
                CollectionImage.collection_id == f.collection_id,
                CollectionImage.image_id == Image.id,
            )
        )
    if f.format:  # Pillow's name, in any case
        query = query.where(Image.format == f.format.upper())
    if f.taken_after:
        query = query.where(Image.taken_at >= f.taken_after)
    if f.taken_before:
        query = query.where(Image.taken_at < f.taken_before)
    if f.uploaded_after:
        query = query.where(Image.uploaded_at >= f.uploaded_after)
    if f.uploaded_before:
        query = query.where(Image.uploaded_at < f.uploaded_before)
    if f.q:
        pattern = _like_pattern(f.q.lower())
        query = query.where(
            or_(
                func.lower(Image.title).like(pattern, escape="\\"),
                func.lower(Image.filename).like(pattern, escape="\\"),
            )
        )
    if f.has_gps is not None:
        query = query.where(Image.has_gps.is_(f.has_gps))
    if f.sha256:
        query = query.where(Image.sha256 == f.sha256)
    return query


def list_images(
    session: Session,
    tenant_id: str,
    *,
    filters: ImageFilter,
    sort: str = "uploaded_at",
    descending: bool = True,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Page:
    if filters.tag:
        # Driven by the tag's own index, which holds the sort keys (kept equal
        # to the image's by the database): a page is one index range however
        # rare the tag, where walking the library in order until a page of
        # the tag turned up grew with the library.
        key = (TAG_SORT_COLUMNS[sort], ImageTag.image_id)
        query = select(Image).join(ImageTag, ImageTag.image_id == Image.id)
        query = query.where(ImageTag.tenant_id == tenant_id, ImageTag.tag == filters.tag)
        query = _filtered(query, tenant_id, replace(filters, tag=None))
    else:
        key = (SORT_COLUMNS[sort], Image.id)
        query = _filtered(select(Image), tenant_id, filters)
    if after is not None:
        position = tuple_(*key)
        query = query.where(position < tuple_(*after) if descending else position > tuple_(*after))
    order = [c.desc() for c in key] if descending else [c.asc() for c in key]
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    items = rows[:limit]
    next_after = None
    if more and items:
        last = items[-1]
        next_after = (last.uploaded_at if sort == "uploaded_at" else last.sort_time, last.id)
    return Page(items, next_after)


PERIOD_LENGTH = {"year": 4, "month": 7, "day": 10}


def timeline(session: Session, tenant_id: str, granularity: str) -> list[tuple[str, int]]:
    """Image counts per period of capture time (upload time when unknown), newest first.

    Summed from the per-day counts the database keeps (``image_day_counts``):
    the cost follows the number of days with pictures, not of pictures.
    """
    period = func.substr(ImageDayCount.day, 1, PERIOD_LENGTH[granularity])
    query = (
        select(period.label("period"), func.sum(ImageDayCount.image_count))
        .where(ImageDayCount.tenant_id == tenant_id, ImageDayCount.image_count > 0)
        .group_by("period")
        .order_by(period.desc())
    )
    return [(row[0], int(row[1])) for row in session.execute(query)]


def etag_of(image: Image) -> str:
    """Strong ETag of an image's metadata: changes with every update, and when one of its
    analyses (shown with it) changes state."""
    tag = f"{image.id}-v{image.version}"
    if image.analyses:
        states = ",".join(f"{a.kind}:{a.state}:{a.attempts}" for a in image.analyses)
        tag += "-" + hashlib.sha256(states.encode()).hexdigest()[:8]
    return tag


def update_image(
    session: Session,
    image: Image,
    changes: dict,
    *,
    if_match: set[str] | None = None,
) -> Image:
    """Apply client-settable changes; ``if_match`` holds ETags the client expects."""
    conditional = if_match is not None and "*" not in if_match
    if conditional and etag_of(image) not in if_match:
        raise PreconditionFailed(_CHANGED)
    _raise_version(session, image, only_from=image.version if conditional else None)
    for name in ("title", "description"):
        if name in changes:
            setattr(image, name, changes[name])
    if "taken_at" in changes:
        taken_at, offset = taken_at_fields(changes["taken_at"])
        image.taken_at, image.taken_at_offset = taken_at, offset
        image.sort_time = taken_at or image.uploaded_at
    if "tags" in changes:
        wanted = clean_tags(changes["tags"] or [])
        current = {t.tag: t for t in image.tags}
        image.tags = [
            current.get(tag) or ImageTag(tag=tag, tenant_id=image.tenant_id) for tag in wanted
        ]
    image.updated_at = utcnow()
    session.flush()
    return image


_CHANGED = "The image changed since you read it (ETag mismatch)."


def _raise_version(session: Session, image: Image, *, only_from: int | None) -> None:
    """Take the next version in the database itself, before any change.

    With ``only_from``, only if the stored version is still that one: the
    comparison and the write are one statement, so of two requests holding
    the same ETag exactly one wins (the other waits for the row, then finds
    it changed) instead of both passing a check made on what each had read.
    """
    query = update(Image).where(Image.id == image.id)
    if only_from is not None:
        query = query.where(Image.version == only_from)
    new_version = session.execute(
        query.values(version=Image.version + 1)
        .returning(Image.version)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if new_version is None:
        raise PreconditionFailed(_CHANGED)
    set_committed_value(image, "version", new_version)
