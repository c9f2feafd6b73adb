"""JPEG shrink-on-load: libjpeg's DCT scaling, as Pillow's draft() reaches it.

A JPEG decoded at 1/s keeps ceil(side / s) pixels a side; when a side does
not divide, its last pixel is part padding, so the picture spans side / s
pixels of the frame (a fraction), not all of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from PIL import Image

SCALES = (8, 4, 2)


def largest_scale(
    size: tuple[int, int], need: tuple[int, int], scales: Iterable[int] = SCALES
) -> int:
    """The first of ``scales`` (largest first) that leaves ``need`` pixels a side, else 1."""
    for s in scales:
        if all(-(-side // s) >= n for side, n in zip(size, need, strict=True)):
            return s
    return 1


def draft(im: Image.Image, scale: int) -> None:
    """Have an opened, unloaded JPEG decode at exactly 1/``scale``.

    Pillow picks the largest of 8, 4, 2 that fits size // requested: asking
    for size // scale gets exactly ``scale`` (it rounds down where libjpeg
    rounds up, so asking for the pixels needed would settle for less).
    """
    if scale > 1:
        im.draft(im.mode, (im.width // scale, im.height // scale))
