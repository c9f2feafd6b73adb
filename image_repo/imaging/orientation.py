"""EXIF orientation: which transpose makes stored pixels upright, and what it does to sizes.

One table for the whole package: probe reports the displayed size with
``upright_size``, hashes and renditions turn pixels with ``transpose_for``,
and the renderer maps crop boxes through the mirrored axes. Keeping them in
one place keeps an upload's reported size, its hashes and its renditions
agreeing about which way is up.
"""

from __future__ import annotations

from PIL import ExifTags, Image

# EXIF orientation -> the transpose that makes the stored pixels upright.
# 1 is upright already; 0 ("undefined", written by several tools) and
# values outside 1..8 display like 1 and so have no entry.
TRANSPOSES: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Transposes that turn the picture a quarter: width and height trade places.
_SWAPPING = frozenset(
    {
        Image.Transpose.TRANSPOSE,
        Image.Transpose.TRANSVERSE,
        Image.Transpose.ROTATE_90,
        Image.Transpose.ROTATE_270,
    }
)

# Transposes after which the stored picture's right (bottom) edge is the
# upright picture's left (top) edge: padding a decoder adds on the right or
# bottom ends up first on that axis (see render.resize).
MIRRORS_X = frozenset(
    {
        Image.Transpose.FLIP_LEFT_RIGHT,
        Image.Transpose.ROTATE_180,
        Image.Transpose.ROTATE_270,
        Image.Transpose.TRANSVERSE,
    }
)
MIRRORS_Y = frozenset(
    {
        Image.Transpose.FLIP_TOP_BOTTOM,
        Image.Transpose.ROTATE_180,
        Image.Transpose.ROTATE_90,
        Image.Transpose.TRANSVERSE,
    }
)


def transpose_for(orientation: int) -> Image.Transpose | None:
    """The transpose that shows pixels stored with ``orientation`` upright (None: none needed)."""
    return TRANSPOSES.get(orientation)


def turned(size: tuple[int, int], transpose: Image.Transpose | None) -> tuple[int, int]:
    """``size`` after ``transpose``; as swapping the sides is its own inverse, also before it."""
    return (size[1], size[0]) if transpose in _SWAPPING else size


def upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """The displayed size of a picture stored at ``size`` with EXIF ``orientation``."""
    return turned(size, transpose_for(orientation))


def apply(im: Image.Image, transpose: Image.Transpose | None) -> Image.Image:
    """``im`` upright (itself when no transpose is needed)."""
    return im if transpose is None else im.transpose(transpose)


def from_image(im: Image.Image) -> int:
    """The orientation the renderer applies: the tag when it equals one of 1..8, else 1.

    Not quite ``exif.orientation_of``, which probe uses: a tag stored as a
    rational or a float equal to 1..8 counts here and not there. Kept as the
    renderer has always read it, since reading it the other way would change
    the pixels of cached renditions of such files.
    """
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # broken EXIF of any kind must not break a thumbnail
        return 1
    return value if value in TRANSPOSES else 1
