"""Background analyses of images: image_analyses, one row per image and kind.

Revision ID: 0009
Revises: 0008 (chained after main's 0008 at the merge)
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from image_repo.db.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_analyses",
        sa.Column(
            "image_id",
            sa.String(32),
            sa.ForeignKey("images.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_image_analyses_state", "image_analyses", ["state", "kind", "updated_at"])
    op.create_index("ix_image_analyses_tenant", "image_analyses", ["tenant_id", "kind", "state"])


def downgrade() -> None:
    op.drop_index("ix_image_analyses_tenant", table_name="image_analyses")
    op.drop_index("ix_image_analyses_state", table_name="image_analyses")
    op.drop_table("image_analyses")
