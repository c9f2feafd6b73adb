"""Geometry: which part of the upright source becomes which output size.

``plan`` decides crop box and output size from the source's displayed size
and the parameters (fit, gravity, upscale), before any pixel is decoded; the
later steps only carry it out. ``needed`` says how many source pixels the
plan asks for, which picks the DCT scale of a JPEG decode and tells whether
a preview is enough.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from image_repo.imaging import preview
from image_repo.imaging.render.params import GRAVITIES, RenderParams, checked

# JPEG shrink-on-load decodes at 1/2, 1/4 or 1/8 scale but keeps at least
# this many source pixels per output pixel, so LANCZOS still has detail to use.
DRAFT_OVERSAMPLING = 2


@dataclass(frozen=True)
class Plan:
    """Which part of the upright source (in its pixels) becomes which output size."""

    box: tuple[float, float, float, float]
    size: tuple[int, int]


def plan(source: tuple[int, int], params: RenderParams) -> Plan:
    """Output geometry for an upright source of size ``source`` (params normalised)."""
    sw, sh = source
    full = (0.0, 0.0, float(sw), float(sh))
    w, h = params.width, params.height
    if params.fit == "cover" and w and h:
        return _plan_cover(source, w, h, params)
    if params.fit == "fill" and w and h:
        s = 1.0 if params.upscale else min(1.0, sw / w, sh / h)
        return Plan(full, _dims(w * s, h * s))
    # contain (inside is normalised to contain)
    scales = [t / s for t, s in ((w, sw), (h, sh)) if t]
    scale = min(scales, default=1.0)
    if not params.upscale:
        scale = min(scale, 1.0)
    return Plan(full, _dims(sw * scale, sh * scale))


def _plan_cover(source: tuple[int, int], w: int, h: int, params: RenderParams) -> Plan:
    sw, sh = source
    # Largest window of the box's aspect ratio that fits in the source.
    if sw * h > sh * w:
        cw, ch = sh * w / h, float(sh)
    else:
        cw, ch = float(sw), sw * h / w
    gx, gy = GRAVITIES[params.gravity]
    x0, y0 = (sw - cw) * gx, (sh - ch) * gy
    s = 1.0 if params.upscale else min(1.0, cw / w)
    return Plan((x0, y0, x0 + cw, y0 + ch), _dims(w * s, h * s))


def _dims(w: float, h: float) -> tuple[int, int]:
    return max(1, round(w)), max(1, round(h))


def needed(upright: tuple[int, int], geometry: Plan) -> tuple[int, int]:
    """Upright source pixels for DRAFT_OVERSAMPLING x the output's detail."""
    x0, y0, x1, y1 = geometry.box
    tw, th = geometry.size
    return (
        math.ceil(upright[0] * tw / (x1 - x0) * DRAFT_OVERSAMPLING),
        math.ceil(upright[1] * th / (y1 - y0) * DRAFT_OVERSAMPLING),
    )


def covers(have: tuple[int, int], need: tuple[int, int]) -> bool:
    return need[0] <= have[0] and need[1] <= have[1]


def preview_may_serve(full_size: tuple[int, int], params: RenderParams) -> bool:
    """Before any I/O: could the preview of an original of stored size ``full_size`` serve this?

    The orientation is not known here, so both are tried; render_preview()
    decides for sure.
    """
    if max(full_size) < preview.MIN_SOURCE_SIDE:
        return False  # such originals get no preview
    params = checked(params)
    if params.animated:
        return False  # a preview is a still: the first frame only
    have = preview.preview_size(full_size)
    for upright, shown in ((full_size, have), (full_size[::-1], have[::-1])):
        if covers(shown, needed(upright, plan(upright, params))):
            return True
    return False
