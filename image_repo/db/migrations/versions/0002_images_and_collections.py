"""Images, their tags, collections.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from image_repo.db.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(32),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("title", sa.String(200)),
        sa.Column("description", sa.String(5000)),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("taken_at", UTCDateTime()),
        sa.Column("taken_at_offset", sa.Integer),
        sa.Column("sort_time", UTCDateTime(), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("mime_type", sa.String(32), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("stored_width", sa.Integer, nullable=False),
        sa.Column("stored_height", sa.Integer, nullable=False),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("animated", sa.Boolean, nullable=False),
        sa.Column("color_mode", sa.String(16), nullable=False),
        sa.Column("has_alpha", sa.Boolean, nullable=False),
        sa.Column("has_icc", sa.Boolean, nullable=False),
        sa.Column("orientation", sa.Integer, nullable=False),
        sa.Column("camera_make", sa.String(100)),
        sa.Column("camera_model", sa.String(100)),
        sa.Column("lens", sa.String(100)),
        sa.Column("exposure_time", sa.Float),
        sa.Column("f_number", sa.Float),
        sa.Column("iso", sa.Integer),
        sa.Column("focal_length", sa.Float),
        sa.Column("has_gps", sa.Boolean, nullable=False),
        sa.Column("gps_latitude", sa.Float),
        sa.Column("gps_longitude", sa.Float),
        sa.Column("gps_altitude", sa.Float),
        sa.Column("blurhash", sa.String(100)),
        sa.Column("phash", sa.String(16)),
        sa.UniqueConstraint("tenant_id", "sha256", name="uq_images_tenant_sha256"),
    )
    op.create_index("ix_images_tenant_uploaded", "images", ["tenant_id", "uploaded_at", "id"])
    op.create_index("ix_images_tenant_sort_time", "images", ["tenant_id", "sort_time", "id"])
    op.create_index("ix_images_sha256", "images", ["sha256"])
    op.create_table(
        "image_tags",
        sa.Column(
            "image_id",
            sa.String(32),
            sa.ForeignKey("images.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("tag", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(32), nullable=False),
    )
    op.create_index("ix_image_tags_tenant_tag", "image_tags", ["tenant_id", "tag", "image_id"])
    op.create_table(
        "collections",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(32),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.String(5000)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_collections_tenant_name"),
    )
    op.create_index(
        "ix_collections_tenant_created", "collections", ["tenant_id", "created_at", "id"]
    )
    op.create_table(
        "collection_images",
        sa.Column(
            "collection_id",
            sa.String(32),
            sa.ForeignKey("collections.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "image_id",
            sa.String(32),
            sa.ForeignKey("images.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("added_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_collection_images_image", "collection_images", ["image_id"])


def downgrade() -> None:
    op.drop_table("collection_images")
    op.drop_table("collections")
    op.drop_table("image_tags")
    op.drop_table("images")
