"""The source: opening it, what its frames share, and decoding no more pixels than needed.

A source is an original or its preview: a reduced copy of a large original,
a JPEG kept at upload for an L or RGB JPEG (``imaging.preview``), a PNG
made in a job for every other format (``render.previews``). Either keeps
the original's orientation and ICC profile and is in the working mode the
colour step would bring the original to (a CMYK one already in sRGB), so it
is opened like any source and treated like a shrink-on-load decode of the
original: only its size differs (``Source.of(im, full_size)``). Geometry is always planned on the original's upright size;
``Source.opened`` and ``Source.scale`` say how the pixels actually decoded
relate to it, for the resize step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image

from image_repo.imaging import dct, orientation
from image_repo.imaging.formats import OPENABLE_FORMATS
from image_repo.imaging.limits import Deadline, DeadlineReader
from image_repo.imaging.render.plan import Plan, covers, needed

_JPEG = ("JPEG", "MPO")


def open_image(fp: BinaryIO, deadline: Deadline) -> Image.Image:
    """Open (not decode) ``fp``, reading it within ``deadline``.

    Only the formats the service accepts, even though originals were
    validated at upload: the store is not trusted to hold only those.
    """
    return Image.open(DeadlineReader(fp, deadline), formats=OPENABLE_FORMATS)


@dataclass
class Source:
    """What every frame of one opened source shares: orientation, sizes, colour."""

    transpose: Image.Transpose | None
    # The original's upright size: what the geometry is planned on.
    upright: tuple[int, int]
    # The opened picture's own upright size (a preview's is smaller) ...
    opened: tuple[int, int]
    icc: bytes | None
    # Pillow un-inverts every CMYK JPEG; only Adobe's (APP14) are inverted.
    plain_cmyk: bool
    # ... and the DCT scale it is decoded at (see shrink_on_load).
    scale: int = 1

    @classmethod
    def of(cls, im: Image.Image, full_size: tuple[int, int] | None = None) -> Source:
        """``im`` opened, not decoded; ``full_size``: it is a preview of an original of that stored size."""
        transpose = orientation.transpose_for(orientation.from_image(im))
        return cls(
            transpose=transpose,
            upright=orientation.turned(full_size or im.size, transpose),
            opened=orientation.turned(im.size, transpose),
            icc=im.info.get("icc_profile") or None,
            plain_cmyk=im.format in _JPEG and "adobe" not in im.info,
        )

    def holds(self, geometry: Plan) -> bool:
        """Whether the opened picture (a preview, say) holds the pixels ``geometry`` needs."""
        return covers(self.opened, needed(self.upright, geometry))

    def shrink_on_load(self, im: Image.Image, geometry: Plan) -> None:
        """JPEG only: let libjpeg decode at 1/2..1/8 scale (DCT scaling).

        Asks for DRAFT_OVERSAMPLING x the needed resolution so the final
        LANCZOS pass still has detail to work with.
        """
        if im.format not in _JPEG:
            return
        stored_need = orientation.turned(needed(self.upright, geometry), self.transpose)
        self.scale = dct.largest_scale(im.size, stored_need)
        dct.draft(im, self.scale)
