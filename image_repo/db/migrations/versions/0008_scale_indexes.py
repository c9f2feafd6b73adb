"""Costs that stay flat as a tenant grows: phash bands, tag sort keys, day counts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

- ``similar``: one index per 16-bit band of ``phash``, as an expression
  (``substr(phash, 1, 4)`` ...), so building the index is the backfill and
  nothing has to keep a band column in step with the hash.
- Tag filter: ``image_tags`` gets copies of its image's ``uploaded_at`` and
  ``sort_time`` and indexes ``(tenant_id, tag, key, image_id)``, so a page of
  a tag is one index range in list order. Triggers fill them on insert and
  follow ``sort_time`` when an image's capture time changes.
- Timeline: ``image_day_counts`` holds the count of images in the library
  per tenant and UTC day, kept by triggers on ``images`` (insert, delete,
  trash, restore, a new capture time), so the timeline reads days, not
  images.

Triggers rather than code: every writer (upload, PATCH, trash, purge, the
command line, bulk copies between databases) keeps them right.
"""

import sqlalchemy as sa
from alembic import op

from image_repo.db.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BANDS = 4

SQLITE_TRIGGERS = [
    """CREATE TRIGGER image_tags_sort_keys AFTER INSERT ON image_tags BEGIN
        UPDATE image_tags SET
            uploaded_at = (SELECT uploaded_at FROM images WHERE id = NEW.image_id),
            sort_time = (SELECT sort_time FROM images WHERE id = NEW.image_id)
        WHERE image_id = NEW.image_id AND tag = NEW.tag;
    END""",
    """CREATE TRIGGER images_sort_time_to_tags AFTER UPDATE OF sort_time ON images
    WHEN OLD.sort_time IS NOT NEW.sort_time BEGIN
        UPDATE image_tags SET sort_time = NEW.sort_time WHERE image_id = NEW.id;
    END""",
    """CREATE TRIGGER images_day_counts_insert AFTER INSERT ON images
    WHEN NEW.trashed_at IS NULL BEGIN
        INSERT INTO image_day_counts (tenant_id, day, image_count)
        VALUES (NEW.tenant_id, substr(NEW.sort_time, 1, 10), 1)
        ON CONFLICT (tenant_id, day) DO UPDATE SET image_count = image_count + 1;
    END""",
    """CREATE TRIGGER images_day_counts_delete AFTER DELETE ON images
    WHEN OLD.trashed_at IS NULL BEGIN
        UPDATE image_day_counts SET image_count = image_count - 1
        WHERE tenant_id = OLD.tenant_id AND day = substr(OLD.sort_time, 1, 10);
    END""",
    """CREATE TRIGGER images_day_counts_update AFTER UPDATE OF sort_time, trashed_at ON images
    BEGIN
        UPDATE image_day_counts SET image_count = image_count - 1
        WHERE OLD.trashed_at IS NULL
          AND tenant_id = OLD.tenant_id AND day = substr(OLD.sort_time, 1, 10);
        INSERT INTO image_day_counts (tenant_id, day, image_count)
        SELECT NEW.tenant_id, substr(NEW.sort_time, 1, 10), 1 WHERE NEW.trashed_at IS NULL
        ON CONFLICT (tenant_id, day) DO UPDATE SET image_count = image_count + 1;
    END""",
]

PG_DAY = "to_char({row}.sort_time AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

POSTGRESQL_TRIGGERS = [
    """CREATE FUNCTION image_tags_sort_keys() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        SELECT uploaded_at, sort_time INTO NEW.uploaded_at, NEW.sort_time
        FROM images WHERE id = NEW.image_id;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER image_tags_sort_keys BEFORE INSERT ON image_tags
    FOR EACH ROW EXECUTE FUNCTION image_tags_sort_keys()""",
    """CREATE FUNCTION images_sort_time_to_tags() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE image_tags SET sort_time = NEW.sort_time WHERE image_id = NEW.id;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER images_sort_time_to_tags AFTER UPDATE OF sort_time ON images
    FOR EACH ROW WHEN (OLD.sort_time IS DISTINCT FROM NEW.sort_time)
    EXECUTE FUNCTION images_sort_time_to_tags()""",
    """CREATE FUNCTION image_day_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.trashed_at IS NULL THEN
            UPDATE image_day_counts SET image_count = image_count - 1
            WHERE tenant_id = OLD.tenant_id
              AND day = to_char(OLD.sort_time AT TIME ZONE 'UTC', 'YYYY-MM-DD');
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.trashed_at IS NULL THEN
            INSERT INTO image_day_counts (tenant_id, day, image_count)
            VALUES (NEW.tenant_id,
                    to_char(NEW.sort_time AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 1)
            ON CONFLICT (tenant_id, day)
            DO UPDATE SET image_count = image_day_counts.image_count + 1;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER images_day_counts AFTER INSERT OR DELETE ON images
    FOR EACH ROW EXECUTE FUNCTION image_day_counts_track()""",
    """CREATE TRIGGER images_day_counts_update AFTER UPDATE OF sort_time, trashed_at ON images
    FOR EACH ROW WHEN (OLD.sort_time IS DISTINCT FROM NEW.sort_time
                       OR (OLD.trashed_at IS NULL) <> (NEW.trashed_at IS NULL))
    EXECUTE FUNCTION image_day_counts_track()""",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for k in range(BANDS):
        op.create_index(
            f"ix_images_phash_band{k}",
            "images",
            ["tenant_id", sa.text(f"substr(phash, {4 * k + 1}, 4)"), "phash", "id", "trashed_at"],
        )

    op.add_column("image_tags", sa.Column("uploaded_at", UTCDateTime(), nullable=True))
    op.add_column("image_tags", sa.Column("sort_time", UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE image_tags SET"
        " uploaded_at = (SELECT uploaded_at FROM images WHERE images.id = image_tags.image_id),"
        " sort_time = (SELECT sort_time FROM images WHERE images.id = image_tags.image_id)"
    )
    op.drop_index("ix_image_tags_tenant_tag", table_name="image_tags")
    op.create_index(
        "ix_image_tags_tag_uploaded", "image_tags", ["tenant_id", "tag", "uploaded_at", "image_id"]
    )
    op.create_index(
        "ix_image_tags_tag_sort_time", "image_tags", ["tenant_id", "tag", "sort_time", "image_id"]
    )

    op.create_table(
        "image_day_counts",
        sa.Column(
            "tenant_id",
            sa.String(32),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("image_count", sa.Integer(), nullable=False),
    )
    day = "substr(sort_time, 1, 10)" if dialect == "sqlite" else PG_DAY.format(row="images")
    op.execute(
        f"INSERT INTO image_day_counts (tenant_id, day, image_count)"  # noqa: S608 (constants)
        f" SELECT tenant_id, {day}, count(*) FROM images WHERE trashed_at IS NULL"
        f" GROUP BY tenant_id, {day}"
    )
    for statement in SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRESQL_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in (
            "images_day_counts_update",
            "images_day_counts_delete",
            "images_day_counts_insert",
            "images_sort_time_to_tags",
            "image_tags_sort_keys",
        ):
            op.execute(f"DROP TRIGGER {name}")
    else:
        op.execute("DROP TRIGGER images_day_counts_update ON images")
        op.execute("DROP TRIGGER images_day_counts ON images")
        op.execute("DROP TRIGGER images_sort_time_to_tags ON images")
        op.execute("DROP TRIGGER image_tags_sort_keys ON image_tags")
        for name in ("image_day_counts_track", "images_sort_time_to_tags", "image_tags_sort_keys"):
            op.execute(f"DROP FUNCTION {name}()")
    op.drop_table("image_day_counts")
    op.drop_index("ix_image_tags_tag_sort_time", table_name="image_tags")
    op.drop_index("ix_image_tags_tag_uploaded", table_name="image_tags")
    op.create_index("ix_image_tags_tenant_tag", "image_tags", ["tenant_id", "tag", "image_id"])
    # Not batch mode (see 0006); DROP COLUMN needs SQLite 3.35 or newer.
    op.drop_column("image_tags", "sort_time")
    op.drop_column("image_tags", "uploaded_at")
    for k in range(BANDS):
        op.drop_index(f"ix_images_phash_band{k}", table_name="images")
