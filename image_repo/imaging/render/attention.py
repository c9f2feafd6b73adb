"""Attention: where a cover crop goes for ``gravity=smart`` (and ``face`` without faces).

In the spirit of libvips' ``interesting=attention``: a small copy of the
whole upright frame is scored per pixel for what draws the eye (edges,
colour saturation and skin tones), and the crop window goes where the score
it holds is highest, with a slight pull towards the centre so that a flat
picture still crops in the middle. The frame is the one the rendition
decodes anyway, so this costs a reduce to ``SIDE`` pixels and a few numpy
passes, no second decode. The window keeps the plan's size, so the decode
scale the plan chose stays right.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from image_repo.imaging import orientation
from image_repo.imaging.render.plan import Plan
from image_repo.imaging.render.source import Source

# Long edge of the copy that is scored.
SIDE = 160
# Weights of the three cues, each scaled to 0..1 first.
EDGES, SATURATION, SKIN = 1.0, 0.6, 1.2
# How much a window loses per unit of distance from the centre (0: none).
CENTRE_PULL = 0.1


def _content(frame: Image.Image, source: Source) -> Image.Image:
    """The part of the frame that is picture (a DCT-scaled decode pads right and bottom)."""
    content = [side / source.scale for side in source.opened]
    if frame.size != tuple(math.ceil(side) for side in content):
        return frame
    dx = frame.width - content[0] if source.transpose in orientation.MIRRORS_X else 0.0
    dy = frame.height - content[1] if source.transpose in orientation.MIRRORS_Y else 0.0
    return frame.crop((round(dx), round(dy), round(dx + content[0]), round(dy + content[1])))


def saliency(picture: Image.Image) -> np.ndarray:
    """A per-pixel interest score of an RGB picture (float, 0 and up)."""
    rgb = np.asarray(picture.convert("RGB"), np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    gy, gx = np.gradient(luma)
    edges = np.hypot(gx, gy)
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    saturation = np.where(high > 0.05, (high - low) / np.maximum(high, 1e-6), 0.0)
    # Skin in YCbCr (the usual Chai-Ngan box), on pixels neither too dark nor blown out.
    cb = 0.5 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 + 0.5 * r - 0.418688 * g - 0.081312 * b
    skin = (
        ((cb > 77 / 255) & (cb < 127 / 255) & (cr > 133 / 255) & (cr < 173 / 255))
        & (luma > 0.15)
        & (luma < 0.95)
    )
    score = EDGES * _unit(edges) + SATURATION * _unit(saturation) + SKIN * skin.astype(np.float32)
    return score


def _unit(values: np.ndarray) -> np.ndarray:
    top = float(np.percentile(values, 99))
    return np.clip(values / top, 0.0, 1.0) if top > 0 else np.zeros_like(values)


def best_window(score: np.ndarray, window: tuple[int, int]) -> tuple[int, int]:
    """Top-left (x, y) of the ``window`` (w, h) of ``score`` holding most of it."""
    h, w = score.shape
    ww, wh = min(max(1, window[0]), w), min(max(1, window[1]), h)
    total = np.zeros((h + 1, w + 1))
    total[1:, 1:] = score.cumsum(0).cumsum(1)
    sums = total[wh:, ww:] - total[:-wh, ww:] - total[wh:, :-ww] + total[:-wh, :-ww]
    ny, nx = sums.shape
    ys = np.abs(np.arange(ny) - (ny - 1) / 2) / max(1, h)
    xs = np.abs(np.arange(nx) - (nx - 1) / 2) / max(1, w)
    pull = 1.0 - CENTRE_PULL * np.hypot(ys[:, None], xs[None, :])
    best = np.unravel_index(int(np.argmax(sums * pull)), sums.shape)
    return int(best[1]), int(best[0])


def aim(frame: Image.Image, source: Source, geometry: Plan) -> Plan:
    """``geometry`` with its crop window moved to the most interesting part of ``frame``
    (decoded, upright, not yet resized)."""
    x0, y0, x1, y1 = geometry.box
    sw, sh = source.upright
    cw, ch = x1 - x0, y1 - y0
    if cw >= sw - 0.5 and ch >= sh - 0.5:
        return geometry  # nothing is cropped: nowhere to move
    picture = _content(frame, source)
    small = picture.copy()
    small.thumbnail((SIDE, SIDE), Image.Resampling.BOX, reducing_gap=None)
    score = saliency(small)
    fx, fy = small.width / sw, small.height / sh
    bx, by = best_window(score, (round(cw * fx), round(ch * fy)))
    nx0 = min(max(0.0, bx / fx), sw - cw)
    ny0 = min(max(0.0, by / fy), sh - ch)
    # Only the free axis moves (the other spans the whole picture anyway).
    if cw >= sw - 0.5:
        nx0 = x0
    if ch >= sh - 0.5:
        ny0 = y0
    return Plan((nx0, ny0, nx0 + cw, ny0 + ch), geometry.size)
