"""Costs that stay flat as a library grows: a tenant of 1,000,000 images against one of 10,000.

Over HTTP (Flask's test client, the app on PostgreSQL), the same requests
for both tenants, alternated, medians kept; the ratio big / small is the
figure. Target: each at most 1.5x.

- first list page (``GET /images?limit=50``),
- a deep page: keyset cursor at half the tenant's depth,
- tag filter (``tag=tag-7``: 2.5% of the images),
- timeline by month,
- ``similar`` (default ``max_distance`` 10) of random images,
- an upload's database time: the time of its SQL statements (the upload of
  a small PNG as a whole is shown too).

The tenants are seeded with ``tests/benchmarks/seed.py`` into a schema of
their own that is kept between runs (seeding a million takes minutes): a
tenant named ``n<count>`` is topped up to its count. It also reports the
database's bytes per image (``pg_total_relation_size``). Before timing, the
tables and indexes are read into the operating system's cache
(``pg_prewarm``), as a running server's are; PostgreSQL's own buffers keep
their configured size.

=============================  ===================  ================================
variable                       default              meaning
=============================  ===================  ================================
``BENCH_SCALE_DATABASE_URL``   the test database    PostgreSQL database to use
``BENCH_SCALE_SCHEMA``         ``bench_scale``      schema holding the seeded data
``BENCH_SCALE_IMAGES``         1000000              images of the big tenant
``BENCH_SCALE_SMALL``          10000                images of the small tenant
``BENCH_SCALE_REPS``           60                   timed requests per kind and side
``BENCH_SCALE_WARM``           1                    0: skip reading the database files
                                                    into the OS cache first
=============================  ===================  ================================

Run: ``.venv/bin/python -m pytest tests/benchmarks/bench_scale.py -o python_files='bench_*.py' -s``
"""

from __future__ import annotations

import io
import json
import os
import random
import statistics
import time
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from image_repo.http.context import services_of
from tests.conftest import make_app

from .bench_images import _app_stdout_to_devnull
from .harness import environment_info, write_results
from .seed import seed

TARGET = 1.5
TAG = "tag-7"

DATABASE_URL = os.environ.get("BENCH_SCALE_DATABASE_URL") or os.environ.get(
    "IMAGE_REPO_TEST_DATABASE_URL"
)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _schema_url(url: str, schema: str) -> str:
    return (
        make_url(url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


def _png(seed: int) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    im = Image.frombytes("RGB", (32, 32), bytes(rng.getrandbits(8) for _ in range(32 * 32 * 3)))
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


@pytest.mark.skipif(not DATABASE_URL, reason="needs PostgreSQL (BENCH_SCALE_DATABASE_URL)")
def test_costs_stay_flat(bench_settings, tmp_path):
    big, small = _env_int("BENCH_SCALE_IMAGES", 1_000_000), _env_int("BENCH_SCALE_SMALL", 10_000)
    reps = _env_int("BENCH_SCALE_REPS", 60)
    schema = os.environ.get("BENCH_SCALE_SCHEMA", "bench_scale")
    admin = create_engine(DATABASE_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    admin.dispose()
    url = _schema_url(DATABASE_URL, schema)

    seeding = {}
    for count in (big, small):
        name = f"n{count}"
        probe = create_engine(url)
        with probe.connect() as connection:
            has = (
                connection.execute(
                    text(
                        "SELECT count(*) FROM images JOIN tenants ON tenants.id = images.tenant_id"
                        " WHERE tenants.name = :name"
                    ),
                    {"name": name},
                ).scalar()
                if _migrated(connection)
                else 0
            )
        probe.dispose()
        seeding[name] = seed(url, name, max(0, count - has))
        print(f"scale: tenant {name}: {seeding[name]}")

    app = make_app(
        {
            "TESTING": True,
            "ENV": "development",
            "DATA_DIR": tmp_path / "data",
            "DATABASE_URL": url,
            "REDIS_URL": None,
            "RATELIMIT_ENABLED": False,
        }
    )
    engine = services_of(app).engine
    client = app.test_client()
    sides = {"big": f"n{big}", "small": f"n{small}"}
    headers, tenant_ids = {}, {}
    for side, name in sides.items():
        result = app.test_cli_runner().invoke(
            args=["keys", "create", "--tenant", name, "--group", "admin", "--json"]
        )
        assert result.exit_code == 0, result.output
        made = json.loads(result.output)
        headers[side] = {"Authorization": f"Bearer {made['api_key']}"}
        tenant_ids[side] = made["tenant_id"]

    from image_repo.http.paging import encode_cursor

    deep_urls, similar_ids = {}, {}
    with engine.connect() as connection:
        for side, tenant_id in tenant_ids.items():
            count = big if side == "big" else small
            row = connection.execute(
                text(
                    "SELECT uploaded_at, id FROM images WHERE tenant_id = :t AND trashed_at IS NULL"
                    " ORDER BY uploaded_at DESC, id DESC OFFSET :o LIMIT 1"
                ),
                {"t": tenant_id, "o": count // 2},
            ).one()
            with app.app_context():
                cursor = encode_cursor((row[0], row[1]), repr(([("sort", "-uploaded_at")], None)))
            deep_urls[side] = f"/images?limit=50&cursor={cursor}"
            similar_ids[side] = list(
                connection.execute(
                    text(
                        "SELECT id FROM images WHERE tenant_id = :t AND phash IS NOT NULL"
                        " ORDER BY md5(id) LIMIT :n"
                    ),
                    {"t": tenant_id, "n": reps},
                ).scalars()
            )

    def get(side: str, url: str) -> Callable[[], object]:
        def run():
            response = client.get(url, headers=headers[side])
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
            return response

        return run

    warmed = (
        _warm_os_cache(engine, schema)
        if os.environ.get("BENCH_SCALE_WARM", "1") != "0"
        else "not warmed (BENCH_SCALE_WARM=0)"
    )
    print(f"scale: read into the OS cache: {warmed}")

    statement_seconds: list[float] = []

    def on_before(_conn, _cursor, _statement, _params, context, _many):
        context._bench_started = time.perf_counter()

    def on_after(_conn, _cursor, _statement, _params, context, _many):
        statement_seconds.append(time.perf_counter() - context._bench_started)

    uploads = {"big": 0, "small": 0}

    def upload(side: str) -> Callable[[], object]:
        def run():
            uploads[side] += 1
            body = {"image": (io.BytesIO(_png(hash((side, uploads[side])))), "bench.png")}
            response = client.post(
                "/images", data=body, headers=headers[side], content_type="multipart/form-data"
            )
            assert response.status_code == 201, response.get_data(as_text=True)[:300]

        return run

    kinds: dict[str, Callable[[str, int], Callable[[], object]]] = {
        "first page": lambda side, i: get(side, "/images?limit=50"),
        "deep page": lambda side, i: get(side, deep_urls[side]),
        "tag filter": lambda side, i: get(side, f"/images?limit=50&tag={TAG}"),
        "timeline by month": lambda side, i: get(side, "/images/timeline?granularity=month"),
        "similar": lambda side, i: get(
            side, f"/images/{similar_ids[side][i % len(similar_ids[side])]}/similar"
        ),
        "upload (request)": lambda side, i: upload(side),
    }
    samples: dict[str, dict[str, list[float]]] = {k: {"big": [], "small": []} for k in kinds}
    db_samples: dict[str, list[float]] = {"big": [], "small": []}
    event.listen(engine, "before_cursor_execute", on_before)
    event.listen(engine, "after_cursor_execute", on_after)
    try:
        with _app_stdout_to_devnull():
            for kind, make in kinds.items():
                for side in ("big", "small"):  # warm-up
                    for i in range(5):
                        make(side, i)()
                for i in range(reps):
                    order = ("big", "small") if i % 2 else ("small", "big")
                    for side in order:
                        run = make(side, i)
                        statement_seconds.clear()
                        started = time.perf_counter()
                        run()
                        samples[kind][side].append(time.perf_counter() - started)
                        if kind == "upload (request)":
                            db_samples[side].append(sum(statement_seconds))
    finally:
        event.remove(engine, "before_cursor_execute", on_before)
        event.remove(engine, "after_cursor_execute", on_after)
    samples["upload (database)"] = db_samples

    with engine.connect() as connection:
        sizes = {
            table: connection.execute(
                text("SELECT pg_total_relation_size(:t)"), {"t": f"{schema}.{table}"}
            ).scalar()
            for table in ("images", "image_tags", "image_day_counts", "collection_images")
        }
        images_total = connection.execute(text("SELECT count(*) FROM images")).scalar()
        tags_total = connection.execute(text("SELECT count(*) FROM image_tags")).scalar()

    print()
    print(
        f"scale: {big:,} vs {small:,} images, PostgreSQL, test client, "
        f"{reps} alternating requests per kind and side, medians"
    )
    results = {}
    for kind, by_side in samples.items():
        b, s = statistics.median(by_side["big"]), statistics.median(by_side["small"])
        ratio = b / s
        results[kind] = {"big_ms": b * 1000, "small_ms": s * 1000, "ratio": ratio}
        met = "met" if ratio <= TARGET else "NOT met"
        print(
            f"  {kind:<20} {b * 1000:8.2f} ms vs {s * 1000:8.2f} ms  "
            f"ratio {ratio:5.2f} (target <= {TARGET}: {met})"
        )
    per_image = sum(sizes.values()) / images_total
    print(
        f"scale: database {sum(sizes.values()) / 2**20:.0f} MiB for {images_total:,} images "
        f"and {tags_total:,} tags: {per_image:.0f} bytes per image "
        + ", ".join(f"{t} {v / images_total:.0f}" for t, v in sizes.items())
    )
    data = {
        "benchmark": "scale",
        "environment": environment_info(),
        "images": {"big": big, "small": small},
        "reps": reps,
        "seeding": seeding,
        "results": results,
        "relation_bytes": sizes,
        "images_total": images_total,
        "tags_total": tags_total,
        "bytes_per_image": per_image,
        "target_ratio": TARGET,
    }
    for path in write_results("scale", data, tmp_path, bench_settings.results_dir):
        print(f"scale: results written to {path}")
    services_of(app).engine.dispose()


def _warm_os_cache(engine, schema: str) -> str:
    """Read the tables and indexes the requests use into the operating system's cache.

    A running server's database files sit in the OS cache; a freshly seeded
    one's may not, and a read from disk then costs far more than the query.
    ``pg_prewarm`` in ``read`` mode fills the OS cache only: PostgreSQL's own
    buffers keep their configured size (the default 128 MB here), so pages
    not in them are still read per query, at memory speed. Both tenants live
    in the same tables, so both sides are warmed alike.
    """
    tables = ("images", "image_tags", "image_day_counts", "tenants", "api_keys")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
    except DBAPIError as error:  # not installed, or not allowed: measured as it is
        return f"not warmed (pg_prewarm unavailable: {error.orig})"
    with engine.begin() as connection:
        # Wherever the extension was created: the search path is the bench's schema.
        where = connection.execute(
            text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = :e"),
            {"e": "pg_prewarm"},
        ).scalar()
        blocks = connection.execute(
            text(
                f"SELECT coalesce(sum({where}.pg_prewarm(c.oid::regclass, 'read')), 0)"
                " FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " LEFT JOIN pg_index i ON i.indexrelid = c.oid"
                " LEFT JOIN pg_class t ON t.oid = i.indrelid"
                " WHERE n.nspname = :schema AND c.relkind IN ('r', 'i')"
                " AND coalesce(t.relname, c.relname) = ANY(:tables)"
            ),
            {"schema": schema, "tables": list(tables)},
        ).scalar()
    return f"{blocks * 8192 / 2**20:.0f} MiB of {', '.join(tables)} and their indexes"


def _migrated(connection) -> bool:
    return bool(
        connection.execute(
            text(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'tenants'"
                " AND table_schema = current_schema()"
            )
        ).scalar()
    )
