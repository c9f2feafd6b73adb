"""Making the preview of a large original of any format (see ``imaging.preview``).

A large JPEG gets its preview at upload, from the DCT-scaled decode that
validates it. Every other large original (PNG, WebP, AVIF, HEIC, TIFF, a
GIF's first frame, a CMYK JPEG) gets one in a background job, made here
with the pipeline's own steps so that a rendition from the preview matches
one from the original within a level per pixel:

- the first frame is decoded within the decode limits, brought to the
  pipeline's working mode (``colour.working_mode``: 8-bit L, LA, RGB or
  RGBA, 16-bit scaled, palettes and transparency expanded) and reduced to
  ``PREVIEW_SIDE`` on the long edge in its stored orientation, as a
  shrink-on-load decode would be;
- it keeps the original's ICC profile and EXIF orientation (nothing else),
  so the renderer converts its colours and turns it exactly as it does the
  original's; CMYK, which PNG cannot hold, is converted to sRGB here
  (through its profile) and stored untagged;
- it is stored as PNG: lossless, so nothing is lost twice; alpha, grey and
  profiles kept. (Lossy WebP subsamples chroma, which costs more than a
  level at coloured edges; lossless WebP has no grey mode, and a grey
  profile cannot convert RGB pixels.)
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from PIL import ExifTags, Image

from image_repo.imaging import orientation
from image_repo.imaging import preview as jpeg_preview
from image_repo.imaging.limits import DEFAULT_LIMITS, Deadline, DecodeLimits
from image_repo.imaging.loading import load
from image_repo.imaging.render import colour
from image_repo.imaging.render.source import open_image
from image_repo.imaging.streams import seekable
from image_repo.imaging.survey import check_decoded_pixels, survey

# zlib level: the preview is written once and read by every small rendition;
# decoding costs the same at any level, and 6 is a good size for the time.
PNG_COMPRESSION = 6
_JPEG = ("JPEG", "MPO")


def make_preview(
    src: BinaryIO | str | os.PathLike[str], *, limits: DecodeLimits = DEFAULT_LIMITS
) -> bytes | None:
    """The preview's bytes, or None for an original too small to need one.

    Raises what the renderer raises for a source over a limit (LimitExceeded,
    DecodeTimeout) or damaged (OSError, ...).
    """
    deadline = Deadline(limits.decode_seconds)
    with seekable(src) as fp:
        found = survey(fp, limits, deadline)
        with open_image(fp, deadline) as im:
            if max(im.size) < jpeg_preview.MIN_SOURCE_SIDE:
                return None
            if jpeg_preview.wants_preview(im):
                return _jpeg(im, found, deadline)
            check_decoded_pixels(im.size, limits)
            load(im, found, deadline, whole=False)
            return _png(im)


def _jpeg(im: Image.Image, found, deadline: Deadline) -> bytes:
    """An L or RGB JPEG: the upload's own kind of preview (a DCT-scaled decode)."""
    stored_size = im.size
    scale = jpeg_preview.draft_for_preview(im)
    load(im, found, deadline, whole=False)
    return jpeg_preview.encode_preview(
        im,
        stored_size=stored_size,
        scale=scale,
        orientation=orientation.from_image(im),
        icc=im.info.get("icc_profile"),
    )


def _png(im: Image.Image) -> bytes:
    icc = im.info.get("icc_profile") or None
    turn = orientation.from_image(im)
    plain_cmyk = im.format in _JPEG and "adobe" not in im.info
    frame = colour.working_mode(im, plain_cmyk)
    size = jpeg_preview.preview_size(im.size)
    small = frame.resize(size, Image.Resampling.LANCZOS)
    if small.mode == "CMYK":
        small, icc = colour.to_srgb(small, icc), None
    small.info = {}
    exif = Image.Exif()
    if 2 <= turn <= 8:
        exif[ExifTags.Base.Orientation] = turn
    out = io.BytesIO()
    options: dict = {"compress_level": PNG_COMPRESSION}
    if icc:
        options["icc_profile"] = icc
    if exif:
        options["exif"] = exif.tobytes()
    small.save(out, "PNG", **options)
    return out.getvalue()
