"""`similar` through its band indexes gives exactly what a full scan gives.

Rows are inserted directly (no decoding: only the hashes matter), on SQLite
and PostgreSQL, with seeded random hashes clustered so that every distance
from 0 to well past the indexed range occurs, duplicates (ties) included,
with trashed images and another tenant holding the same hashes.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import event, insert, select, text, update

from image_repo.db.models import Image
from image_repo.domain import similar
from image_repo.domain.ids import new_id
from image_repo.http.context import services_of
from tests.benchmarks.image_fixtures import image_rows
from tests.conftest import create_tenant

DISTANCES = [*range(0, 17), 20, 24, 64]


def _clustered_hashes(rng: random.Random, count: int) -> list[str]:
    centres = [rng.getrandbits(64) for _ in range(6)]
    hashes = []
    for _ in range(count):
        value = rng.choice(centres)
        for bit in rng.sample(range(64), rng.choice([0, 0, 1, 2, 3, 5, 8, 11, 14, 20])):
            value ^= 1 << bit
        hashes.append(f"{value:016x}")
    # Exact duplicates: ties at distance 0 and everywhere else, broken by id.
    hashes += rng.sample(hashes, 10)
    return hashes


def _insert(engine, tenant_id: str, hashes: list[str]) -> list[str]:
    ids = [new_id("img") for _ in hashes]
    rows = list(image_rows(tenant_id, 0, len(hashes), ids=ids, phash_of=hashes.__getitem__))
    for row in rows:  # sha256 is unique per tenant only; keep it so across calls
        row["sha256"] = f"{row['id']:0>64}"[-64:]
    with engine.begin() as connection:
        connection.execute(insert(Image.__table__), rows)
    return ids


@pytest.fixture
def library(app):
    rng = random.Random(20261201)
    engine = services_of(app).engine
    mine = create_tenant(app, "mine")
    theirs = create_tenant(app, "theirs")
    hashes = _clustered_hashes(rng, 300)
    ids = _insert(engine, mine.tenant_id, hashes)
    _insert(engine, theirs.tenant_id, hashes)  # same hashes, never in mine's answers
    trashed = rng.sample(ids, 20)
    with engine.begin() as connection:
        connection.execute(
            update(Image).where(Image.id.in_(trashed)).values(trashed_at=Image.uploaded_at)
        )
        # A few without a hash (files the hashing could not read).
        connection.execute(update(Image).where(Image.id.in_(ids[:3])).values(phash=None))
    return app, mine, ids, rng


def test_band_lookup_equals_full_scan(library):
    app, mine, _ids, rng = library
    sessions = services_of(app).sessions
    compared = found = 0
    with sessions() as session:
        images = session.scalars(select(Image).where(Image.tenant_id == mine.tenant_id)).all()
        for image in rng.sample(images, 25):
            for distance in DISTANCES:
                for limit in (3, 200):
                    indexed = similar.nearest(
                        session, image, max_distance=distance, limit=limit, indexed=True
                    )
                    scanned = similar.nearest(
                        session, image, max_distance=distance, limit=limit, indexed=False
                    )
                    assert indexed == scanned, (image.phash, distance, limit)
                    compared += 1
                    found += len(indexed)
    assert compared == 25 * len(DISTANCES) * 2
    assert found > 500  # the clusters make answers at most distances, not empty lists


def test_band_values_cover_the_radius_exactly():
    values = similar.band_values("a5f0", 2)
    assert len(values) == len(set(values)) == 1 + 16 + 120
    assert all(bin(int(v, 16) ^ 0xA5F0).count("1") <= 2 for v in values)
    assert similar.uses_index(11) and not similar.uses_index(12)
    assert similar.band_radii(10) == [2, 2, 2, 1] and similar.band_radii(3) == [0, 0, 0, 0]


def _plan(connection, statement: str, parameters) -> str:
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return "\n".join(row[-1] for row in rows)
    rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters)
    return "\n".join(row[0] for row in rows)


def _analyze(engine) -> None:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("ANALYZE images"))


def _nearest_and_statements(app, image_id: str, limit: int):
    """What ``nearest`` answers for the image (distance 10), and the statements it ran."""
    engine = services_of(app).engine
    seen = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        seen.append((statement, parameters))

    with services_of(app).sessions() as session:
        image = session.get(Image, image_id)
        event.listen(engine, "before_cursor_execute", capture)
        try:
            found = similar.nearest(session, image, max_distance=10, limit=limit)
        finally:
            event.remove(engine, "before_cursor_execute", capture)
    return found, seen


def test_band_query_probes_the_band_indexes(library):
    """The statement ``similar`` runs, as it runs it, reads the band indexes only."""
    app, mine, ids, rng = library
    engine = services_of(app).engine
    # Enough rows that probing beats reading the tenant, as in a real library.
    _insert(engine, mine.tenant_id, [f"{rng.getrandbits(64):016x}" for _ in range(20_000)])
    _analyze(engine)
    _found, seen = _nearest_and_statements(app, ids[-1], limit=50)
    # The probe of the bands, then the near hashes' images (the image's own
    # hash is always near, so there is a second statement).
    assert len(seen) == 2
    with engine.connect() as connection:
        probe, lookup = (_plan(connection, *statement) for statement in seen)
    for k in range(similar.BANDS):
        assert f"ix_images_phash_band{k}" in probe, probe
    assert "ix_images_phash_band0" in lookup, lookup
    for plan in (probe, lookup):
        assert "SCAN images" not in plan and "Seq Scan" not in plan, plan


def test_a_burst_of_near_duplicates_is_looked_up_by_index(library):
    """Hundreds of near hashes (a burst, plain frames): their images are found through
    the first band's index, one probe per hash, and the answer is still the full scan's."""
    app, mine, _ids, rng = library
    engine = services_of(app).engine
    centre = rng.getrandbits(64)
    burst = []
    for _ in range(400):
        value = centre
        for bit in rng.sample(range(64), rng.choice([1, 2, 3, 4, 5, 6])):
            value ^= 1 << bit
        burst.append(f"{value:016x}")
    burst_ids = _insert(engine, mine.tenant_id, burst)
    _insert(engine, mine.tenant_id, [f"{rng.getrandbits(64):016x}" for _ in range(20_000)])
    _analyze(engine)
    indexed, seen = _nearest_and_statements(app, burst_ids[0], limit=1000)
    with services_of(app).sessions() as session:
        image = session.get(Image, burst_ids[0])
        scanned = similar.nearest(session, image, max_distance=10, limit=1000, indexed=False)
    assert indexed == scanned
    assert len(indexed) > 250  # the burst is near
    assert len(seen) == 2
    with engine.connect() as connection:
        lookup = _plan(connection, *seen[1])
    assert "ix_images_phash_band0" in lookup, lookup
    assert "SCAN images" not in lookup and "Seq Scan" not in lookup, lookup
