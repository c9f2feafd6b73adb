"""The render pipeline: the steps that make one rendition, in order.

Each step is a module of this package; ``_run`` lists them, and ``_frame``
lists what happens to every decoded frame. Geometry is planned before any
pixel is decoded, so the decode can be as small as the plan allows and the
costly work (colour conversion) runs on the resized frame.
"""

from __future__ import annotations

import os
import time
from typing import BinaryIO

from PIL import Image

from image_repo.imaging import orientation
from image_repo.imaging.limits import DEFAULT_LIMITS, Deadline, DecodeLimits
from image_repo.imaging.render import alpha, attention, colour, frames, observers
from image_repo.imaging.render.encode import encode
from image_repo.imaging.render.params import CONTENT_GRAVITIES, RenderParams, checked
from image_repo.imaging.render.plan import Plan, plan
from image_repo.imaging.render.resize import resize
from image_repo.imaging.render.source import Source, open_image
from image_repo.imaging.streams import seekable
from image_repo.imaging.survey import survey

Src = BinaryIO | str | os.PathLike[str]


def render(
    src: Src,
    params: RenderParams,
    out: BinaryIO,
    *,
    max_pixels: int = frames.MAX_OUTPUT_PIXELS,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> str:
    """Write the rendition of ``src`` to ``out``; return its MIME type.

    ``src`` is a path or a binary stream (a stream that cannot seek is spooled
    to a temp file first). ``params`` are normalised here; validate() them
    with the service's size limits before. Raises RenderError when the
    rendition would exceed ``max_pixels`` (all frames together). A source that
    fails to decode raises Pillow's error: originals are validated on upload,
    so that is a bug or a damaged store, not a client error. ``limits`` bound
    the work (see limits): LimitExceeded when the source passes one before
    decoding, DecodeTimeout when the rendition takes longer than
    ``limits.decode_seconds``.
    """
    mime_type = _run(src, params, out, max_pixels, None, limits)
    assert mime_type is not None  # only a preview can be too small
    return mime_type


def render_preview(
    src: Src,
    full_size: tuple[int, int],
    params: RenderParams,
    out: BinaryIO,
    *,
    max_pixels: int = frames.MAX_OUTPUT_PIXELS,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> str | None:
    """Like render(), from the preview (see ``preview``) of an original of stored size ``full_size``.

    Geometry is planned on the original: same size, same crop as render() of
    the original, pixels within a fraction of a level of it. Returns None,
    writing nothing, when the preview holds fewer pixels than the rendition
    needs: then render the original.
    """
    return _run(src, params, out, max_pixels, full_size, limits)


def _run(
    src: Src,
    params: RenderParams,
    out: BinaryIO,
    max_pixels: int,
    full_size: tuple[int, int] | None,
    limits: DecodeLimits,
) -> str | None:
    """Params, survey, source, plan, frames (each through ``_frame``), alpha, encode."""
    params = checked(params)
    started, deadline = time.perf_counter(), Deadline(limits.decode_seconds)
    with seekable(src) as fp:
        budget = frames.Budget(limits, survey(fp, limits, deadline), deadline, max_pixels)
        with open_image(fp, deadline) as im:
            source = Source.of(im, full_size)
            geometry = plan(source.upright, params)
            if full_size is not None and not source.holds(geometry):
                return None  # a preview too small for this rendition
            decoded = frames.decode(
                im, source, geometry, params.animated, budget, _preparer(_aims(params))
            )
    finished = alpha.finish(decoded.images, params)
    mime_type = encode(finished, decoded.durations, decoded.loop, params, out)
    kind = "original" if full_size is None else "preview"
    observers.notify(observers.Decode(kind, time.perf_counter() - started))
    return mime_type


def _aims(params: RenderParams) -> bool:
    """Whether the crop window is placed by looking at the picture (render.attention)."""
    return (
        params.fit == "cover"
        and params.gravity in CONTENT_GRAVITIES
        and params.focus is None
        and params.crop is None
    )


def _preparer(aims: bool) -> frames.Prepare:
    """``_frame``, with the crop window aimed on the first frame when ``aims`` (every
    frame of an animation then shares that window)."""
    if not aims:
        return _frame
    aimed: list[Plan] = []

    def prepare(im: Image.Image, source: Source, geometry: Plan) -> Image.Image:
        frame = _upright(im, source)
        if not aimed:
            aimed.append(attention.aim(frame, source, geometry))
        return _finish(frame, source, aimed[0])

    return prepare


def _frame(im: Image.Image, source: Source, geometry: Plan) -> Image.Image:
    """One decoded frame -> upright, resized, sRGB, RGB or RGBA."""
    return _finish(_upright(im, source), source, geometry)


def _upright(im: Image.Image, source: Source) -> Image.Image:
    frame = colour.working_mode(im, source.plain_cmyk)
    return orientation.apply(frame, source.transpose)


def _finish(frame: Image.Image, source: Source, geometry: Plan) -> Image.Image:
    frame = resize(frame, source, geometry)
    frame = colour.to_srgb(frame, source.icc)
    frame.info = {}  # nothing of the source's metadata may reach the encoder
    return frame
