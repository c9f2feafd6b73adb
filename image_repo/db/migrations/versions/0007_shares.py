"""Signed image URLs and share links: url_signing_keys (with a first secret) and shares.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import secrets

import sqlalchemy as sa
from alembic import op

from image_repo.db.types import UTCDateTime, utcnow

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    keys = op.create_table(
        "url_signing_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    # A secret from the start: URLs can be signed before any operator step.
    op.bulk_insert(
        keys, [{"id": "usk_initial", "secret": secrets.token_hex(32), "created_at": utcnow()}]
    )
    op.create_table(
        "shares",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(32),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "image_id", sa.String(32), sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=True
        ),
        sa.Column(
            "collection_id",
            sa.String(32),
            sa.ForeignKey("collections.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("allow_original", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("created_by_key_id", sa.String(32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("view_count", sa.Integer(), nullable=False),
        sa.Column("last_viewed_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_shares_tenant_created", "shares", ["tenant_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_shares_tenant_created", table_name="shares")
    op.drop_table("shares")
    op.drop_table("url_signing_keys")
