"""Renditions: resized, cropped or re-encoded copies of stored originals.

``validate`` turns request parameters into a canonical ``RenderParams`` (its
``digest`` names the cached rendition); ``render`` decodes an original once
and writes the rendition; ``render_preview`` does it from the original's
preview when that holds enough pixels. No Flask here.

What every rendition is, whatever the source:

- **Upright.** The EXIF orientation tag (JPEG, PNG, WebP, TIFF, ...) is
  applied, so all eight orientations of one photo render alike.
- **sRGB, 8 bits**, with no ICC profile (see ``colour``).
- **Without metadata.** No EXIF (GPS!), XMP, ICC, comments or text chunks.
- **Transparent where it can be** (see ``alpha``).
- **A still picture unless asked**: ``animated=True`` keeps an animation's
  frames in webp, png (APNG) and avif; jpeg cannot animate (see ``frames``).

The work is a pipeline of named steps, one module each, run in order by
``pipeline``: ``params`` (checks, canonical form), ``source`` (opening,
orientation, shrink-on-load), ``plan`` (geometry), ``frames`` (decoding
within the budget), and per frame ``colour``, ``resize`` and ``colour``
again, then ``alpha`` and ``encode``. ``observers`` hears of each rendition
made.
"""

from image_repo.imaging.render.frames import MAX_OUTPUT_PIXELS
from image_repo.imaging.render.observers import Decode, add_observer, observing, remove_observer
from image_repo.imaging.render.params import (
    CONTENT_GRAVITIES,
    FITS,
    GRAVITIES,
    GRAVITY_NAMES,
    RENDER_VERSION,
    RenderError,
    RenderParams,
    validate,
)
from image_repo.imaging.render.pipeline import render, render_preview
from image_repo.imaging.render.plan import Plan, plan, preview_may_serve

__all__ = [
    "CONTENT_GRAVITIES",
    "FITS",
    "GRAVITIES",
    "GRAVITY_NAMES",
    "MAX_OUTPUT_PIXELS",
    "RENDER_VERSION",
    "Decode",
    "Plan",
    "RenderError",
    "RenderParams",
    "add_observer",
    "observing",
    "plan",
    "preview_may_serve",
    "remove_observer",
    "render",
    "render_preview",
    "validate",
]
