"""The trash: images.trashed_at, and partial indexes over trashed rows.

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from image_repo.db.types import UTCDateTime

revision = "0006"
down_revision = "0002"
branch_labels = None
depends_on = None

TRASHED = sa.text("trashed_at IS NOT NULL")


def upgrade() -> None:
    op.add_column("images", sa.Column("trashed_at", UTCDateTime(), nullable=True))
    op.create_index(
        "ix_images_trash",
        "images",
        ["tenant_id", "trashed_at", "id"],
        postgresql_where=TRASHED,
        sqlite_where=TRASHED,
    )
    op.create_index(
        "ix_images_trashed_at",
        "images",
        ["trashed_at"],
        postgresql_where=TRASHED,
        sqlite_where=TRASHED,
    )


def downgrade() -> None:
    # Trashed images were deleted by their owners: going back purges them.
    op.execute("DELETE FROM images WHERE trashed_at IS NOT NULL")
    op.drop_index("ix_images_trashed_at", table_name="images")
    op.drop_index("ix_images_trash", table_name="images")
    # Not batch mode: on SQLite that copies the table and drops the old one,
    # and with foreign keys on the drop cascades to tags and memberships.
    # ALTER TABLE ... DROP COLUMN needs SQLite 3.35 or newer.
    op.drop_column("images", "trashed_at")
