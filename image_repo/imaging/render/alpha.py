"""Alpha: keep transparency where the output format has it and it is used.

png, webp and avif keep alpha; jpeg is flattened onto the ``background``
parameter. An alpha channel that is fully opaque is dropped: it would cost
bytes and tell a browser nothing. Decided over all frames at once, so an
animation's frames share one mode.
"""

from __future__ import annotations

from PIL import Image

from image_repo.imaging.render.params import ALPHA_FORMATS, RenderParams


def finish(frames: list[Image.Image], params: RenderParams) -> list[Image.Image]:
    """RGBA frames where alpha is used and ``params.format`` has it; else RGB, flattened."""
    has_alpha = any(f.mode == "RGBA" and f.getchannel("A").getextrema()[0] < 255 for f in frames)
    if has_alpha and params.format in ALPHA_FORMATS:
        return [f if f.mode == "RGBA" else f.convert("RGBA") for f in frames]
    if has_alpha:
        return [_flatten(f, params.background) for f in frames]
    return [f.convert("RGB") if f.mode != "RGB" else f for f in frames]


def _flatten(im: Image.Image, background: str) -> Image.Image:
    if im.mode != "RGBA":
        return im
    flat = Image.new("RGB", im.size, background)
    flat.paste(im, mask=im.getchannel("A"))
    return flat
