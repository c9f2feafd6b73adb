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

import logging
import os
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import BinaryIO

from PIL import Image, ImageFile, UnidentifiedImageError

from image_repo.imaging import hashes, loading, orientation, preview
from image_repo.imaging.exif import ExifData, read_exif
from image_repo.imaging.formats import ACCEPTED_FORMATS, OPENABLE_FORMATS
from image_repo.imaging.limits import (
    DEFAULT_LIMITS,
    Deadline,
    DeadlineReader,
    DecodeLimits,
    DecodeTimeout,
    LimitExceeded,
)
from image_repo.imaging.rejections import (
    ImageRejected,
    corrupt,
    corrupt_header,
    too_many_pixels,
    unidentified,
    unsupported,
)
from image_repo.imaging.streams import seekable
from image_repo.imaging.survey import Survey, check_decoded_pixels, check_frames, survey

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 100_000_000


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
    with seekable(fp) as stream, _pillow_guard(max_pixels):
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

# --- opening -------------------------------------------------------------


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
        raise unidentified(_read_head(stream)) from exc
    except Image.DecompressionBombError as exc:
        raise too_many_pixels(max_pixels) from exc
    except _DECODE_ERRORS as exc:
        raise corrupt_header(_read_head(stream), exc) from exc


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
        raise unsupported(pillow_format)
    _check_pixels(im.size, max_pixels)
    # Only the first frame is decoded: the others' headers are read, never their pixels.
    check_decoded_pixels(im.size, limits)
    frames = _checked_frames(im, pillow_format, max_pixels, limits)
    stored_width, stored_height = im.size  # before a draft shrinks it
    scale = preview.draft_for_preview(im) if preview.wants_preview(im) else None
    try:
        loading.load(im, found, deadline)
    except Image.DecompressionBombError as exc:
        raise too_many_pixels(max_pixels) from exc
    except _DECODE_ERRORS as exc:
        raise corrupt(pillow_format, exc) from exc

    meta = read_exif(im)
    width, height = orientation.upright_size((stored_width, stored_height), meta.orientation)
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
        blurhash=blurhash,
        phash=phash,
        preview=preview_bytes,
        **_metadata(meta),
    )


def _metadata(meta: ExifData) -> dict[str, object]:
    """Every field read from the EXIF (orientation, camera, capture, GPS): ImageInfo has them all."""
    return {f.name: getattr(meta, f.name) for f in fields(meta)}


def _check_pixels(size: tuple[int, int], max_pixels: int, frame: int | None = None) -> None:
    width, height = size
    if width * height > max_pixels:
        raise too_many_pixels(max_pixels, size, frame)


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
        raise too_many_pixels(max_pixels) from exc
    except _DECODE_ERRORS as exc:
        raise corrupt(pillow_format, exc) from exc
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
            raise too_many_pixels(max_pixels, frame=frame) from exc
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
        raise corrupt(im.format, exc) from exc
    return readable


def _hashes(im: Image.Image, orientation_tag: int) -> tuple[str | None, str | None]:
    # The picture is valid by now; a hashing failure must not refuse it.
    try:
        small = hashes.hashing_image(im, orientation_tag)
        return hashes.blurhash(small), hashes.phash(small)
    except Exception:
        log.warning("could not hash a %s %s image", im.mode, im.format, exc_info=True)
        return None, None
