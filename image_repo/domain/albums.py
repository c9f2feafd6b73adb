"""Collections (albums): named sets of a tenant's images.

A trashed image keeps its memberships (a restore brings it back into its
albums) but is hidden from them: not listed, not counted, not removable.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from image_repo.db.models import Collection, CollectionImage, Image
from image_repo.db.types import utcnow
from image_repo.domain.errors import Conflict, NotFound
from image_repo.domain.ids import new_id
from image_repo.domain.trash import NOT_TRASHED


def get_collection(session: Session, tenant_id: str, collection_id: str) -> Collection:
    collection = session.scalar(
        select(Collection).where(Collection.id == collection_id, Collection.tenant_id == tenant_id)
    )
    if collection is None:
        raise NotFound(f"No collection {collection_id!r}.")
    return collection


@contextmanager
def _unique_name(session: Session, name: str) -> Iterator[None]:
    """Writes that may take a name another collection has: refused alone, as a Conflict."""
    try:
        with session.begin_nested():
            yield
    except IntegrityError as exc:
        raise Conflict(f"A collection named {name!r} exists already.") from exc


def create_collection(
    session: Session, tenant_id: str, name: str, description: str | None = None
) -> Collection:
    now = utcnow()
    collection = Collection(
        id=new_id("col"),
        tenant_id=tenant_id,
        name=name.strip(),
        description=description,
        created_at=now,
        updated_at=now,
    )
    with _unique_name(session, collection.name):
        session.add(collection)
    return collection


def list_collections(
    session: Session,
    tenant_id: str,
    *,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> tuple[list[Collection], tuple[datetime, str] | None]:
    query = select(Collection).where(Collection.tenant_id == tenant_id)
    key = tuple_(Collection.created_at, Collection.id)
    if after is not None:
        query = query.where(key > tuple_(*after))
    rows = list(
        session.scalars(query.order_by(Collection.created_at, Collection.id).limit(limit + 1))
    )
    items = rows[:limit]
    next_after = (items[-1].created_at, items[-1].id) if len(rows) > limit and items else None
    return items, next_after


def update_collection(session: Session, collection: Collection, changes: dict) -> Collection:
    name = changes["name"].strip() if "name" in changes else collection.name
    with _unique_name(session, name):
        collection.name = name
        if "description" in changes:
            collection.description = changes["description"]
        collection.updated_at = utcnow()
    return collection


def delete_collection(session: Session, collection: Collection) -> None:
    """The collection goes; its images stay."""
    session.delete(collection)
    session.flush()


def add_image(session: Session, collection: Collection, image: Image) -> bool:
    """Add ``image``; False when it was there already."""
    link = session.get(CollectionImage, (collection.id, image.id))
    if link is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                CollectionImage(collection_id=collection.id, image_id=image.id, added_at=utcnow())
            )
    except IntegrityError:
        return False  # added concurrently: same outcome
    return True


def remove_image(session: Session, collection: Collection, image_id: str) -> None:
    link = session.get(CollectionImage, (collection.id, image_id))
    if link is None or _trashed(session, image_id):
        raise NotFound(f"Image {image_id!r} is not in this collection.")
    session.delete(link)
    session.flush()


def _trashed(session: Session, image_id: str) -> bool:
    return session.scalar(select(Image.trashed_at).where(Image.id == image_id)) is not None


def image_count(session: Session, collection: Collection) -> int:
    """The collection's images in the library (members in the trash are not counted)."""
    query = (
        select(func.count())
        .select_from(CollectionImage)
        .join(Image, Image.id == CollectionImage.image_id)
        .where(CollectionImage.collection_id == collection.id, NOT_TRASHED)
    )
    return session.scalar(query) or 0
