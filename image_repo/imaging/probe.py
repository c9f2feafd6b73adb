"""Validate an upload by decoding it, and describe what it is.

``probe`` is the one door an upload goes through: it trusts no file name or
client-declared type, opens the bytes with Pillow restricted to the accepted
formats, refuses oversized pictures before any pixel is decoded, decodes the
first frame completely, then reads metadata and computes the placeholder and
perceptual hash from a small copy. A large JPEG is decoded at a DCT scale
(every coefficient is still entropy-decoded, so damage is found all the
same) and can leave a preview for renditions behind (see ``preview``).

Frames: only the first frame is decoded. Decoding them all would make the
cost of ingest grow with the frame count, which a small file can make huge,
and the first frame is what renditions use. Every frame's declared size is
checked where frames can differ in size (TIFF pages, MPO and HEIF images);
GIF, APNG, WebP and AVIF frames share the canvas checked at open. So a GIF
whose later frame data is damaged is accepted (counting the frames whose
headers can be read, up to a cut at a frame boundary), and refused as
corrupt only when its frame headers cannot be walked; an MPO or HEIF whose
extra images are missing is accepted with the frames that can be read.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import re
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Literal

from PIL import Image, ImageFile, UnidentifiedImageError

from image_repo.imaging import hashes, loading, preview
from image_repo.imaging.exif import read_exif
from image_repo.imaging.formats import ACCEPTED_FORMATS, PILLOW_FORMATS
from image_repo.imaging.limits import (
    DEFAULT_LIMITS,
    Deadline,
    DeadlineReader,
    DecodeLimits,
    DecodeTimeout,
    LimitExceeded,
)
from image_repo.imaging.survey import Survey, check_decoded_pixels, check_frames, survey

log = logging.getLogger(__name__)

RejectReason = Literal[
    "not_an_image",
    "unsupported_format",
    "corrupt",
    "too_many_pixels",
    # The DecodeLimits (see limits):
    "too_many_frames",
    "too_many_scans",
    "too_many_decoded_pixels",
    "decode_timeout",
]

DEFAULT_MAX_PIXELS = 100_000_000


class ImageRejected(Exception):
    """The upload is not an image this service accepts; ``message`` says why."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason: RejectReason = reason
        self.message = message


@dataclass(frozen=True)
class ImageInfo:
    format: str  # Pillow's format name: "JPEG", "MPO", "HEIF", ...
    mime_type: str
    width: int  # as displayed, after the EXIF orientation
    height: int
    stored_width: int  # as stored in the file
    stored_height: int
    frames: int
    animated: bool
    mode: str  # Pillow mode of the first frame
    has_alpha: bool
    has_icc: bool
    orientation: int  # EXIF tag 0..8 as written (0 displays as 1); 1 when absent/invalid
    camera_make: str | None
    camera_model: str | None
    lens: str | None
    taken_at: datetime | None  # aware when the file gives its UTC offset
    exposure_time: float | None  # seconds
    f_number: float | None
    iso: int | None
    focal_length: float | None  # mm
    gps_latitude: float | None  # signed decimal degrees
    gps_longitude: float | None
    gps_altitude: float | None  # metres, negative below sea level
    blurhash: str | None
    phash: str | None  # 16 hex characters
    # The file carries GPS tags, even ones too broken to give a position:
    # what matters when deciding whether to strip location before sharing.
    has_gps: bool = False
    # JPEG bytes of a reduced copy for renditions (probe(make_preview=True), large JPEGs).
    preview: bytes | None = field(default=None, repr=False, compare=False)


def probe(
    fp: BinaryIO | str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    make_preview: bool = False,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> ImageInfo:
    """Decode ``fp`` and describe it, or raise ImageRejected saying why not.

    A file object is read from its start and left at the position it had.
    With ``make_preview``, a large JPEG's info carries its preview's bytes.
    ``limits`` bound the work (see limits): scans, frames and decoded pixels
    are checked before decoding, and the whole probe gets
    ``limits.decode_seconds``.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone switched Pillow to accept cut-off files: truncated uploads
        # would be stored as valid. Fail loudly rather than silently.
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    if max_pixels < 1:
        raise ValueError("max_pixels must be positive")
    with _binary_stream(fp) as stream, _pillow_guard(max_pixels):
        deadline = Deadline(limits.decode_seconds)
        try:
            found = survey(stream, limits, deadline)
            im = _open(DeadlineReader(stream, deadline), max_pixels)
            with im:
                return _inspect(im, max_pixels, make_preview, limits, found, deadline)
        except LimitExceeded as exc:
            raise ImageRejected(exc.reason, exc.message) from exc
        except DecodeTimeout as exc:
            raise ImageRejected("decode_timeout", exc.message) from exc


# Formats Image.open can be asked for. PILLOW_FORMATS names MPO, which Pillow
# 13 does not register as an opener (the JPEG opener returns MPO files), and
# Image.open raises KeyError for a name it does not know.
Image.init()
OPENABLE_FORMATS: tuple[str, ...] = tuple(f for f in PILLOW_FORMATS if f in Image.OPEN)

# What decoders raise on damaged data. MemoryError and our own bugs are not
# here: they are server errors, not bad uploads.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    ZeroDivisionError,
    OverflowError,
    RuntimeError,  # pillow-heif / libheif
)

# Formats whose frames each carry their own size; other formats' frames
# share the canvas checked at open (GIF frames are clipped to it by the spec).
_SIZED_FRAMES = frozenset({"TIFF", "MPO", "HEIF"})
_ANIMATION_FORMATS = frozenset({"GIF", "PNG", "WEBP", "AVIF"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_ORIENTATIONS_SWAPPING_AXES = frozenset({5, 6, 7, 8})

_DISPLAY_NAMES = {"WEBP": "WebP", "HEIF": "HEIC/HEIF", "MPO": "JPEG (MPO)"}


def _display_name(pillow_format: str) -> str:
    return _DISPLAY_NAMES.get(pillow_format, pillow_format)


ACCEPTED_LIST = ", ".join(_display_name(f) for f in ACCEPTED_FORMATS if f != "MPO")


# --- opening -------------------------------------------------------------


@contextmanager
def _binary_stream(fp: BinaryIO | str | os.PathLike[str]) -> Iterator[BinaryIO]:
    if isinstance(fp, str | os.PathLike):
        # Opened here, not by Pillow, so a missing path is the caller's
        # FileNotFoundError and never mistaken for a bad upload.
        with open(fp, "rb") as file:
            yield file
        return
    try:
        position = fp.tell()
        fp.seek(0)
    except (AttributeError, OSError, io.UnsupportedOperation):
        yield io.BytesIO(fp.read())  # a pipe: Pillow needs to seek
        return
    try:
        yield fp
    finally:
        fp.seek(position)


_limit_lock = threading.Lock()


@contextmanager
def _pillow_guard(max_pixels: int) -> Iterator[None]:
    """Make Pillow's global pixel limit agree with ``max_pixels`` for this call.

    Pillow warns above MAX_IMAGE_PIXELS and raises above twice that. We check
    max_pixels ourselves from the header, so its warning is noise here (and
    would fail legitimate images under ``-W error``); its error stays as a
    second line of defence. Only a max_pixels above Pillow's error threshold
    needs the global raised, and it is only ever raised, never removed.
    """
    with _limit_lock:
        limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and 2 * limit < max_pixels:
            Image.MAX_IMAGE_PIXELS = -(-max_pixels // 2)
    # Not thread-safe before Python 3.14 (a race can leave these filters
    # installed process-wide), which would only silence the same warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        # Broken EXIF and odd chunks in uploads are expected, not log news.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        yield


def _open(stream: BinaryIO, max_pixels: int) -> ImageFile.ImageFile:
    try:
        return Image.open(stream, formats=OPENABLE_FORMATS)
    except UnidentifiedImageError as exc:
        raise _unidentified(_read_head(stream)) from exc
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(max_pixels) from exc
    except _DECODE_ERRORS as exc:
        # A decoder took the file, then failed on its header.
        raise _corrupt(_accepted_signature(_read_head(stream)), exc) from exc


def _read_head(stream: BinaryIO, size: int = 4096) -> bytes:
    stream.seek(0)
    return stream.read(size)


# --- inspecting ----------------------------------------------------------


def _inspect(
    im: ImageFile.ImageFile,
    max_pixels: int,
    make_preview: bool,
    limits: DecodeLimits,
    found: Survey,
    deadline: Deadline,
) -> ImageInfo:
    pillow_format = im.format or ""
    if pillow_format not in ACCEPTED_FORMATS:  # cannot happen with OPENABLE_FORMATS
        raise ImageRejected("unsupported_format", _unsupported_message(pillow_format))
    _check_pixels(im.size, max_pixels)
    # Only the first frame is decoded: the others' headers are read, never their pixels.
    check_decoded_pixels(im.size, limits)
    frames = _checked_frames(im, pillow_format, max_pixels, limits)
    stored_width, stored_height = im.size  # before a draft shrinks it
    scale = preview.draft_for_preview(im) if preview.wants_preview(im) else None
    try:
        loading.load(im, found, deadline)
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(max_pixels) from exc
    except _DECODE_ERRORS as exc:
        raise _corrupt(pillow_format, exc) from exc

    meta = read_exif(im)
    width, height = stored_width, stored_height
    if meta.orientation in _ORIENTATIONS_SWAPPING_AXES:
        width, height = height, width
    blurhash, phash = _hashes(im, meta.orientation)
    preview_bytes = None
    if scale is not None and make_preview:
        preview_bytes = preview.encode_preview(
            im,
            stored_size=(stored_width, stored_height),
            scale=scale,
            orientation=meta.orientation,
            icc=im.info.get("icc_profile"),
        )
    return ImageInfo(
        format=pillow_format,
        mime_type=ACCEPTED_FORMATS[pillow_format].mime_type,
        width=width,
        height=height,
        stored_width=stored_width,
        stored_height=stored_height,
        frames=frames,
        animated=frames > 1 and pillow_format in _ANIMATION_FORMATS,
        mode=im.mode,
        has_alpha=im.mode in _ALPHA_MODES or "transparency" in im.info,
        has_icc=bool(im.info.get("icc_profile")),
        orientation=meta.orientation,
        camera_make=meta.camera_make,
        camera_model=meta.camera_model,
        lens=meta.lens,
        taken_at=meta.taken_at,
        exposure_time=meta.exposure_time,
        f_number=meta.f_number,
        iso=meta.iso,
        focal_length=meta.focal_length,
        gps_latitude=meta.gps_latitude,
        gps_longitude=meta.gps_longitude,
        gps_altitude=meta.gps_altitude,
        blurhash=blurhash,
        phash=phash,
        has_gps=meta.has_gps,
        preview=preview_bytes,
    )


def _check_pixels(size: tuple[int, int], max_pixels: int, frame: int | None = None) -> None:
    width, height = size
    if width * height > max_pixels:
        raise _too_many_pixels(max_pixels, size, frame)


def _checked_frames(
    im: ImageFile.ImageFile, pillow_format: str, max_pixels: int, limits: DecodeLimits
) -> int:
    """Frame count, after checking the size of every frame that has its own.

    For GIF, n_frames walks the frame headers without decoding, whereas
    seek() would decode each frame and grow the canvas to frames that
    overhang it (GIF viewers clip them instead). The survey has bounded the
    count where counting costs a walk (GIF, TIFF, WebP, APNG); HEIF, AVIF and
    MPO give theirs in a header, checked here before any frame is visited.
    """
    try:
        frames = int(getattr(im, "n_frames", 1))
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(max_pixels) from exc
    except _DECODE_ERRORS as exc:
        raise _corrupt(pillow_format, exc) from exc
    check_frames(frames, limits, "pages" if pillow_format == "TIFF" else "frames")
    if frames > 1 and pillow_format in _SIZED_FRAMES:
        frames = _check_frame_sizes(im, frames, max_pixels)
    return frames


def _check_frame_sizes(im: ImageFile.ImageFile, frames: int, max_pixels: int) -> int:
    """Check each frame's declared size; return how many frames are readable."""
    readable = frames
    for frame in range(1, frames):
        try:
            im.seek(frame)  # reads the frame's header, not its pixels
        except Image.DecompressionBombError as exc:
            raise _too_many_pixels(max_pixels, frame=frame) from exc
        except _DECODE_ERRORS:
            # The first image is what every viewer shows; the others are
            # extras (stereo pair, gain map, depth map, later pages), and
            # editors often leave an MPF index pointing at removed ones.
            readable = frame
            break
        _check_pixels(im.size, max_pixels, frame)
    try:
        im.seek(0)
    except _DECODE_ERRORS as exc:
        raise _corrupt(im.format, exc) from exc
    return readable


def _hashes(im: Image.Image, orientation: int) -> tuple[str | None, str | None]:
    # The picture is valid by now; a hashing failure must not refuse it.
    try:
        small = hashes.hashing_image(im, orientation)
        return hashes.blurhash(small), hashes.phash(small)
    except Exception:
        log.warning("could not hash a %s %s image", im.mode, im.format, exc_info=True)
        return None, None


# --- rejections ----------------------------------------------------------


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels" if pixels >= 1e6 else f"{pixels:,} pixels"


def _too_many_pixels(
    max_pixels: int, size: tuple[int, int] | None = None, frame: int | None = None
) -> ImageRejected:
    what = f"Frame {frame + 1} of the image" if frame else "The image"
    limit = _megapixels(max_pixels)
    if size is None:  # Pillow refused it before we saw the size
        message = f"{what} has more pixels than the limit of {limit} allows."
    else:
        width, height = size
        message = (
            f"{what} is {width} x {height} pixels ({_megapixels(width * height)}),"
            f" more than the limit of {limit}."
        )
    return ImageRejected("too_many_pixels", message)


_UNSUPPORTED_VARIANT = re.compile(r"unsupported|not supported|not available", re.IGNORECASE)


def _corrupt(pillow_format: str | None, exc: BaseException) -> ImageRejected:
    what = f"The {_display_name(pillow_format)} image" if pillow_format else "The image"
    detail = str(exc)
    if isinstance(exc, OSError) and _UNSUPPORTED_VARIANT.search(detail):
        # e.g. "Unsupported BMP compression (4)": a valid file we can't decode.
        return ImageRejected(
            "unsupported_format",
            f"{what} uses a variant that cannot be decoded ({detail[:200]}).",
        )
    if "truncated" in detail.lower() or isinstance(exc, EOFError):
        return ImageRejected(
            "corrupt", f"{what} is incomplete: the file ends before its image data."
        )
    return ImageRejected("corrupt", f"{what} is damaged and cannot be decoded.")


def _unsupported_message(description: str) -> str:
    return (
        f"The file is {description}, which is not an accepted image format"
        f" (accepted: {ACCEPTED_LIST})."
    )


def _unidentified(head: bytes) -> ImageRejected:
    """Why no accepted decoder took the file, as precisely as its first bytes tell."""
    if not head:
        return ImageRejected("not_an_image", "The file is empty.")
    # Accepted signatures first: they are exact, the weaker checks below are not.
    accepted = _accepted_signature(head)
    if accepted:
        return ImageRejected(
            "not_an_image",
            f"The file starts like a {_display_name(accepted)} image, but its header is"
            " not valid, so it cannot be read as an image.",
        )
    unsupported = _unsupported_signature(head)
    if unsupported:
        return ImageRejected("unsupported_format", _unsupported_message(unsupported))
    other = _other_kind(head)
    if other:
        return ImageRejected(
            "not_an_image",
            f"The file is {other}, not an image (accepted formats: {ACCEPTED_LIST}).",
        )
    return ImageRejected(
        "not_an_image",
        f"The file is not an image in any recognised format (accepted: {ACCEPTED_LIST}).",
    )


# --- sniffing (only to word a rejection: acceptance is by decoding) ------

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
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
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


def _brand(head: bytes) -> bytes | None:
    return head[8:12] if head[4:8] == b"ftyp" else None


def _accepted_signature(head: bytes) -> str | None:
    brand = _brand(head)
    if brand is not None:
        return _ISO_BMFF_BRANDS.get(brand)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in _ACCEPTED_SIGNATURES if head.startswith(magic)), None)


def _unsupported_signature(head: bytes) -> str | None:
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


def _other_kind(head: bytes) -> str | None:
    """Common non-image uploads, named so the message helps."""
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
