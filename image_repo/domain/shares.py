"""Share links: a public, expiring link to one image or one collection of a tenant.

The link's token (192 random bits) is shown once, at creation; only its
SHA-256 is stored, so the database cannot give the link back. A share shows
what its tenant has now: an image in the trash is not shown (a restore brings
it back), an image removed from the collection leaves the share with it, and
a share goes with the image or collection it shows. Deleting a share revokes
it at once. Expired, deleted and unknown links all look the same: not found.

An optional password is hashed with Argon2id (argon2-cffi); attempts are
rate-limited by the caller.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from image_repo.db.models import CollectionImage, Image, Share
from image_repo.db.types import utcnow
from image_repo.domain import albums, images
from image_repo.domain.errors import InvalidInput, NotFound
from image_repo.domain.ids import new_id
from image_repo.domain.trash import NOT_TRASHED

TOKEN_BYTES = 24  # 192 bits, 32 URL-safe characters
MAX_PASSWORD_LENGTH = 200
_hasher = PasswordHasher()


@dataclass(frozen=True)
class NewShare:
    """A share just created: the only time its token is known."""

    share: Share
    token: str

    def __getattr__(self, name: str):
        return getattr(self.share, name)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_share(
    session: Session,
    tenant_id: str,
    *,
    image_id: str | None = None,
    collection_id: str | None = None,
    expires_in: int,
    max_expires_in: int,
    allow_original: bool = False,
    password: str | None = None,
    label: str | None = None,
    created_by_key_id: str | None = None,
) -> NewShare:
    if (image_id is None) == (collection_id is None):
        raise InvalidInput(
            "A share shows one image or one collection: give image_id or collection_id."
        )
    if not 0 < expires_in <= max_expires_in:
        raise InvalidInput(f"expires_in must be from 1 to {max_expires_in} seconds.")
    try:  # the tenant's own, and an image not in the trash
        if image_id is not None:
            images.get_image(session, tenant_id, image_id)
        else:
            albums.get_collection(session, tenant_id, collection_id)
    except NotFound as exc:  # a bad value in the body, not a missing resource
        field, value = (
            ("image_id", image_id) if image_id is not None else ("collection_id", collection_id)
        )
        raise InvalidInput(
            f"{field} {value!r} is not one of the tenant's own.", json={field: ["not found"]}
        ) from exc
    now = utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    share = Share(
        id=new_id("shr"),
        tenant_id=tenant_id,
        token_sha256=hash_token(token),
        image_id=image_id,
        collection_id=collection_id,
        label=label.strip() if label and label.strip() else None,
        allow_original=allow_original,
        password_hash=_hasher.hash(password) if password else None,
        created_by_key_id=created_by_key_id,
        created_at=now,
        expires_at=now + timedelta(seconds=expires_in),
        view_count=0,
    )
    session.add(share)
    session.flush()
    return NewShare(share=share, token=token)


def list_shares(
    session: Session,
    tenant_id: str,
    *,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> tuple[list[Share], tuple[datetime, str] | None]:
    """The tenant's shares, oldest first, expired ones included (until deleted)."""
    query = select(Share).where(Share.tenant_id == tenant_id)
    key = tuple_(Share.created_at, Share.id)
    if after is not None:
        query = query.where(key > tuple_(*after))
    rows = list(session.scalars(query.order_by(Share.created_at, Share.id).limit(limit + 1)))
    items = rows[:limit]
    next_after = (items[-1].created_at, items[-1].id) if len(rows) > limit and items else None
    return items, next_after


def get_share(session: Session, tenant_id: str, share_id: str) -> Share:
    share = session.scalar(select(Share).where(Share.id == share_id, Share.tenant_id == tenant_id))
    if share is None:
        raise NotFound(f"No share {share_id!r}.")
    return share


def delete_share(session: Session, tenant_id: str, share_id: str) -> None:
    """Revoke: the link stops working with this transaction."""
    session.delete(get_share(session, tenant_id, share_id))
    session.flush()


# --- the public side ------------------------------------------------------------

GONE = "This link does not exist, has expired or was revoked."


def open_share(session: Session, token: str, now: datetime | None = None) -> Share:
    """The live share for a link's token; NotFound alike for unknown, expired or revoked."""
    share = session.scalar(select(Share).where(Share.token_sha256 == hash_token(token)))
    if share is None or share.expires_at <= (now or utcnow()):
        raise NotFound(GONE)
    if share.image_id is not None and not _image_shown(session, share, share.image_id):
        raise NotFound(GONE)  # its image is in the trash
    return share


def check_password(share: Share, password: str) -> bool:
    if share.password_hash is None:
        return True
    try:
        return _hasher.verify(share.password_hash, password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        return False


def shared_images(session: Session, share: Share) -> list[Image]:
    """What the share shows now, in the tenant's library (trashed images are not)."""
    query = select(Image).where(Image.tenant_id == share.tenant_id, NOT_TRASHED)
    if share.image_id is not None:
        query = query.where(Image.id == share.image_id)
    else:
        query = query.join(CollectionImage, CollectionImage.image_id == Image.id).where(
            CollectionImage.collection_id == share.collection_id
        )
    return list(session.scalars(query.order_by(Image.sort_time.desc(), Image.id)))


def shared_image(session: Session, share: Share, image_id: str) -> Image:
    """One image the share shows; NotFound for anything else."""
    if not _image_shown(session, share, image_id):
        raise NotFound(f"No image {image_id!r} in this share.")
    return session.get(Image, image_id)


def _image_shown(session: Session, share: Share, image_id: str) -> bool:
    query = select(Image.id).where(
        Image.id == image_id, Image.tenant_id == share.tenant_id, NOT_TRASHED
    )
    if share.image_id is not None:
        if image_id != share.image_id:
            return False
    else:
        query = query.join(CollectionImage, CollectionImage.image_id == Image.id).where(
            CollectionImage.collection_id == share.collection_id
        )
    return session.scalar(query) is not None


def record_view(session: Session, share: Share) -> None:
    """Count one view (in the database, so concurrent views all count)."""
    session.execute(
        update(Share)
        .where(Share.id == share.id)
        .values(view_count=Share.view_count + 1, last_viewed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
