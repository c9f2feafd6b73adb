"""Resize: carry out the plan on one decoded, upright frame.

The plan's box is in the original's upright pixels; the frame may be a
preview, or a JPEG decoded at a DCT scale, so the box is mapped onto it
first. A DCT-scaled decode pads the stored picture's right and bottom edge
(see ``imaging.dct``): the picture spans opened / scale pixels, and where the
transpose mirrored an axis, the padding now comes first on it.
"""

from __future__ import annotations

import math

from PIL import Image

from image_repo.imaging import orientation
from image_repo.imaging.render.plan import Plan
from image_repo.imaging.render.source import Source

# Box-reduce by an integer factor first while the image is over this many
# times the target: near-LANCZOS quality at a fraction of the cost.
REDUCING_GAP = 3.0


def resize(frame: Image.Image, source: Source, geometry: Plan) -> Image.Image:
    """``frame`` (upright) cropped and scaled as ``geometry`` says; itself when nothing changes."""
    content = [side / source.scale for side in source.opened]
    if frame.size != tuple(math.ceil(side) for side in content):
        content = list(frame.size)  # not the decode planned (never seen; be safe)
    fx, fy = content[0] / source.upright[0], content[1] / source.upright[1]
    dx = frame.width - content[0] if source.transpose in orientation.MIRRORS_X else 0.0
    dy = frame.height - content[1] if source.transpose in orientation.MIRRORS_Y else 0.0
    x0, y0, x1, y1 = geometry.box
    box = (x0 * fx + dx, y0 * fy + dy, x1 * fx + dx, y1 * fy + dy)
    if geometry.size == frame.size and box == (0, 0, frame.width, frame.height):
        return frame
    return frame.resize(geometry.size, Image.Resampling.LANCZOS, box=box, reducing_gap=REDUCING_GAP)
