"""The trash: deleted images kept, hidden, for a while, then purged.

Deleting an image sets its ``trashed_at``; nothing else changes. Its row,
tags, collection memberships and bytes stay as they were, so a restore
brings back exactly what was deleted. While it is in the trash the image
is gone from everything that finds images: every query that does must keep
``NOT_TRASHED`` in its WHERE clause (lists, search, timeline, albums and
their counts, similar, renditions, the rendition front, and share links
when they come: a shared image in the trash is not served).

Purging deletes the row, and with it (by the database's cascades) its tags
and memberships; ``gc`` removes the bytes afterwards, when no row refers to
them. Trashed images still count against the tenant's quotas until they are
purged, so a quota cannot be dodged by deleting and restoring.

Each change is one conditional UPDATE or DELETE, so concurrent trash,
restore and purge of one image settle in the database: the one whose
condition still holds wins, the others find nothing (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from image_repo.db.models import Image
from image_repo.db.types import utcnow
from image_repo.domain import analyses
from image_repo.domain.errors import NotFound

# In the library, not in the trash: every query that finds images keeps this.
NOT_TRASHED = Image.trashed_at.is_(None)
TRASHED = Image.trashed_at.is_not(None)


@dataclass(frozen=True)
class TrashPage:
    items: list[Image]
    # (trashed_at, id) of the last item when there may be more, else None.
    next_after: tuple[datetime, str] | None


def purge_at(trashed_at: datetime, days: int) -> datetime:
    """When ``gc`` purges an image trashed at ``trashed_at`` (its first run after that)."""
    return trashed_at + timedelta(days=days)


def _not_in_trash(image_id: str) -> NotFound:
    return NotFound(f"No image {image_id!r} in the trash.")


def trash_image(session: Session, tenant_id: str, image_id: str) -> None:
    """Move an image of the library to the trash (NotFound when it is not in the library)."""
    moved = session.execute(
        update(Image)
        .where(Image.id == image_id, Image.tenant_id == tenant_id, NOT_TRASHED)
        .values(trashed_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    if not moved:
        raise NotFound(f"No image {image_id!r}.")


def restore(session: Session, image: Image) -> bool:
    """Bring a trashed image back as it was; False when it was no longer in the trash
    (restored or purged meanwhile)."""
    restored = session.execute(
        update(Image)
        .where(Image.id == image.id, TRASHED)
        .values(trashed_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    if restored:
        set_committed_value(image, "trashed_at", None)  # as the row is now, nothing to flush
        # Jobs that found it in the trash left their analyses pending: queue them again.
        analyses.request(session, image, [a.kind for a in image.analyses if a.state == "pending"])
    return bool(restored)


def restore_image(session: Session, tenant_id: str, image_id: str) -> Image:
    image = get_trashed(session, tenant_id, image_id)
    if not restore(session, image):
        raise _not_in_trash(image_id)
    return image


def get_trashed(session: Session, tenant_id: str, image_id: str) -> Image:
    image = session.scalar(
        select(Image).where(Image.id == image_id, Image.tenant_id == tenant_id, TRASHED)
    )
    if image is None:
        raise _not_in_trash(image_id)
    return image


def list_trash(
    session: Session,
    tenant_id: str,
    *,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> TrashPage:
    """The tenant's trash, most recently trashed first."""
    query = select(Image).where(Image.tenant_id == tenant_id, TRASHED)
    if after is not None:
        query = query.where(tuple_(Image.trashed_at, Image.id) < tuple_(*after))
    order = (Image.trashed_at.desc(), Image.id.desc())
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    items = rows[:limit]
    more = len(rows) > limit and items
    return TrashPage(items, (items[-1].trashed_at, items[-1].id) if more else None)


def purge_image(session: Session, tenant_id: str, image_id: str) -> None:
    """Delete a trashed image for good (its bytes go with the next ``gc``)."""
    purged = session.execute(
        delete(Image)
        .where(Image.id == image_id, Image.tenant_id == tenant_id, TRASHED)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    if not purged:
        raise _not_in_trash(image_id)


def empty_trash(session: Session, tenant_id: str) -> int:
    """Purge everything in the tenant's trash; how many images went."""
    purged = session.execute(
        delete(Image)
        .where(Image.tenant_id == tenant_id, TRASHED)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    return purged


def purge_expired(session: Session, *, days: int, now: datetime | None = None) -> int:
    """Purge, across tenants, images trashed ``days`` days ago or earlier; how many went."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    purged = session.execute(
        delete(Image)
        .where(TRASHED, Image.trashed_at <= cutoff)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    return purged


def delete_image(session: Session, tenant_id: str, image_id: str, *, trash_days: int) -> None:
    """What ``DELETE /images/{id}`` does: to the trash, or (trash off) purge at once."""
    if trash_days > 0:
        trash_image(session, tenant_id, image_id)
        return
    purged = session.execute(
        delete(Image)
        .where(Image.id == image_id, Image.tenant_id == tenant_id, NOT_TRASHED)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    if not purged:
        raise NotFound(f"No image {image_id!r}.")
