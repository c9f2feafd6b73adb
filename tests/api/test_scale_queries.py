"""The tag filter and the timeline read indexes, and answer as the plain queries did.

Tag pages are driven by ``image_tags``' copies of the sort keys and the
timeline by ``image_day_counts``, both kept by database triggers. These
tests change images every way the service does (capture time, trash,
restore, purge, new tags) and compare the answers with ones computed from
``images`` itself; then they check the plans, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, event, insert, select, text

from image_repo.db.models import Image, ImageTag
from image_repo.domain import images as domain
from image_repo.domain import trash
from image_repo.domain.ids import new_id
from image_repo.http.context import services_of
from tests.benchmarks.image_fixtures import image_rows
from tests.conftest import create_tenant

TAGS = ["sea", "city", "rare"]


def _insert(engine, tenant_id: str, count: int, rng: random.Random) -> list[str]:
    ids = [new_id("img") for _ in range(count)]
    start = datetime(2019, 1, 1, tzinfo=UTC)

    def taken(n: int) -> datetime | None:
        if n % 5 == 0:
            return None  # the upload time sorts it
        return start + timedelta(seconds=rng.randrange(6 * 365 * 86400))

    rows = list(image_rows(tenant_id, 0, count, ids=ids, taken_of=taken))
    for row in rows:
        row["sha256"] = f"{row['id']:0>64}"[-64:]
    tags = [
        {"image_id": image_id, "tag": tag, "tenant_id": tenant_id}
        for n, image_id in enumerate(ids)
        for tag in TAGS
        if (tag == "sea" and n % 3 == 0)
        or (tag == "city" and n % 4 == 1)
        or (tag == "rare" and n % 97 == 5)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Image.__table__), rows)
        connection.execute(insert(ImageTag.__table__), tags)
    return ids


def _shuffle_library(app, tenant_id: str, ids: list[str], rng: random.Random) -> None:
    """Every change the service makes, through the domain functions it uses."""
    with services_of(app).sessions.begin() as session:
        for image_id in rng.sample(ids, 30):
            image = domain.get_image(session, tenant_id, image_id)
            when = datetime(2015, 6, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(90_000))
            domain.update_image(session, image, {"taken_at": when})
        for image_id in rng.sample(ids[:100], 5):  # a capture time removed
            domain.update_image(
                session, domain.get_image(session, tenant_id, image_id), {"taken_at": None}
            )
        for image_id in rng.sample(ids, 15):  # new tags, some of them new to the image
            image = domain.get_image(session, tenant_id, image_id)
            domain.update_image(session, image, {"tags": ["rare", "city"]})
    trashed = rng.sample(ids, 40)
    with services_of(app).sessions.begin() as session:
        for image_id in trashed:
            trash.trash_image(session, tenant_id, image_id)
    with services_of(app).sessions.begin() as session:
        for image_id in trashed[:10]:
            trash.restore_image(session, tenant_id, image_id)
        for image_id in trashed[10:20]:
            trash.purge_image(session, tenant_id, image_id)
    with services_of(app).sessions.begin() as session:  # a plain delete of a library image
        session.execute(delete(Image).where(Image.id == ids[-1]))


@pytest.fixture
def library(app):
    rng = random.Random(15)
    mine = create_tenant(app, "mine")
    theirs = create_tenant(app, "theirs")
    engine = services_of(app).engine
    ids = _insert(engine, mine.tenant_id, 600, rng)
    _insert(engine, theirs.tenant_id, 200, rng)
    _shuffle_library(app, mine.tenant_id, ids, rng)
    return app, mine, theirs


def _all_pages(session, tenant_id, tag, sort, descending, limit):
    ids, after = [], None
    while True:
        page = domain.list_images(
            session,
            tenant_id,
            filters=domain.ImageFilter(tag=tag),
            sort=sort,
            descending=descending,
            after=after,
            limit=limit,
        )
        ids += [image.id for image in page.items]
        if page.next_after is None:
            return ids
        after = page.next_after


def test_tag_pages_and_timeline_match_the_images_table(library):
    app, mine, theirs = library
    with services_of(app).sessions() as session:
        images = session.scalars(
            select(Image).where(Image.tenant_id == mine.tenant_id, Image.trashed_at.is_(None))
        ).all()
        for tag in TAGS:
            tagged = [i for i in images if tag in {t.tag for t in i.tags}]
            assert tagged
            for sort in ("uploaded_at", "taken_at"):
                for descending in (True, False):
                    expected = [
                        i.id
                        for i in sorted(
                            tagged,
                            key=lambda i, s=sort: (
                                i.uploaded_at if s == "uploaded_at" else i.sort_time,
                                i.id,
                            ),
                            reverse=descending,
                        )
                    ]
                    got = _all_pages(session, mine.tenant_id, tag, sort, descending, 7)
                    assert got == expected, (tag, sort, descending)

        for granularity, length in domain.PERIOD_LENGTH.items():
            counts = Counter(i.sort_time.strftime("%Y-%m-%d")[:length] for i in images)
            expected = sorted(counts.items(), reverse=True)
            assert domain.timeline(session, mine.tenant_id, granularity) == expected
        assert sum(c for _, c in domain.timeline(session, theirs.tenant_id, "year")) == 200


def test_a_deleted_tenant_leaves_no_counts(library):
    app, mine, _ = library
    engine = services_of(app).engine
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys = ON")
        connection.execute(text("DELETE FROM tenants WHERE id = :id"), {"id": mine.tenant_id})
        left = connection.execute(
            text("SELECT count(*) FROM image_day_counts WHERE tenant_id = :id"),
            {"id": mine.tenant_id},
        ).scalar()
    assert left == 0


def _statements(engine, run) -> list[tuple[str, object]]:
    seen = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return seen


def _plan(connection, statement, parameters) -> str:
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return "\n".join(row[-1] for row in rows)
    rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters)
    return "\n".join(row[0] for row in rows)


def test_plans_are_index_ranges(app):
    """A tag page and the timeline read index ranges, never the tenant's images."""
    tenant = create_tenant(app, "big")
    engine = services_of(app).engine
    # Enough rows that reading a range beats a scan, as in a real library.
    ids = _insert(engine, tenant.tenant_id, 20_000, random.Random(1))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("ANALYZE"))
    sessions = services_of(app).sessions
    plans = {}
    with sessions() as session:
        page = domain.list_images(
            session, tenant.tenant_id, filters=domain.ImageFilter(tag="rare"), limit=50
        )
        runs = {
            "tag first page": lambda: domain.list_images(
                session, tenant.tenant_id, filters=domain.ImageFilter(tag="rare"), limit=50
            ),
            "tag next page": lambda: domain.list_images(
                session,
                tenant.tenant_id,
                filters=domain.ImageFilter(tag="sea"),
                sort="taken_at",
                after=(page.items[-1].sort_time, page.items[-1].id),
                limit=50,
            ),
            "timeline": lambda: domain.timeline(session, tenant.tenant_id, "month"),
        }
        for name, run in runs.items():
            statements = _statements(engine, run)
            with engine.connect() as connection:
                # The first statement is the one that picks the rows (then tags load).
                plans[name] = _plan(connection, *statements[0])
    assert len(ids) == 20_000
    tag_index = {
        "tag first page": "ix_image_tags_tag_uploaded",
        "tag next page": "ix_image_tags_tag_sort_time",
    }
    for name, index in tag_index.items():
        plan = plans[name]
        assert index in plan, plan
        assert "SCAN images" not in plan and "Seq Scan" not in plan, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan  # read in order
    timeline = plans["timeline"]
    assert "image_day_counts" in timeline, timeline
    assert "images " not in timeline.replace("image_day_counts", ""), timeline
    # Its cost follows the tenant's days: a range of the primary key, or on a
    # table this small PostgreSQL's choice to read it whole.
    assert "SCAN image_day_counts" not in timeline, timeline


def test_migration_fills_what_the_triggers_keep(app):
    """Rows written before revision 0008 get their tag sort keys and day counts."""
    from alembic import command

    from image_repo.db import migrate

    tenant = create_tenant(app, "old")
    engine = services_of(app).engine
    command.downgrade(migrate.alembic_config(engine), "0006")
    _insert(engine, tenant.tenant_id, 300, random.Random(8))
    migrate.upgrade(engine)
    with services_of(app).sessions() as session:
        images = session.scalars(select(Image).where(Image.tenant_id == tenant.tenant_id)).all()
        counts = Counter(i.sort_time.strftime("%Y-%m") for i in images)
        assert domain.timeline(session, tenant.tenant_id, "month") == sorted(
            counts.items(), reverse=True
        )
        tags = session.scalars(select(ImageTag).where(ImageTag.tenant_id == tenant.tenant_id))
        by_id = {i.id: i for i in images}
        checked = 0
        for tag in tags:
            image = by_id[tag.image_id]
            assert (tag.uploaded_at, tag.sort_time) == (image.uploaded_at, image.sort_time)
            checked += 1
        assert checked > 100
