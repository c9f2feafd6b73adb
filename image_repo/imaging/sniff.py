"""What a file is, told from its first bytes: magic numbers and the formats they name.

Only format identification lives here. Acceptance is by decoding (``probe``):
these checks only word a rejection precisely ("a PDF document", "a JPEG XL
image") when no accepted decoder took the file, or name the format a
damaged header claims to be. The walks over a file's structure that bound
decoding costs are ``survey``'s; it picks its walk by the signatures
defined here.
"""

from __future__ import annotations

import codecs
import re

# Signatures of the accepted formats that ``survey`` walks as well.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GIF_SIGNATURES = (b"GIF87a", b"GIF89a")
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic, then BigTIFF

# ISO base media files (HEIF, AVIF, MP4, ...) name their kind by a brand.
_ISO_BMFF_BRANDS = {
    b"avif": "AVIF",
    b"avis": "AVIF",
    **dict.fromkeys(
        (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"mif2"),
        "HEIF",
    ),
}
_ACCEPTED_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (PNG_SIGNATURE, "PNG"),
    *((magic, "GIF") for magic in GIF_SIGNATURES),
    *((magic, "TIFF") for magic in TIFF_SIGNATURES),
    (b"BM", "BMP"),
)
_UNSUPPORTED_SIGNATURES = (
    (b"%PDF-", "a PDF document"),
    (b"\xc5\xd0\xd3\xc6", "an EPS (Encapsulated PostScript) file"),
    (b"8BPS", "a Photoshop (PSD) document"),
    (b"icns", "an Apple icon (ICNS)"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 image"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "a JPEG XL image"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"qoif", "a QOI image"),
    (b"DDS ", "a DirectDraw Surface (DDS) texture"),
    (b"gimp xcf", "a GIMP (XCF) image"),
    (b"v/1\x01", "an OpenEXR image"),
    (b"#?RADIANCE", "a Radiance HDR image"),
    (b"#?RGBE", "a Radiance HDR image"),
    (b"SIMPLE  =", "a FITS image"),
    (b"\x59\xa6\x6a\x95", "a Sun Raster image"),
    (b"/* XPM */", "an XPM image"),
    (b"BLP1", "a BLP texture"),
    (b"BLP2", "a BLP texture"),
    (b"FUJIFILMCCD-RAW", "a Fujifilm RAF raw photo"),
)
_NETPBM = re.compile(rb"P[1-7]\s")
_VIDEO_BRANDS = (b"isom", b"iso2", b"mp41", b"mp42", b"avc1", b"M4V ", b"3gp", b"qt  ", b"dash")


def is_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def _brand(head: bytes) -> bytes | None:
    return head[8:12] if head[4:8] == b"ftyp" else None


def accepted_format(head: bytes) -> str | None:
    """The accepted format (Pillow's name) the file claims to be by its signature, if any."""
    brand = _brand(head)
    if brand is not None:
        return _ISO_BMFF_BRANDS.get(brand)
    if is_webp(head):
        return "WEBP"
    return next((name for magic, name in _ACCEPTED_SIGNATURES if head.startswith(magic)), None)


def unsupported_format(head: bytes) -> str | None:
    """A known image or document format that is not accepted, as a phrase ("a PDF document")."""
    if head.startswith(b"%!PS"):
        first_line = head.split(b"\n", 1)[0]
        if b"EPSF" in first_line:
            return "an EPS (Encapsulated PostScript) file"
        return "a PostScript document"
    if _NETPBM.match(head):
        return "a Netpbm (PNM) image"
    if head[128:132] == b"DICM":
        return "a DICOM medical image"
    if _brand(head) == b"crx ":
        return "a Canon CR3 raw photo"
    if head.startswith(b"#define") and b"_width" in head[:200]:
        return "an XBM image"
    by_magic = (name for magic, name in _UNSUPPORTED_SIGNATURES if head.startswith(magic))
    return next(by_magic, None) or _headerless_kind(head)


def _headerless_kind(head: bytes) -> str | None:
    """Formats with weak or no magic, told by plausible header fields."""
    if len(head) < 18:
        return None
    # ICO/CUR: reserved, type, a non-zero count, the first entry's reserved byte
    icon_header = head[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00")
    if icon_header and head[4:6] != b"\x00\x00" and head[9] == 0:
        return "an ICO icon" if head[2] == 1 else "a CUR cursor"
    if head[:2] == b"\x01\xda" and head[2] in (0, 1) and head[3] in (1, 2):
        return "an SGI image"
    if head[0] == 0x0A and head[1] in (0, 2, 3, 4, 5) and head[2] == 1:
        return "a PCX image"
    # TGA: colour-map type 0/1, a known image type, a usual pixel depth
    if head[1] in (0, 1) and head[2] in (1, 2, 3, 9, 10, 11) and head[16] in (8, 15, 16, 24, 32):
        return "a TGA (Targa) image"
    return None


def other_kind(head: bytes) -> str | None:
    """Common non-image uploads, named so the message helps ("an HTML page")."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in text:
        return "an SVG drawing (vector graphics are not accepted)"
    if text.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if text.startswith(b"<?xml"):
        return "an XML document"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive (or an office document)"
    brand = _brand(head)
    if brand is not None and brand.startswith(_VIDEO_BRANDS):
        return "a video"
    if _looks_like_text(head):
        return "a text file"
    return None


def _looks_like_text(head: bytes) -> bool:
    # Incremental, because the head may end inside a multi-byte character.
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\r\n\f" for c in text)
