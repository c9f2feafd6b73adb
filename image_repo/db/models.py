"""SQLAlchemy table models (the database's view; domain logic lives elsewhere)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from image_repo.db.types import UTCDateTime, utcnow


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Quotas: None means unlimited.
    max_images: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    # Faces and people (see domain.faces): the tenant's own switch, off by
    # default, and a counter bumped by every change to its people, which
    # tells each process whether its cached nearest-person index is current.
    faces_enabled: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    people_revision: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))

    keys: Mapped[list[ApiKey]] = relationship(back_populates="tenant")


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    group: Mapped[str] = mapped_column(String(32))
    # SHA-256 of the whole key: the secret itself is never stored.
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    tenant: Mapped[Tenant] = relationship(back_populates="keys")

    __table_args__ = (Index("ix_api_keys_tenant_id", "tenant_id"),)


class Image(Base):
    """One image of one tenant. The bytes live in the blob store under ``sha256``."""

    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    filename: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    description: Mapped[str | None] = mapped_column(String(5000), nullable=True)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Minutes east of UTC when the camera recorded its offset; None when unknown.
    taken_at_offset: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # taken_at, or uploaded_at when the picture has no capture time: the sort
    # and timeline key, kept in a column so that keyset paging can use an index.
    sort_time: Mapped[datetime] = mapped_column(UTCDateTime())

    format: Mapped[str] = mapped_column(String(16))
    mime_type: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    stored_width: Mapped[int] = mapped_column(Integer)
    stored_height: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    animated: Mapped[bool]
    color_mode: Mapped[str] = mapped_column(String(16))
    has_alpha: Mapped[bool]
    has_icc: Mapped[bool]
    orientation: Mapped[int] = mapped_column(Integer)
    camera_make: Mapped[str | None] = mapped_column(String(100), nullable=True)
    camera_model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lens: Mapped[str | None] = mapped_column(String(100), nullable=True)
    exposure_time: Mapped[float | None] = mapped_column(nullable=True)
    f_number: Mapped[float | None] = mapped_column(nullable=True)
    iso: Mapped[int | None] = mapped_column(Integer, nullable=True)
    focal_length: Mapped[float | None] = mapped_column(nullable=True)
    # The file carries GPS tags (even ones too broken to give a position).
    has_gps: Mapped[bool]
    gps_latitude: Mapped[float | None] = mapped_column(nullable=True)
    gps_longitude: Mapped[float | None] = mapped_column(nullable=True)
    gps_altitude: Mapped[float | None] = mapped_column(nullable=True)
    blurhash: Mapped[str | None] = mapped_column(String(100), nullable=True)
    phash: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # When the image went to the trash; None while it is in the library. A
    # trashed image keeps its row, tags, collection memberships and bytes
    # until it is purged, and is hidden from everything but the trash.
    trashed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    tags: Mapped[list[ImageTag]] = relationship(
        cascade="all, delete-orphan", order_by="ImageTag.tag", lazy="selectin"
    )
    # Background analyses (preview, faces, ...): one row per kind, see domain.analyses.
    analyses: Mapped[list[ImageAnalysis]] = relationship(
        cascade="all, delete-orphan",
        order_by="ImageAnalysis.kind",
        lazy="selectin",
        passive_deletes=True,
    )

    __table_args__ = (
        # One image per content per tenant: concurrent uploads of the same
        # bytes race on this constraint, not on a check-then-insert.
        UniqueConstraint("tenant_id", "sha256", name="uq_images_tenant_sha256"),
        Index("ix_images_tenant_uploaded", "tenant_id", "uploaded_at", "id"),
        Index("ix_images_tenant_sort_time", "tenant_id", "sort_time", "id"),
        Index("ix_images_sha256", "sha256"),
        # The trash is small next to the library: partial indexes hold only
        # trashed rows, for a tenant's trash listing and for gc's retention.
        Index(
            "ix_images_trash",
            "tenant_id",
            "trashed_at",
            "id",
            postgresql_where=text("trashed_at IS NOT NULL"),
            sqlite_where=text("trashed_at IS NOT NULL"),
        ),
        Index(
            "ix_images_trashed_at",
            "trashed_at",
            postgresql_where=text("trashed_at IS NOT NULL"),
            sqlite_where=text("trashed_at IS NOT NULL"),
        ),
    )


class ImageTag(Base):
    __tablename__ = "image_tags"

    image_id: Mapped[str] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(32))
    # Copies of the image's sort keys, kept by the database itself (triggers
    # of migration 0008, whoever writes the rows), so that a tag's images
    # come in list order from one index range instead of a walk over the
    # library. Never set them from code.
    uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sort_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_image_tags_tag_uploaded", "tenant_id", "tag", "uploaded_at", "image_id"),
        Index("ix_image_tags_tag_sort_time", "tenant_id", "tag", "sort_time", "image_id"),
    )


class Collection(Base):
    __tablename__ = "collections"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(5000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_collections_tenant_name"),
        Index("ix_collections_tenant_created", "tenant_id", "created_at", "id"),
    )


class CollectionImage(Base):
    __tablename__ = "collection_images"

    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    image_id: Mapped[str] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_collection_images_image", "image_id"),)


class ImageAnalysis(Base):
    """The state of one background analysis of one image (domain.analyses).

    The row, not the queue, is the truth: a job whose message was lost (a
    worker killed mid-job) is found again by its expired lease and queued anew.
    """

    __tablename__ = "image_analyses"

    image_id: Mapped[str] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending, done, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set while a worker runs the job; a pending row whose lease has run out
    # lost its worker (or its message) and is queued again.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_image_analyses_state", "state", "kind", "updated_at"),
        Index("ix_image_analyses_tenant", "tenant_id", "kind", "state"),
    )


# --- Similar images: multi-index hashing over the perceptual hash ----------
# One index per 16-bit band of ``phash`` (see domain/similar.py), of the
# images in the library only, holding phash so that a probe reads no table
# row. Expressions, not columns: nothing has to keep them in step with phash.
# On PostgreSQL each band expression also has statistics of its own
# (migration 0011): partial indexes keep none for their expressions.
PHASH_BAND_INDEXES = tuple(
    Index(
        f"ix_images_phash_band{k}",
        Image.tenant_id,
        text(f"substr(phash, {4 * k + 1}, 4)"),
        Image.phash,
        postgresql_where=text("trashed_at IS NULL"),
        sqlite_where=text("trashed_at IS NULL"),
    )
    for k in range(4)
)


# --- Timeline: image counts per tenant and UTC day of sort_time ------------
class ImageDayCount(Base):
    """How many images in the library (not in the trash) a tenant has per day.

    Kept by triggers on ``images`` (migration 0008), so the timeline reads a
    few thousand rows whatever the size of the library, and no code path can
    forget it. Rows may reach 0; readers skip them.
    """

    __tablename__ = "image_day_counts"
    __table_args__ = {"info": {"kept_by_triggers": True}}

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    image_count: Mapped[int] = mapped_column(Integer)


# --- signed URLs and share links ----------------------------------------------


class UrlSigningKey(Base):
    """The server secret that signs image URLs (one row; rotating replaces it).

    Kept in the database so every instance signs and checks with the same
    secret, and a rotation stops every URL signed before it at once.
    """

    __tablename__ = "url_signing_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Share(Base):
    """A public link to one image or one collection of a tenant.

    Only the SHA-256 of the link's token is stored. ``image_id`` or
    ``collection_id`` is set, never both; the share goes with what it shows.
    """

    __tablename__ = "shares"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    image_id: Mapped[str | None] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), nullable=True
    )
    collection_id: Mapped[str | None] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), nullable=True
    )
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    allow_original: Mapped[bool] = mapped_column(default=False)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_by_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    view_count: Mapped[int] = mapped_column(Integer, default=0)
    last_viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_shares_tenant_created", "tenant_id", "created_at", "id"),)


# --- faces and people (domain.faces, domain.people) ---------------------------


class Person(Base):
    """A group of one tenant's faces taken to be one person."""

    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    hidden: Mapped[bool] = mapped_column(default=False)
    # The face shown for the person; another of its faces when that one is gone.
    cover_face_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Sum (float64) and number of the descriptors assigned to the person: their
    # mean is what a new face is compared with.
    descriptor_sum: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    descriptor_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_people_tenant_created", "tenant_id", "created_at", "id"),)


class Face(Base):
    """A face found in an image: its box in the displayed image, its descriptor, its person."""

    __tablename__ = "faces"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    person_id: Mapped[str | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), nullable=True
    )
    box_left: Mapped[int] = mapped_column(Integer)
    box_top: Mapped[int] = mapped_column(Integer)
    box_width: Mapped[int] = mapped_column(Integer)
    box_height: Mapped[int] = mapped_column(Integer)
    # 128 little-endian float32 (imaging.faces.descriptor_bytes).
    descriptor: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_faces_image", "image_id"),
        Index("ix_faces_person", "person_id", "id"),
        Index("ix_faces_tenant", "tenant_id", "id"),
    )
