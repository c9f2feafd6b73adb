"""Previews: a reduced copy of a large original that small renditions start from.

This module is the JPEG kind, made at upload; every other format gets a PNG
preview in a background job (``render.previews``), on the same sizes.

A thumbnail of a 24 MP JPEG costs one pass of entropy decoding over the
whole file, even with shrink-on-load (DCT scaling), and that pass is over 90%
of the work. Ingest decodes every upload anyway, to validate it; for a large
JPEG it decodes at the DCT scale that still leaves ``PREVIEW_SIDE`` pixels on
the long edge (every coefficient is still entropy-decoded, so validation is
the same), and keeps that picture, reduced to ``PREVIEW_SIDE``, as a
high-quality JPEG beside the original. Renditions whose plan needs no more
source pixels than the preview holds start from it instead of the original
(``render.render_preview``): a few hundred KB to decode instead of megabytes.

The preview keeps the original's orientation, colour mode and ICC profile
(and its EXIF orientation tag, nothing else), so the renderer treats it like
a shrink-on-load decode of the original. Only JPEG (and MPO) in L or RGB get
one here: CMYK JPEGs carry inversion conventions a re-encode would lose, and
other formats have no cheap scaled decode to take it from (both get theirs
in a job: ``render.previews``).
"""

from __future__ import annotations

import io

from PIL import ExifTags, Image

from image_repo.imaging import dct

# Long edge of a preview. With the renderer's 2x oversampling it serves
# renditions up to half this on their long edge: the small, thumb and medium
# presets.
PREVIEW_SIDE = 1024
# Sources smaller than this on their long edge get no preview: decoding them
# costs little more than decoding a preview.
MIN_SOURCE_SIDE = 2 * PREVIEW_SIDE
# High quality without chroma subsampling: renditions are made from these pixels.
PREVIEW_QUALITY = 95
FORMATS = ("JPEG", "MPO")
MODES = ("L", "RGB")


def wants_preview(im: Image.Image) -> bool:
    """Whether this opened (not yet loaded) image gets a preview."""
    return im.format in FORMATS and im.mode in MODES and max(im.size) >= MIN_SOURCE_SIDE


def draft_for_preview(im: Image.Image) -> int:
    """Have libjpeg decode at the smallest DCT scale that keeps PREVIEW_SIDE on the long edge.

    Call before ``load()``; returns the scale (``im.size`` is the scaled size after).
    """
    scale = dct.largest_scale(im.size, preview_size(im.size))
    dct.draft(im, scale)
    return scale


def encode_preview(
    im: Image.Image,
    *,
    stored_size: tuple[int, int],
    scale: int,
    orientation: int,
    icc: bytes | None,
) -> bytes:
    """The preview of a loaded image, decoded at 1/``scale`` of ``stored_size``, as JPEG bytes.

    It covers exactly the original: the padding a scaled decode adds at the
    right and bottom edge (see dct) is left out.
    """
    content = (0.0, 0.0, stored_size[0] / scale, stored_size[1] / scale)
    size = preview_size(stored_size)
    if size == im.size and content == (0.0, 0.0, *im.size):
        small = im.copy()
    else:
        small = im.resize(size, Image.Resampling.LANCZOS, box=content)
    small.info = {}  # the encoder would take a comment (COM), XMP, ... from here
    exif = Image.Exif()
    if 2 <= orientation <= 8:
        exif[ExifTags.Base.Orientation] = orientation
    out = io.BytesIO()
    small.save(
        out,
        "JPEG",
        quality=PREVIEW_QUALITY,
        subsampling=0,
        icc_profile=icc or None,
        exif=exif.tobytes() if exif else b"",
    )
    return out.getvalue()


def preview_size(size: tuple[int, int]) -> tuple[int, int]:
    """The preview's size for an original of (stored) ``size``."""
    width, height = size
    scale = PREVIEW_SIDE / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))
