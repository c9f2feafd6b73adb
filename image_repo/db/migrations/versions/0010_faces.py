"""Faces and people: faces, people, and the tenant's faces switch.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from image_repo.db.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("faces_enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "tenants",
        sa.Column("people_revision", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "people",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(32),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("cover_face_id", sa.String(32), nullable=True),
        sa.Column("descriptor_sum", sa.LargeBinary(), nullable=True),
        sa.Column("descriptor_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_people_tenant_created", "people", ["tenant_id", "created_at", "id"])
    op.create_table(
        "faces",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(32),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "image_id",
            sa.String(32),
            sa.ForeignKey("images.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "person_id",
            sa.String(32),
            sa.ForeignKey("people.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("box_left", sa.Integer(), nullable=False),
        sa.Column("box_top", sa.Integer(), nullable=False),
        sa.Column("box_width", sa.Integer(), nullable=False),
        sa.Column("box_height", sa.Integer(), nullable=False),
        sa.Column("descriptor", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_faces_image", "faces", ["image_id"])
    op.create_index("ix_faces_person", "faces", ["person_id", "id"])
    op.create_index("ix_faces_tenant", "faces", ["tenant_id", "id"])


def downgrade() -> None:
    op.drop_table("faces")
    op.drop_table("people")
    # Plain DROP COLUMN (SQLite 3.35+), not batch mode: see 0006.
    op.drop_column("tenants", "people_revision")
    op.drop_column("tenants", "faces_enabled")
