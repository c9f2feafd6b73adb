"""Similar images by perceptual hash: the tenant's images within a Hamming distance.

Multi-index hashing keeps the cost from growing with the library. The
64-bit hash (16 hex digits) is cut into ``BANDS`` bands of 16 bits (4 hex
digits), and each band has an index over ``(tenant_id, band, phash)`` of the
images in the library (see migrations 0008 and 0011, and ``db.models``). By pigeonhole, two
hashes within distance ``d`` agree to within ``r_k`` bits on some band
``k`` whenever ``sum(r_k + 1) > d`` (``band_radii``); so the candidates are
the images whose band ``k`` is one of the values within ``r_k`` bits of the
query's band ``k``, for some ``k``: a few hundred index probes, never a
scan. Candidates are then checked with the exact distance, and only the
hashes that pass are looked up for their images (ids are not in the band
indexes: that halves them). So the answer is the one a full scan gives,
order and ties included (a test compares both).

The bands are expressions over ``phash`` (``substr(phash, 1, 4)`` ...), not
columns: nothing has to keep them in step with the hash, and the index
build is the backfill. Past ``MAX_BAND_RADIUS`` bits on a band (a distance
of 12 or more) the probes would outnumber a scan's rows in most libraries, and
such hashes hardly look alike anyway: those queries scan the tenant.
"""

from __future__ import annotations

from itertools import combinations

from sqlalchemy import (
    ARRAY,
    Select,
    String,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import BIT
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


def band_radii(max_distance: int) -> list[int]:
    """How far to probe each band so that no hash within ``max_distance`` is missed.

    A hash differing by more than ``r_k`` bits on every band ``k`` differs by
    at least ``sum(r_k + 1)`` bits in all, so radii with ``sum(r_k + 1) >
    max_distance`` find everything: for 10, (2, 2, 2, 1) rather than four 2s.
    """
    spare = max(0, max_distance + 1 - BANDS)
    return [spare // BANDS + (1 if k < spare % BANDS else 0) for k in range(BANDS)]


def uses_index(max_distance: int) -> bool:
    return max(band_radii(max_distance)) <= MAX_BAND_RADIUS


def _scope(query: Select, image: Image) -> Select:
    return query.where(Image.tenant_id == image.tenant_id, Image.id != image.id, NOT_TRASHED)


def _in_band(k: int, values: list[str], dialect: str):
    if dialect == "postgresql":
        # One array parameter rather than 137: binding and parsing hundreds of
        # placeholders cost more than the index probes themselves.
        return _band_column(k) == any_(bindparam(f"band{k}", values, type_=ARRAY(String)))
    return _band_column(k).in_(values)


def _within(phash: str, max_distance: int):
    """PostgreSQL: the Hamming distance to ``phash``, from the index entry, at most ``max_distance``.

    Checked where the candidates are read, so only near ones cross the wire
    (in a large library a distance of 10 probes thousands). A hash of another
    length than 16 hex digits counts as far; ingest never stores one.
    """
    mine = cast(literal("x") + Image.phash, BIT(64))
    theirs = cast(literal(f"x{phash}"), BIT(64))
    distance = case(
        (func.length(Image.phash) == 16, func.bit_count(mine.op("#")(theirs))), else_=64
    )
    return distance <= max_distance


def _library(query: Select, image: Image) -> Select:
    """The tenant's images in the library: what the band indexes hold (the image itself too)."""
    return query.where(Image.tenant_id == image.tenant_id, NOT_TRASHED)


def candidates_query(image: Image, max_distance: int, dialect: str = "sqlite") -> Select:
    """The hash of every image that may be within ``max_distance``: a superset, by bands.

    On PostgreSQL only the near ones: the exact check is still made on what
    comes back. The image's own hash is among them (``images_with_hashes``
    leaves the image out).
    """
    phash = image.phash.lower()
    parts = []
    for k, radius in enumerate(band_radii(max_distance)):
        values = band_values(phash[k * BAND_HEX : (k + 1) * BAND_HEX], radius)
        part = _library(select(Image.phash), image).where(_in_band(k, values, dialect))
        if dialect == "postgresql" and len(phash) == 16:
            part = part.where(_within(phash, max_distance))
        parts.append(part)
    return union_all(*parts)


def images_with_hashes(image: Image, hashes: list[str], dialect: str = "sqlite") -> Select:
    """(id, phash) of the tenant's other images in the library that may have one of ``hashes``.

    Through the first band's index. On PostgreSQL a join to the hashes
    (``unnest``): one index descent per hash. Two lists (bands and hashes) on
    the same index would cost a descent per pair, and past a few hundred near
    hashes (a burst of near-duplicates) the planner would scan the table.
    SQLite, with no statistics to weigh such lists, may take another band
    index for its tenant column alone and walk the whole tenant; so it gets
    the first bands only, and the rows of other hashes that come back are
    farther than the distance asked (every hash within it is in ``hashes``):
    the distance check after it drops them.
    """
    query = _scope(select(Image.id, Image.phash), image)
    if dialect != "postgresql":
        return query.where(_in_band(0, sorted({h[:BAND_HEX] for h in hashes}), dialect))
    near = (
        func.unnest(bindparam("hashes", hashes, type_=ARRAY(String)))
        .table_valued("phash")
        .render_derived(name="near")
    )
    match = (
        query.where(
            _band_column(0) == func.substr(near.c.phash, 1, BAND_HEX),
            Image.phash == near.c.phash,
        )
        # OFFSET keeps the subquery apart: a probe per hash, never a hash join
        # over the whole table, whatever the planner guesses of either side.
        .offset(0)
        .lateral("match")
    )
    return select(match.c.id, match.c.phash).select_from(near).join(match, true())


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
        dialect = session.get_bind().dialect.name
        query = candidates_query(image, max_distance, dialect)
        near = sorted(
            {h for (h,) in session.execute(query) if hamming(image.phash, h) <= max_distance}
        )
        if not near:
            return []
        rows = {
            (row[0], row[1]) for row in session.execute(images_with_hashes(image, near, dialect))
        }
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
