"""Fill a database with N images' metadata for one tenant, fast (no bytes are written).

    python -m tests.benchmarks.seed --database-url URL --tenant NAME --count 1000000

The database is migrated first and the tenant created when it does not
exist (an admin key is printed then); the images are added to what it has.
Each image gets a random 64-bit perceptual hash, a capture time spread over
2010-2025 (one in seven has none, so its upload time sorts it), and tags:
every other image one of 20 tags (``tag-0`` .. ``tag-19``, 2.5% of the
images each), every fifth also ``every-5``. Rows come from
``image_fixtures.image_rows`` (the maker ``fill_images`` uses).

On PostgreSQL rows go in with COPY, in one transaction, with the
bookkeeping triggers of ``images`` and ``image_tags`` switched off inside
it (their work is done in bulk afterwards: tag sort keys are written with
the tags, day counts added by one GROUP BY); other sessions wait on the
table meanwhile, so run it on an idle database. A million images take about
two minutes on two cores. Elsewhere (SQLite) it uses ``fill_images``'
batched executemany.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from tests.benchmarks.image_fixtures import image_rows

CAPTURE_START = datetime(2010, 1, 1, tzinfo=UTC)
CAPTURE_SPAN = timedelta(days=16 * 365)
TAG_KINDS = 20


def tags_of(n: int) -> list[str]:
    tags = [f"tag-{(n // 2) % TAG_KINDS}"] if n % 2 == 0 else []
    if n % 5 == 0:
        tags.append("every-5")
    return tags


def _row_makers(seed: int):
    rng = random.Random(seed)
    span = int(CAPTURE_SPAN.total_seconds())

    def phash_of(_n: int) -> str:
        return f"{rng.getrandbits(64):016x}"

    def taken_of(n: int) -> datetime | None:
        if n % 7 == 3:
            return None
        return CAPTURE_START + timedelta(seconds=rng.randrange(span))

    return phash_of, taken_of


def ensure_tenant(engine, name: str) -> tuple[str, str | None]:
    """(tenant id, admin key when it was created now)."""
    from sqlalchemy.orm import Session

    from image_repo.domain import tenancy
    from image_repo.domain.errors import NotFound

    with Session(engine) as session, session.begin():
        try:
            return tenancy.get_tenant(session, name=name).id, None
        except NotFound:
            made = tenancy.create_tenant_with_admin_key(session, name, groups={"admin"})
            return made.tenant.id, made.admin_key.api_key


def _existing(engine, tenant_id: str) -> int:
    from sqlalchemy import func, select

    from image_repo.db.models import Image

    with engine.connect() as connection:
        return connection.scalar(select(func.count()).where(Image.tenant_id == tenant_id))


def _day(row: dict) -> str:
    return row["sort_time"].astimezone(UTC).strftime("%Y-%m-%d")


def _copy_postgresql(engine, tenant_id: str, start: int, count: int, seed: int) -> None:
    from image_repo.domain.ids import new_id

    phash_of, taken_of = _row_makers(seed)
    stop = start + count
    ids = [""] * start + [new_id("img") for _ in range(count)]
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.execute("ALTER TABLE images DISABLE TRIGGER USER")
            cursor.execute("ALTER TABLE image_tags DISABLE TRIGGER USER")
            rows = image_rows(tenant_id, start, stop, ids=ids, phash_of=phash_of, taken_of=taken_of)
            first = next(rows)
            columns = list(first)
            with cursor.copy(f"COPY images ({', '.join(columns)}) FROM STDIN") as copy:
                copy.write_row(tuple(first.values()))
                days = Counter([_day(first)])
                keys = {first["id"]: (first["uploaded_at"], first["sort_time"])}
                tag_rows = [(first["id"], tag, tenant_id) for tag in tags_of(start)]
                for n, row in enumerate(rows, start + 1):
                    copy.write_row(tuple(row.values()))
                    days[_day(row)] += 1
                    for tag in tags_of(n):
                        tag_rows.append((row["id"], tag, tenant_id))
                        keys[row["id"]] = (row["uploaded_at"], row["sort_time"])
            with cursor.copy(
                "COPY image_tags (image_id, tag, tenant_id, uploaded_at, sort_time) FROM STDIN"
            ) as copy:
                for image_id, tag, tenant in tag_rows:
                    copy.write_row((image_id, tag, tenant, *keys[image_id]))
            # What the disabled triggers would have counted, added in one go.
            cursor.executemany(
                "INSERT INTO image_day_counts (tenant_id, day, image_count) VALUES (%s, %s, %s)"
                " ON CONFLICT (tenant_id, day)"
                " DO UPDATE SET image_count = image_day_counts.image_count + excluded.image_count",
                [(tenant_id, day, n) for day, n in days.items()],
            )
            cursor.execute("ALTER TABLE image_tags ENABLE TRIGGER USER")
            cursor.execute("ALTER TABLE images ENABLE TRIGGER USER")
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # Fresh statistics, and a visibility map for index-only scans.
        connection.exec_driver_sql("VACUUM ANALYZE images")
        connection.exec_driver_sql("VACUUM ANALYZE image_tags")
        connection.exec_driver_sql("VACUUM ANALYZE image_day_counts")


def _executemany(engine, tenant_id: str, start: int, count: int, seed: int) -> None:
    from sqlalchemy import insert

    from image_repo.db.models import Image, ImageTag
    from image_repo.domain.ids import new_id

    phash_of, taken_of = _row_makers(seed)
    ids = [""] * start + [new_id("img") for _ in range(count)]
    with engine.begin() as connection:
        for low in range(start, start + count, 50_000):
            high = min(start + count, low + 50_000)
            rows = list(
                image_rows(tenant_id, low, high, ids=ids, phash_of=phash_of, taken_of=taken_of)
            )
            connection.execute(insert(Image.__table__), rows)
            tags = [
                {"image_id": ids[n], "tag": tag, "tenant_id": tenant_id}
                for n in range(low, high)
                for tag in tags_of(n)
            ]
            if tags:
                connection.execute(insert(ImageTag.__table__), tags)


def seed(database_url: str, tenant: str, count: int, *, seed: int = 1) -> dict:
    """Add ``count`` images to ``tenant`` (created if missing); return what was done."""
    from sqlalchemy import create_engine

    from image_repo.db import migrate

    engine = create_engine(database_url)
    try:
        migrate.upgrade(engine)
        tenant_id, admin_key = ensure_tenant(engine, tenant)
        start = _existing(engine, tenant_id)
        began = time.perf_counter()
        if count:
            fill = _copy_postgresql if engine.dialect.name == "postgresql" else _executemany
            # Row numbers go on from what the tenant has: upload times and
            # content hashes stay distinct.
            fill(engine, tenant_id, start, count, seed + start)
        return {
            "tenant": tenant,
            "tenant_id": tenant_id,
            "admin_key": admin_key,
            "added": count,
            "images": start + count,
            "seconds": round(time.perf_counter() - began, 1),
        }
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.seed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--database-url", required=True, help="SQLAlchemy URL of the database")
    parser.add_argument("--tenant", required=True, help="tenant name (created when missing)")
    parser.add_argument("--count", type=int, required=True, help="images to add")
    parser.add_argument("--seed", type=int, default=1, help="random seed (hashes, times)")
    args = parser.parse_args(argv)
    result = seed(args.database_url, args.tenant, args.count, seed=args.seed)
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
