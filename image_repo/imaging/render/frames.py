"""Frames: decoding what a rendition needs within its budget, one frame or a whole animation.

By default a rendition is the first frame. With ``animated=True`` and an
animated source (GIF, WebP, APNG or AVIF sequence; never MPO or TIFF pages,
which are not animations) every frame is kept with its duration and the
loop count. If a later frame cannot be decoded, the rendition falls back to
the first frame: the picture is still worth showing.

Before any pixel is decoded the budget is checked: frames against the
decode limits, the output against ``max_pixels`` (all frames together: a
guard against upscaling along one side of a very thin image, or long
animations), the decoded pixels against the limits. A still JPEG is decoded
at the DCT scale the plan allows; every frame of an animation is decoded
whole, at the canvas size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image, ImageSequence

from image_repo.imaging import loading
from image_repo.imaging.limits import Deadline, DecodeLimits
from image_repo.imaging.render.params import RenderError
from image_repo.imaging.render.plan import Plan
from image_repo.imaging.render.source import Source
from image_repo.imaging.survey import Survey, check_decoded_pixels, check_frames

log = logging.getLogger(__name__)

# Upper bound on pixels one rendition may hold, all frames together.
MAX_OUTPUT_PIXELS = 50_000_000

_ANIMATED_SOURCES = frozenset({"GIF", "WEBP", "PNG", "AVIF"})

# One decoded Pillow frame -> the rendition's frame (see pipeline).
Prepare = Callable[[Image.Image, Source, Plan], Image.Image]


@dataclass(frozen=True)
class Budget:
    """What one rendition may cost: the limits, what the survey found, the deadline, its size."""

    limits: DecodeLimits
    survey: Survey
    deadline: Deadline
    max_pixels: int = MAX_OUTPUT_PIXELS


@dataclass(frozen=True)
class Frames:
    """The prepared frames; durations (ms) and loop count matter only when there are several."""

    images: list[Image.Image]
    durations: list[int] = field(default_factory=list)
    loop: int = 0


def decode(
    im: Image.Image,
    source: Source,
    geometry: Plan,
    animated: bool,
    budget: Budget,
    prepare: Prepare,
) -> Frames:
    """Decode what the rendition needs of ``im`` and ``prepare`` each frame; raise past the budget."""
    animate = animated and _is_animation(im)
    n = im.n_frames if animate else 1  # bounded by the survey where counting walks the file
    check_frames(n, budget.limits)
    w, h = geometry.size
    if w * h * n > budget.max_pixels:
        what = f"{n} frames of {w}x{h}" if n > 1 else f"{w}x{h}"
        message = f"the rendition ({what}) would exceed {budget.max_pixels} pixels: ask for less"
        raise RenderError({"size": [message]})
    check_decoded_pixels(im.size, budget.limits, n)
    if not animate:
        source.shrink_on_load(im, geometry)
        loading.load(im, budget.survey, budget.deadline, whole=False)
        return Frames([prepare(im, source, geometry)])
    loop = im.info.get("loop", 1)  # absent: a GIF without loop extension plays once
    try:
        frames, durations = [], []
        for frame in ImageSequence.Iterator(im):
            budget.deadline.check()  # WebP and AVIF decode a frame in one call
            frames.append(prepare(frame, source, geometry))
            durations.append(round(frame.info.get("duration") or 0))
    except (OSError, EOFError, Image.DecompressionBombError) as exc:
        log.warning("animation cannot be decoded (%s); rendering its first frame", exc)
        im.seek(0)
        return Frames([prepare(im, source, geometry)])
    return Frames(frames, durations, loop)


def _is_animation(im: Image.Image) -> bool:
    # MPO (stereo pairs) and multi-page TIFF have frames but are not animations.
    return im.format in _ANIMATED_SOURCES and getattr(im, "is_animated", False)
