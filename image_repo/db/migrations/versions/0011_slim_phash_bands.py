"""Slimmer phash band indexes: the library's images only, and no id.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

The band indexes of 0008 held ``(tenant_id, band, phash, id, trashed_at)``
for every image, trashed or not: about 130 MB each for a million images.
A probe of ``similar`` needs only ``(tenant_id, band, phash)`` of images in
the library, so they become partial indexes (``WHERE trashed_at IS NULL``)
of those three, half the size; the few near hashes are then looked up for
their ids (see ``domain/similar.py``). Half the bytes means twice the
images whose bands stay in PostgreSQL's buffers, which is what ``similar``
costs in a large library.

PostgreSQL keeps statistics for the expressions of whole indexes only, and
without them it takes each band value for 0.5% of the table and prefers a
scan; so each band expression gets statistics of its own (PostgreSQL 14's
expression statistics), with a small target: the values are near uniform,
and planning a probe of hundreds of values against a long list costs more
than it tells.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BANDS = 4
STATISTICS_TARGET = 10


def _band(k: int) -> str:
    return f"substr(phash, {4 * k + 1}, 4)"


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for k in range(BANDS):
        op.drop_index(f"ix_images_phash_band{k}", table_name="images")
        op.create_index(
            f"ix_images_phash_band{k}",
            "images",
            ["tenant_id", sa.text(_band(k)), "phash"],
            postgresql_where=sa.text("trashed_at IS NULL"),
            sqlite_where=sa.text("trashed_at IS NULL"),
        )
        if postgresql:
            op.execute(f"CREATE STATISTICS st_images_phash_band{k} ON ({_band(k)}) FROM images")
            op.execute(
                f"ALTER STATISTICS st_images_phash_band{k} SET STATISTICS {STATISTICS_TARGET}"
            )
    if postgresql:
        op.execute("ANALYZE images")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for k in range(BANDS):
        if postgresql:
            op.execute(f"DROP STATISTICS IF EXISTS st_images_phash_band{k}")
        op.drop_index(f"ix_images_phash_band{k}", table_name="images")
        op.create_index(
            f"ix_images_phash_band{k}",
            "images",
            ["tenant_id", sa.text(_band(k)), "phash", "id", "trashed_at"],
        )
