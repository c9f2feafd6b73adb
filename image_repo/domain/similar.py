"""Similar images by perceptual hash: the tenant's images within a Hamming distance.

Multi-index hashing keeps the cost from growing with the library. The
64-bit hash (16 hex digits) is cut into ``BANDS`` bands of 16 bits (4 hex
digits), and each band has an index over ``(tenant_id, band, phash, id,
trashed_at)`` (see migration 0008 and ``db.models``). By pigeonhole, two hashes within distance ``d`` agree to
within ``d // BANDS`` bits on at least one band; so the candidates are the
images whose band ``k`` is one of the values within that radius of the
query's band ``k``, for some ``k``: a few hundred index probes, never a
scan. Candidates are then checked with the exact distance, so the answer is
the one a full scan gives, order and ties included (a test compares both).

The bands are expressions over ``phash`` (``substr(phash, 1, 4)`` ...), not
columns: nothing has to keep them in step with the hash, and the index
build is the backfill. Past ``MAX_BAND_RADIUS`` bits per band (a distance of
12 or more) the probes would outnumber a scan's rows in most libraries, and
such hashes hardly look alike anyway: those queries scan the tenant.
"""

from __future__ import annotations

from itertools import combinations

from sqlalchemy import Select, literal_column, select, union_all
from sqlalchemy.orm import Session

from image_repo.db.models import Image
from image_repo.domain.trash import NOT_TRASHED
from image_repo.imaging.hashes import hamming

BANDS = 4
BAND_BITS = 16
BAND_HEX = BAND_BITS // 4
# Probes per band at radius r: sum of C(16, i) for i <= r (1, 17, 137, 697).
MAX_BAND_RADIUS = 2


def band_sql(k: int) -> str:
    """The SQL of band ``k``: the index expression and the query must match exactly."""
    return f"substr(phash, {k * BAND_HEX + 1}, {BAND_HEX})"


def _band_column(k: int):
    return literal_column(band_sql(k).replace("phash", "images.phash"))


def band_values(band: str, radius: int) -> list[str]:
    """Every 16-bit value within ``radius`` bits of ``band``, as 4 lowercase hex digits."""
    value = int(band, 16)
    found = []
    for r in range(radius + 1):
        for bits in combinations(range(BAND_BITS), r):
            flipped = value
            for bit in bits:
                flipped ^= 1 << bit
            found.append(f"{flipped:0{BAND_HEX}x}")
    return found


def uses_index(max_distance: int) -> bool:
    return max_distance // BANDS <= MAX_BAND_RADIUS


def _scope(query: Select, image: Image) -> Select:
    return query.where(Image.tenant_id == image.tenant_id, Image.id != image.id, NOT_TRASHED)


def candidates_query(image: Image, max_distance: int) -> Select:
    """(id, phash) of every image that may be within ``max_distance``: a superset, by bands."""
    phash = image.phash.lower()
    radius = max_distance // BANDS
    parts = [
        _scope(select(Image.id, Image.phash), image).where(
            _band_column(k).in_(band_values(phash[k * BAND_HEX : (k + 1) * BAND_HEX], radius))
        )
        for k in range(BANDS)
    ]
    return union_all(*parts)


def scan_query(image: Image) -> Select:
    """(id, phash) of every image of the tenant with a hash: what the bands spare us."""
    return _scope(select(Image.id, Image.phash), image).where(Image.phash.is_not(None))


def nearest(
    session: Session, image: Image, *, max_distance: int, limit: int, indexed: bool = True
) -> list[tuple[int, str]]:
    """(distance, id) of the nearest images, nearest first, ties by id."""
    if image.phash is None:
        return []
    if indexed and uses_index(max_distance):
        rows = {(row[0], row[1]) for row in session.execute(candidates_query(image, max_distance))}
    else:
        rows = {(row[0], row[1]) for row in session.execute(scan_query(image))}
    return sorted(
        (distance, image_id)
        for image_id, phash in rows
        if (distance := hamming(image.phash, phash)) <= max_distance
    )[:limit]


def similar_images(
    session: Session, image: Image, *, max_distance: int, limit: int
) -> list[tuple[int, Image]]:
    """Nearest first (ties by id); the image itself is not included."""
    near = nearest(session, image, max_distance=max_distance, limit=limit)
    if not near:
        return []
    rows = {
        i.id: i for i in session.scalars(select(Image).where(Image.id.in_([i for _, i in near])))
    }
    return [(distance, rows[image_id]) for distance, image_id in near]
