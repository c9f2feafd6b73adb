"""Reading camera metadata (EXIF, GPS, capture time) from a decoded image.

Uploads come from anywhere, and EXIF written by cameras, phones, editors and
fuzzers is often wrong: zero denominators, strings where numbers belong,
garbage dates, 4294967295 everywhere. Every field is read on its own and
becomes None when it does not make sense, so metadata can never make an
upload fail.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from numbers import Real
from typing import Any, TypeVar

from PIL import ExifTags, Image

T = TypeVar("T")

Tag = ExifTags.Base
GPS = ExifTags.GPS

# Plausibility bounds: beyond these a value is garbage, not a photo setting.
MAX_EXPOSURE_S = 24 * 3600.0
MAX_F_NUMBER = 1000.0  # pinhole cameras reach f/500
MAX_ISO = 10_000_000
MAX_FOCAL_MM = 100_000.0  # 100 m: beyond any telescope
MAX_ALTITUDE_M = 100_000.0  # stratospheric balloons stay below 50 km
MAX_TEXT = 255
# Cameras that cannot express a high ISO in the 16-bit tag write 65535 there.
ISO_SATURATED = 65535


@dataclass(frozen=True)
class ExifData:
    orientation: int = 1
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    taken_at: datetime | None = None
    exposure_time: float | None = None
    f_number: float | None = None
    iso: int | None = None
    focal_length: float | None = None
    gps_latitude: float | None = None
    gps_longitude: float | None = None
    gps_altitude: float | None = None
    has_gps: bool = False


def read_exif(im: Image.Image) -> ExifData:
    """Metadata of an opened image; never raises on bad EXIF."""
    exif = _safe(im.getexif)
    if exif is None:
        return ExifData()
    main = _safe(lambda: exif.get_ifd(ExifTags.IFD.Exif)) or {}
    gps = _safe(lambda: exif.get_ifd(ExifTags.IFD.GPSInfo)) or {}
    # Some writers put Exif-IFD tags (lens, dates) in IFD0: look in both.
    tags = _Tags(main, exif)
    latitude, longitude = _safe(lambda: gps_position(gps)) or (None, None)
    return ExifData(
        orientation=_orientation(exif),
        camera_make=_safe(lambda: as_text(tags.get(Tag.Make))),
        camera_model=_safe(lambda: as_text(tags.get(Tag.Model))),
        lens=_safe(lambda: as_text(tags.get(Tag.LensModel))),
        taken_at=_safe(lambda: taken_at(tags)),
        exposure_time=_safe(lambda: _bounded(tags.get(Tag.ExposureTime), MAX_EXPOSURE_S)),
        f_number=_safe(lambda: f_number(tags)),
        iso=_safe(lambda: iso(tags)),
        focal_length=_safe(lambda: _bounded(tags.get(Tag.FocalLength), MAX_FOCAL_MM)),
        gps_latitude=latitude,
        gps_longitude=longitude,
        gps_altitude=_safe(lambda: gps_altitude(gps)),
        has_gps=bool(_safe(lambda: len(gps))),
    )


class _Tags:
    """Tag lookup across the Exif IFD and IFD0, Exif IFD first."""

    def __init__(self, *ifds: Mapping[int, Any]) -> None:
        self._ifds = ifds

    def get(self, tag: int) -> Any:
        for ifd in self._ifds:
            value = _safe(lambda ifd=ifd: ifd.get(tag))
            if value is not None:
                return value
        return None


def _safe(read: Callable[[], T]) -> T | None:
    # Hostile EXIF can raise almost anything from deep inside Pillow's parser.
    try:
        return read()
    except Exception:
        return None


def _orientation(exif: Mapping[int, Any]) -> int:
    value = _safe(lambda: orientation_of(exif))
    return 1 if value is None else value  # not `or 1`: 0 is a valid answer


def orientation_of(exif: Mapping[int, Any]) -> int:
    """The EXIF orientation tag, 1 when absent or outside 0..8.

    0 ("undefined") is reported as written, as several writers use it; it
    displays like 1.
    """
    value = exif.get(Tag.Orientation)
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 8:
        return value
    return 1


def as_float(value: Any) -> float | None:
    """A finite float from an EXIF number or rational, else None."""
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    try:
        result = float(value)  # IFDRational with a zero denominator is NaN
    except (ValueError, OverflowError, ZeroDivisionError):
        return None
    return result if math.isfinite(result) else None


def _bounded(value: Any, upper: float) -> float | None:
    number = as_float(value)
    if number is None or not 0 < number <= upper:
        return None
    return number


def as_text(value: Any) -> str | None:
    """An EXIF string cut at the first NUL, control characters dropped."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    value = value.split("\0", 1)[0]
    value = "".join(c for c in value if unicodedata.category(c) != "Cc").strip()
    if not value or len(value) > MAX_TEXT:
        return None
    return value


def f_number(tags: _Tags) -> float | None:
    direct = _bounded(tags.get(Tag.FNumber), MAX_F_NUMBER)
    if direct is not None:
        return direct
    # ApertureValue is APEX: f = sqrt(2) ** Av.
    apex = as_float(tags.get(Tag.ApertureValue))
    if apex is None or not -2 < apex < 40:
        return None
    return _bounded(round(math.sqrt(2) ** apex, 1), MAX_F_NUMBER)


def iso(tags: _Tags) -> int | None:
    for tag in (Tag.ISOSpeedRatings, Tag.ISOSpeed, Tag.RecommendedExposureIndex):
        value = tags.get(tag)
        if isinstance(value, tuple) and value:
            value = value[0]  # ISOSpeedRatings may list several values
        value = as_float(value)
        if value is None or not 0 < value <= MAX_ISO or value != int(value):
            continue
        if tag == Tag.ISOSpeedRatings and value == ISO_SATURATED:
            continue  # the real value, if any, is in one of the next tags
        return int(value)
    return None


_DATETIME = re.compile(r"\s*(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"\s*([+-])(\d{2}):?(\d{2})\s*")

# (time, sub-seconds, offset) tags, most meaningful first.
_TIME_TAGS = (
    (Tag.DateTimeOriginal, Tag.SubsecTimeOriginal, Tag.OffsetTimeOriginal),
    (Tag.DateTimeDigitized, Tag.SubsecTimeDigitized, Tag.OffsetTimeDigitized),
    (Tag.DateTime, Tag.SubsecTime, Tag.OffsetTime),
)


def taken_at(tags: _Tags) -> datetime | None:
    """Capture time; aware when the matching OffsetTime* tag is usable."""
    for time_tag, subsec_tag, offset_tag in _TIME_TAGS:
        moment = parse_exif_datetime(tags.get(time_tag))
        if moment is None:
            continue
        fraction = _safe(lambda tag=subsec_tag: parse_subsec(tags.get(tag)))
        if fraction:
            moment = moment.replace(microsecond=fraction)
        offset = _safe(lambda tag=offset_tag: parse_offset(tags.get(tag)))
        return moment.replace(tzinfo=offset) if offset else moment
    return None


def parse_exif_datetime(value: Any) -> datetime | None:
    """Parse "YYYY:MM:DD HH:MM:SS" (also with dashes or a T); None if junk."""
    text = as_text(value)
    match = _DATETIME.match(text or "")
    if match is None:
        return None
    try:
        return datetime(*(int(part) for part in match.groups()))
    except ValueError:  # "0000:00:00 00:00:00", month 13, ...
        return None


def parse_subsec(value: Any) -> int | None:
    """SubSecTime* digits ("78" = 0.78 s) as microseconds."""
    text = as_text(value)
    if not text or not text.isdigit() or not text.isascii():
        return None
    return int(text[:6].ljust(6, "0"))


def parse_offset(value: Any) -> timezone | None:
    """OffsetTime* like "+02:00" as a timezone; None if absent or invalid."""
    match = _OFFSET.fullmatch(as_text(value) or "")
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    if int(hours) > 23 or int(minutes) > 59:
        return None
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def gps_position(gps: Mapping[int, Any]) -> tuple[float | None, float | None]:
    """Signed decimal (latitude, longitude), or (None, None) unless both are valid."""
    latitude = _signed_degrees(gps.get(GPS.GPSLatitude), gps.get(GPS.GPSLatitudeRef), "N", "S", 90)
    longitude = _signed_degrees(
        gps.get(GPS.GPSLongitude), gps.get(GPS.GPSLongitudeRef), "E", "W", 180
    )
    if latitude is None or longitude is None:
        return None, None  # half a position is no position
    return latitude, longitude


def dms_to_degrees(value: Any) -> float | None:
    """Degrees from (d, m, s), (d, m) or plain d; None if any part is bad."""
    parts = value if isinstance(value, tuple) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    numbers = [as_float(part) for part in parts]
    if any(n is None or n < 0 for n in numbers):
        return None
    return sum(n / 60**i for i, n in enumerate(numbers))  # type: ignore[operator]


def _signed_degrees(
    value: Any, ref: Any, positive: str, negative: str, limit: float
) -> float | None:
    degrees = dms_to_degrees(value)
    if degrees is None:
        return None
    direction = as_text(ref)
    if direction is not None:
        direction = direction.upper()
        if direction not in (positive, negative):
            return None  # a garbled ref could flip the hemisphere: don't guess
        if direction == negative:
            degrees = -degrees
    # A missing ref is read as N/E, as most readers do.
    return degrees if abs(degrees) <= limit else None


def gps_altitude(gps: Mapping[int, Any]) -> float | None:
    """Metres above (negative: below) sea level."""
    altitude = as_float(gps.get(GPS.GPSAltitude))
    if altitude is None or not 0 <= altitude <= MAX_ALTITUDE_M:
        return None
    ref = gps.get(GPS.GPSAltitudeRef)
    if isinstance(ref, bytes):
        ref = ref[0] if len(ref) == 1 else None
    # 0/1: above/below sea level; EXIF 3.0 adds 2/3 for the ellipsoid.
    if ref in (None, 0, 2):
        return altitude
    if ref in (1, 3):
        return -altitude
    return None  # a garbled ref: the sign is unknowable
