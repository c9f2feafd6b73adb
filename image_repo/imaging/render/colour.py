"""Colour: every decoded frame to 8-bit sRGB, whatever its mode and profile.

First (before orientation and resize) a frame is brought to a mode that
resizes correctly and that LittleCMS can convert: 8-bit L, LA, RGB, RGBA or
CMYK. Last (after the resize, on far fewer pixels) it is converted to sRGB
through its embedded ICC profile, with perceptual intent.

- CMYK JPEGs: Pillow always decodes them as Adobe-style inverted CMYK;
  files without Adobe's APP14 marker store plain CMYK and are inverted back
  (the libjpeg/libvips/ImageMagick convention). CMYK without a profile uses
  Pillow's plain conversion.
- Lab and 16-bit sources become 8-bit RGB (16-bit scaled, not clipped).
- The output carries no ICC profile: untagged means sRGB on the web, and a
  profile would add 0.5-3 KB to every thumbnail.
"""

from __future__ import annotations

import functools
import io
import logging

from PIL import Image, ImageChops, ImageCms

log = logging.getLogger(__name__)


def working_mode(im: Image.Image, plain_cmyk: bool) -> Image.Image:
    """8-bit L, LA, RGB, RGBA or CMYK: modes that resize well and ICC can convert.

    ``plain_cmyk``: the source stores CMYK uninverted (see the module docstring).
    """
    frame = _working_mode(im)
    if frame.mode == "CMYK" and plain_cmyk:
        frame = ImageChops.invert(frame)
    return frame


def _working_mode(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return im
    if mode.startswith("I;16"):
        return _scale_to_l(im.convert("I"), 65535)
    if mode in ("I", "F"):
        # Bit depth is not recorded: values above 255 are taken as 16-bit.
        high = im.getextrema()[1]
        full = 1.0 if mode == "F" and high <= 1.0 else (255 if high <= 255 else 65535)
        return _scale_to_l(im, full)
    if mode == "LAB":
        # a/b are signed: resampling them as bytes would be wrong, convert first.
        return ImageCms.applyTransform(im, _transform(None, "LAB"))  # type: ignore[return-value]
    if mode == "1":
        return im.convert("L")
    if mode in ("La", "PA") or (mode == "P" and im.has_transparency_data):
        return im.convert("LA" if mode == "La" else "RGBA")
    if mode == "RGBa":
        return im.convert("RGBA")
    return im.convert("RGBA" if im.has_transparency_data else "RGB")


def _scale_to_l(im: Image.Image, full_scale: float) -> Image.Image:
    # Plain convert("L") clips 16-bit values at 255: a white image. Scale instead.
    factor = 255 / full_scale
    return im.point(lambda v: v * factor).convert("L")


def to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """RGB or RGBA in sRGB: through the embedded ICC profile when there is one."""
    alpha = im.getchannel("A") if im.mode in ("LA", "RGBA") else None
    colour = im.convert({"LA": "L", "RGBA": "RGB"}[im.mode]) if alpha else im
    converted = _apply_icc(colour, icc) if icc else None
    rgb = converted or colour.convert("RGB")
    if alpha is not None:
        rgb.putalpha(alpha)
    return rgb


def _apply_icc(im: Image.Image, icc: bytes) -> Image.Image | None:
    try:
        return ImageCms.applyTransform(im, _transform(icc, im.mode))  # type: ignore[return-value]
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        # A profile that does not match the pixels (or is broken): the pixels
        # are still worth showing, uncorrected.
        log.warning("ignoring unusable ICC profile: %s", exc)
        return None


@functools.lru_cache(maxsize=32)
def _transform(icc: bytes | None, mode: str) -> ImageCms.ImageCmsTransform:
    """A transform to sRGB from ``icc`` (None: the Lab colour space) for ``mode``.

    Cached: building one from a large LUT profile takes ~100 ms, and photos
    from one camera share their profile. NOCACHE keeps a shared transform free
    of per-call state, so threads may use it at once.
    """
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc)) if icc else ImageCms.createProfile("LAB")
    return ImageCms.buildTransform(
        source,
        ImageCms.createProfile("sRGB"),
        mode,
        "RGB",
        renderingIntent=ImageCms.Intent.PERCEPTUAL,
        flags=ImageCms.Flags.NOCACHE,
    )
