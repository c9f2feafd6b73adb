"""Encode: the finished frames in the output format, without any metadata.

Nothing of the source reaches the encoder but pixels (the frames' ``info``
is emptied earlier): no EXIF (GPS!), XMP, ICC, comments or text chunks.
Several frames make an animation, with their durations and the loop count
(AVIF always loops).
"""

from __future__ import annotations

from typing import BinaryIO

from PIL import Image

from image_repo.imaging.formats import OUTPUT_FORMATS
from image_repo.imaging.render.params import RenderParams

# libavif speed 0 (slowest, smallest) .. 10; 7 keeps thumbnails well under a second.
AVIF_SPEED = 7
WEBP_METHOD = 4


def encode(
    frames: list[Image.Image], durations: list[int], loop: int, params: RenderParams, out: BinaryIO
) -> str:
    """Write ``frames`` to ``out``; return the output's MIME type."""
    fmt = OUTPUT_FORMATS[params.format]
    options = _encoder_options(params)
    first = frames[0]
    if len(frames) > 1:
        options |= {
            "save_all": True,
            "append_images": frames[1:],
            "duration": durations,
            "loop": loop,
        }
    first.save(out, format=fmt.name, **options)
    return fmt.mime_type


def _encoder_options(params: RenderParams) -> dict[str, object]:
    if params.format == "jpeg":
        return {"quality": params.quality, "optimize": True}
    if params.format == "webp":
        return {"quality": params.quality, "method": WEBP_METHOD}
    if params.format == "avif":
        return {"quality": params.quality, "speed": AVIF_SPEED}
    return {}
