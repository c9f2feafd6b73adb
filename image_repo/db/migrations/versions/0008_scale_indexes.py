"""Indexes that keep costs flat as a tenant grows: perceptual-hash bands for similar.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01

Each index is an expression over ``phash`` (a band of 4 hex digits), so
building it is the backfill: no column to fill in batches, nothing to keep
in step afterwards.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

BANDS = 4


def upgrade() -> None:
    for k in range(BANDS):
        op.create_index(
            f"ix_images_phash_band{k}",
            "images",
            ["tenant_id", sa.text(f"substr(phash, {4 * k + 1}, 4)"), "phash", "id", "trashed_at"],
        )


def downgrade() -> None:
    for k in range(BANDS):
        op.drop_index(f"ix_images_phash_band{k}", table_name="images")
