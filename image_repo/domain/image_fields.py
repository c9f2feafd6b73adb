"""What a client sets on an image, and how it is shown back.

Title, description, tags, capture time and file name come from clients, at
upload (``ingest``) and later (``images.update_image``): they are checked and
normalised here the same way for both, and shown back from here (the capture
time in its own offset, a file name safe to save).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from image_repo.db.models import Image
from image_repo.domain.errors import InvalidInput
from image_repo.imaging.formats import ACCEPTED_FORMATS

MAX_TAGS = 50
MAX_TAG_LENGTH = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What a file name may not hold: C0 and C1 controls, DEL, and the bidi controls
# (embeddings, overrides, isolates and marks), with which "photo\u202egnp.html"
# shows as "photolmth.png".
_NOT_IN_FILE_NAMES = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass
class ImageFields:
    """What a client may set on an image (at upload or later)."""

    title: str | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    taken_at: datetime | None = None


def clean_tags(tags: list[str]) -> list[str]:
    """Trimmed, de-duplicated tags, in the order given; commas split a value."""
    result: list[str] = []
    for raw in tags:
        for part in raw.split(","):
            tag = unicodedata.normalize("NFC", part).strip()
            if not tag:
                continue
            if len(tag) > MAX_TAG_LENGTH or _CONTROL.search(tag):
                raise InvalidInput(
                    f"A tag is 1 to {MAX_TAG_LENGTH} printable characters: {tag[:80]!r} is not.",
                    tags=[f"invalid tag {tag[:80]!r}"],
                )
            if tag not in result:
                result.append(tag)
    if len(result) > MAX_TAGS:
        raise InvalidInput(f"At most {MAX_TAGS} tags per image.", tags=["too many tags"])
    return result


def safe_filename(name: str | None, extension: str) -> str:
    """A display name from the client's file name: no path, no control or bidi characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _NOT_IN_FILE_NAMES.sub("", unicodedata.normalize("NFC", base)).strip().strip(".")
    base = base.replace('"', "'")
    if not base:
        base = f"image.{extension}"
    return _at_most_255_bytes(base)


def _at_most_255_bytes(name: str, keep: str = "") -> str:
    while len((name + keep).encode()) > 255:
        name = name[:-1]
    return name + keep


def served_filename(filename: str | None, format_name: str) -> str:
    """The name to serve an original under: its stored name, cleaned again, with an
    extension of the format it decoded as ("evil.html" holding a PNG is "evil.png"),
    so that a saved file opens as what it is."""
    image_format = ACCEPTED_FORMATS[format_name]
    name = safe_filename(filename, image_format.extension)
    stem, dot, extension = name.rpartition(".")
    if dot and stem and image_format.has_extension(extension):
        return name
    return _at_most_255_bytes(stem if dot and stem else name, f".{image_format.extension}")


def taken_at_fields(value: datetime | None) -> tuple[datetime | None, int | None]:
    """UTC time and the offset in minutes (None when the offset is unknown)."""
    if value is None:
        return None, None
    if value.tzinfo is None:
        # EXIF without an offset: local time of an unknown zone, kept as if UTC.
        return value.replace(tzinfo=UTC), None
    offset = value.utcoffset() or timedelta(0)
    try:
        return value.astimezone(UTC), int(offset.total_seconds() // 60)
    except OverflowError:  # a camera clock at year 1 with an offset: no usable time
        return None, None


def local_taken_at(image: Image) -> datetime | None:
    """The capture time in the offset it was recorded with (UTC when unknown)."""
    if image.taken_at is None:
        return None
    if image.taken_at_offset is None:
        return image.taken_at
    return image.taken_at.astimezone(timezone(timedelta(minutes=image.taken_at_offset)))
