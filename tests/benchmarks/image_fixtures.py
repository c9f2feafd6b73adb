"""Data makers for bench_images.py: photo-like JPEGs, distinct variants, a million rows, /proc.

Kept free of pytest fixtures and of any app import at module level, so that
importing it costs little and the default test run (which collects no
benchmark) never touches it.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.corpus import corpus_path

SOURCE_PHOTO = corpus_path("orientation/Landscape_1.jpg")

# Rows of the upscaled picture that get their noise in one go: bounds the
# temporary numpy arrays to a strip (12000 px x 256 rows x 3 x int16 = 18 MiB).
NOISE_STRIP_ROWS = 256


# --- photo-like JPEGs -----------------------------------------------------


def photo_like_jpeg(
    path: Path,
    size: tuple[int, int],
    *,
    source: Path = SOURCE_PHOTO,
    quality: int = 90,
    noise: int = 6,
    seed: int = 0,
) -> Path:
    """Upscale ``source`` to ``size``, add sensor-like noise, save as JPEG at ``quality``.

    Memory: the one full-size RGB picture (w * h * 3 bytes) plus a strip at a
    time for the noise; the source's EXIF is kept so that ingest reads real
    camera metadata.
    """
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    with Image.open(source) as src:
        exif = src.info.get("exif", b"")
        big = src.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    width, height = size
    for top in range(0, height, NOISE_STRIP_ROWS):
        box = (0, top, width, min(height, top + NOISE_STRIP_ROWS))
        strip = np.asarray(big.crop(box), dtype=np.int16)
        strip += rng.integers(-noise, noise + 1, size=strip.shape, dtype=np.int16)
        np.clip(strip, 0, 255, out=strip)
        big.paste(Image.fromarray(strip.astype(np.uint8), "RGB"), box)
        del strip
    big.save(path, "JPEG", quality=quality, exif=exif)
    big.close()
    return path


def with_comment(jpeg: bytes, comment: bytes) -> bytes:
    """``jpeg`` with a COM segment holding ``comment`` inserted after its APPn segments.

    The pixels are untouched: every variant decodes to the same picture at the
    same cost, but hashes differently, so dedup cannot short-circuit ingest.
    """
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no SOI marker)")
    if len(comment) > 65533:
        raise ValueError("a COM segment holds at most 65533 bytes")
    pos = 2
    while jpeg[pos] == 0xFF and 0xE0 <= jpeg[pos + 1] <= 0xEF:  # APP0..APP15
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        pos += 2 + length
    segment = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    return jpeg[:pos] + segment + jpeg[pos:]


def jpeg_variants(base: Path, count: int, folder: Path, stem: str = "variant") -> list[Path]:
    """``count`` files with ``base``'s pixels and a distinct COM segment each."""
    data = base.read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{stem}-{i:03d}.jpg"
        path.write_bytes(with_comment(data, f"bench variant {i:06d}".encode()))
        paths.append(path)
    return paths


# --- a million rows -------------------------------------------------------

FIRST_UPLOAD = datetime(2020, 1, 1, tzinfo=UTC)


def image_rows(
    tenant_id: str,
    start: int,
    stop: int,
    *,
    ids: list[str],
    phash_of: Callable[[int], str | None] | None = None,
    taken_of: Callable[[int], datetime | None] | None = None,
) -> Iterator[dict[str, object]]:
    """Rows for ``images`` numbered ``start`` .. ``stop - 1``, every NOT NULL column filled.

    Row ``n`` was uploaded ``n`` seconds (plus a few microseconds, so no two
    collide) after FIRST_UPLOAD; half carry a capture time. ``ids[n]`` is its id.
    ``phash_of(n)`` and ``taken_of(n)`` replace the default hash (``n`` in hex)
    and capture time.
    """
    for n in range(start, stop):
        uploaded = FIRST_UPLOAD + timedelta(seconds=n, microseconds=n % 997)
        if taken_of is not None:
            taken = taken_of(n)
        else:
            taken = uploaded - timedelta(days=30, seconds=n % 86400) if n % 2 else None
        yield {
            "id": ids[n],
            "tenant_id": tenant_id,
            "sha256": hashlib.sha256(str(n).encode()).hexdigest(),
            "version": 1,
            "filename": f"IMG_{n:07d}.jpg",
            "title": f"Photo {n}" if n % 3 == 0 else None,
            "description": None,
            "uploaded_at": uploaded,
            "updated_at": uploaded,
            "taken_at": taken,
            "taken_at_offset": 60 if taken is not None else None,
            "sort_time": taken or uploaded,
            "format": "JPEG",
            "mime_type": "image/jpeg",
            "bytes": 2_000_000 + n % 1_000_000,
            "width": 4000,
            "height": 3000,
            "stored_width": 4000,
            "stored_height": 3000,
            "frames": 1,
            "animated": False,
            "color_mode": "RGB",
            "has_alpha": False,
            "has_icc": n % 5 == 0,
            "orientation": 1,
            "camera_make": "Bench" if n % 2 else None,
            "camera_model": "Bench 1" if n % 2 else None,
            "lens": None,
            "exposure_time": 1 / 125 if n % 2 else None,
            "f_number": 4.0 if n % 2 else None,
            "iso": 200 if n % 2 else None,
            "focal_length": 35.0 if n % 2 else None,
            "has_gps": n % 7 == 0,
            "gps_latitude": 48.85 if n % 7 == 0 else None,
            "gps_longitude": 2.35 if n % 7 == 0 else None,
            "gps_altitude": None,
            "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
            "phash": phash_of(n) if phash_of is not None else f"{n:016x}",
        }


FILL_CACHE_KIB = 512 * 1024


def fill_images(
    engine, tenant_id: str, count: int, *, batch: int = 50_000, tag_every: int = 10
) -> list[str]:
    """Insert ``count`` images (and a tag on every ``tag_every``-th) in one transaction.

    SQLAlchemy Core executemany in batches: no ORM objects. Returns the ids,
    ``ids[n]`` being row ``n`` (uploaded ``n`` seconds after FIRST_UPLOAD).
    """
    from sqlalchemy import insert

    from image_repo.db.models import Image, ImageTag
    from image_repo.domain.ids import new_id

    ids = [new_id("img") for _ in range(count)]
    images, tags = insert(Image.__table__), insert(ImageTag.__table__)
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            # Keep the index b-trees in memory while rows land in random id order.
            connection.exec_driver_sql(f"PRAGMA cache_size = -{FILL_CACHE_KIB}")
        for start in range(0, count, batch):
            stop = min(count, start + batch)
            connection.execute(images, list(image_rows(tenant_id, start, stop, ids=ids)))
            tag_rows = [
                {"image_id": ids[n], "tag": f"tag-{n % 100}", "tenant_id": tenant_id}
                for n in range(start, stop)
                if n % tag_every == 0
            ]
            if tag_rows:
                connection.execute(tags, tag_rows)
    return ids


# --- processes (Linux /proc; psutil may not be installed) ----------------


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) is in parentheses and may hold spaces.
    return raw[raw.rindex(")") + 2 :].split()


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if int(_stat_fields(int(entry))[1]) == pid:  # field 4: ppid
                found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return sorted(found)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM, ...), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True
