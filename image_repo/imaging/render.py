"""Renditions: resized, cropped or re-encoded copies of stored originals.

``validate`` turns request parameters into a canonical ``RenderParams`` (its
``digest`` names the cached rendition); ``render`` decodes an original once
and writes the rendition. No Flask here.

What every rendition is, whatever the source:

- **Upright.** The EXIF orientation tag (JPEG, PNG, WebP, TIFF, ...) is
  applied, so all eight orientations of one photo render alike.
- **sRGB, 8 bits.** An embedded ICC profile is converted to sRGB with
  LittleCMS (perceptual intent). CMYK JPEGs: Pillow always decodes them as
  Adobe-style inverted CMYK; files without Adobe's APP14 marker store plain
  CMYK and are inverted back (the libjpeg/libvips/ImageMagick convention).
  CMYK without a profile uses Pillow's plain conversion. Lab and 16-bit
  sources become 8-bit RGB (16-bit scaled, not clipped). The output carries
  **no ICC profile**: untagged means sRGB on the web, and a profile would add
  0.5-3 KB to every thumbnail.
- **Without metadata.** No EXIF (GPS!), XMP, ICC, comments or text chunks.
- **Transparent where it can be.** png, webp and avif keep alpha; jpeg is
  flattened onto ``background``. An alpha channel that is fully opaque is
  dropped.

Animation: by default a rendition is the first frame. With ``animated=True``
and an animated source (GIF, WebP, APNG or AVIF sequence; never MPO or TIFF
pages, which are not animations) webp, png (APNG) and avif keep every frame
with its duration (and the loop count for webp and png; AVIF always loops).
jpeg cannot animate: ``animated`` is ignored there (and normalised away). If
a later frame cannot be decoded, the rendition falls back to the first frame.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass, replace
from typing import BinaryIO

from PIL import ExifTags, Image, ImageChops, ImageCms, ImageSequence

from image_repo.imaging import dct, loading, preview
from image_repo.imaging.formats import OUTPUT_FORMATS, PILLOW_FORMATS
from image_repo.imaging.limits import DEFAULT_LIMITS, Deadline, DeadlineReader, DecodeLimits
from image_repo.imaging.survey import Survey, check_decoded_pixels, check_frames, survey

log = logging.getLogger(__name__)

# Bump when a change makes renditions look different: it changes every digest,
# so cached renditions made by older code are not served again.
# 2: shrink-on-load maps the crop box onto the padded DCT-scaled frame exactly.
RENDER_VERSION = 2

FITS = ("contain", "cover", "fill", "inside")
# Where the crop window sits for fit=cover: fractions of the spare width/height.
GRAVITIES: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5),
    "north": (0.5, 0.0),
    "south": (0.5, 1.0),
    "east": (1.0, 0.5),
    "west": (0.0, 0.5),
    "northeast": (1.0, 0.0),
    "northwest": (0.0, 0.0),
    "southeast": (1.0, 1.0),
    "southwest": (0.0, 1.0),
}
_ALIASES = {"jpg": "jpeg", "centre": "center"}
ALPHA_FORMATS = frozenset({"png", "webp", "avif"})
ANIMATED_FORMATS = frozenset({"png", "webp", "avif"})
_ANIMATED_SOURCES = frozenset({"GIF", "WEBP", "PNG", "AVIF"})

# JPEG shrink-on-load decodes at 1/2, 1/4 or 1/8 scale but keeps at least
# this many source pixels per output pixel, so LANCZOS still has detail to use.
DRAFT_OVERSAMPLING = 2
# Box-reduce by an integer factor first while the image is over this many
# times the target: near-LANCZOS quality at a fraction of the cost.
REDUCING_GAP = 3.0
# libavif speed 0 (slowest, smallest) .. 10; 7 keeps thumbnails well under a second.
AVIF_SPEED = 7
WEBP_METHOD = 4
# Upper bound on pixels one rendition may hold, all frames together: a guard
# against upscaling along one side of a very thin image, or long animations.
MAX_OUTPUT_PIXELS = 50_000_000
# Non-seekable sources are spooled to a temp file; this much stays in memory.
_SPOOL_IN_MEMORY = 16 * 1024 * 1024

_HEX_COLOUR = re.compile(r"#?([0-9a-f]{3}|[0-9a-f]{6})")


class RenderError(ValueError):
    """Parameters (or their combination with the source) that cannot be rendered.

    ``errors`` maps each offending parameter to its messages, for a 422 body.
    """

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {m}" for k, ms in errors.items() for m in ms))


@dataclass(frozen=True)
class RenderParams:
    """What to make of an original.

    Sizes are of the *displayed* (upright) image. ``fit`` decides how the
    source meets the ``width`` x ``height`` box:

    - ``contain``: scale to fit inside the box, keeping the aspect ratio. One
      side may be omitted (the other follows the aspect ratio); with neither,
      the image keeps its size (a format conversion).
    - ``inside``: ``contain`` that never upscales, even with ``upscale=True``
      (normalises to ``contain`` + ``upscale=False``).
    - ``cover``: fill the whole box, keeping the aspect ratio, cropping what
      overflows; ``gravity`` says which part survives. Needs both sides.
    - ``fill``: stretch to exactly ``width`` x ``height``, ignoring the aspect
      ratio. Needs both sides.

    Without ``upscale`` nothing ever gets bigger than the source: ``contain``
    stops at the source size; ``cover`` and ``fill`` shrink the whole box
    (keeping its aspect ratio) until it fits the source, so a 100x50 image
    asked to cover 200x200 comes out 50x50.

    ``gravity`` (cover only): center, north, south, east, west, northeast,
    northwest, southeast, southwest. ``format``: jpeg, png, webp, avif ("jpg"
    is an alias). ``quality`` 1..100 (jpeg, webp, avif; png is lossless).
    ``background``: "#rrggbb" or "#rgb" ("#" optional), what transparent
    pixels become in jpeg. ``animated``: see the module docstring.
    """

    width: int | None = None
    height: int | None = None
    fit: str = "contain"
    gravity: str = "center"
    format: str = "jpeg"
    quality: int = 82
    upscale: bool = False
    background: str = "#ffffff"
    animated: bool = False

    def normalised(self) -> RenderParams:
        """Canonical form: equal renditions get equal params (and digests).

        Strings are lower-cased and aliases resolved; parameters that cannot
        change the output are reset to their defaults (gravity unless cover,
        background for formats with alpha, quality for png, animated for jpeg,
        upscale when there is nothing to scale to).
        """
        p = replace(
            self,
            fit=_canonical(self.fit),
            gravity=_canonical(self.gravity),
            format=_canonical(self.format),
            background=_canonical_colour(self.background),
        )
        default = RenderParams()
        if p.fit == "inside":
            p = replace(p, fit="contain", upscale=False)
        if p.fit != "cover":
            p = replace(p, gravity=default.gravity)
        if p.format in ALPHA_FORMATS:
            p = replace(p, background=default.background)
        if p.format == "png":
            p = replace(p, quality=default.quality)
        if p.format not in ANIMATED_FORMATS:
            p = replace(p, animated=False)
        if p.width is None and p.height is None:
            p = replace(p, upscale=False)
        return p

    def digest(self) -> str:
        """16 hex digits naming the normalised params (and the renderer version)."""
        fields = asdict(self.normalised()) | {"v": RENDER_VERSION}
        blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _canonical(value: object) -> object:
    if not isinstance(value, str):
        return value  # left for validate() to report
    value = value.strip().lower()
    return _ALIASES.get(value, value)


def _canonical_colour(value: object) -> object:
    if isinstance(value, str) and (m := _HEX_COLOUR.fullmatch(value.strip().lower())):
        digits = m[1] if len(m[1]) == 6 else "".join(c * 2 for c in m[1])
        return "#" + digits
    return value


# -- validation -----------------------------------------------------------------


def validate(params: RenderParams, *, max_width: int, max_height: int) -> RenderParams:
    """Check every parameter; return the normalised params or raise RenderError."""
    return _checked(params, max_width, max_height)


def _checked(params: RenderParams, max_width: int | None, max_height: int | None) -> RenderParams:
    p = replace(
        params,
        fit=_canonical(params.fit),
        gravity=_canonical(params.gravity),
        format=_canonical(params.format),
    )
    errors: dict[str, list[str]] = {}

    def bad(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    for field, value, limit in (("width", p.width, max_width), ("height", p.height, max_height)):
        if value is not None and not _int_in(value, 1, limit):
            bad(field, f"must be an integer from 1 to {limit}" if limit else "must be >= 1")
    if p.fit not in FITS:
        bad("fit", f"must be one of {', '.join(FITS)}")
    elif p.fit in ("cover", "fill"):
        for field in ("width", "height"):
            if getattr(p, field) is None:
                bad(field, f"is required with fit={p.fit}")
    if p.gravity not in GRAVITIES:
        bad("gravity", f"must be one of {', '.join(GRAVITIES)}")
    if p.format not in OUTPUT_FORMATS:
        bad("format", f"must be one of {', '.join(OUTPUT_FORMATS)}")
    if not _int_in(p.quality, 1, 100):
        bad("quality", "must be an integer from 1 to 100")
    for field in ("upscale", "animated"):
        if not isinstance(getattr(p, field), bool):
            bad(field, "must be true or false")
    if not isinstance(p.background, str) or not _HEX_COLOUR.fullmatch(p.background.strip().lower()):
        bad("background", 'must be a hex colour like "#ffffff" or "#fff"')
    if errors:
        raise RenderError(errors)
    return p.normalised()


def _int_in(value: object, low: int, high: int | None) -> bool:
    # bool is an int in Python; "width=true" is still not a width.
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    return low <= value and (high is None or value <= high)


# -- decode counting ------------------------------------------------------------

_decodes = {"original": 0, "preview": 0}
_decodes_lock = threading.Lock()


def decode_counter(kind: str | None = None) -> int:
    """Sources decoded for renditions in this process: "original", "preview", or both (tests)."""
    return _decodes[kind] if kind else sum(_decodes.values())


def _count_decode(kind: str) -> None:
    with _decodes_lock:
        _decodes[kind] += 1


# -- geometry -------------------------------------------------------------------


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


# -- rendering ------------------------------------------------------------------

# EXIF orientation -> the transpose that makes the stored pixels upright.
_TRANSPOSE: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def render(
    src: BinaryIO | str | os.PathLike[str],
    params: RenderParams,
    out: BinaryIO,
    *,
    max_pixels: int = MAX_OUTPUT_PIXELS,
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
    mime_type = _render(src, params, out, max_pixels, None, limits)
    assert mime_type is not None  # only a preview can be too small
    return mime_type


def render_preview(
    src: BinaryIO | str | os.PathLike[str],
    full_size: tuple[int, int],
    params: RenderParams,
    out: BinaryIO,
    *,
    max_pixels: int = MAX_OUTPUT_PIXELS,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> str | None:
    """Like render(), from the preview (see ``preview``) of an original of stored size ``full_size``.

    Geometry is planned on the original: same size, same crop as render() of
    the original, pixels within a fraction of a level of it. Returns None,
    writing nothing, when the preview holds fewer pixels than the rendition
    needs: then render the original.
    """
    return _render(src, params, out, max_pixels, full_size, limits)


def _render(
    src: BinaryIO | str | os.PathLike[str],
    params: RenderParams,
    out: BinaryIO,
    max_pixels: int,
    full_size: tuple[int, int] | None,
    limits: DecodeLimits,
) -> str | None:
    params = _checked(params, None, None)
    deadline = Deadline(limits.decode_seconds)
    with _seekable(src) as fp:
        found = survey(fp, limits, deadline)
        with _open(DeadlineReader(fp, deadline)) as im:
            source = _Source(im, params, full_size)
            if full_size is not None and not source.has_needed_pixels():
                return None
            _count_decode("original" if full_size is None else "preview")
            frames, durations, loop = _render_frames(
                im, source, params, max_pixels, _Budget(limits, found, deadline)
            )
    _encode(frames, durations, loop, params, out)
    return OUTPUT_FORMATS[params.format].mime_type


class _Source:
    """What every frame of one source shares: orientation, geometry, colour."""

    def __init__(
        self, im: Image.Image, params: RenderParams, full_size: tuple[int, int] | None = None
    ) -> None:
        # full_size: im is a preview of an original of that stored size.
        self.transpose = _TRANSPOSE.get(_orientation(im))
        self.upright = _upright(full_size or im.size, self.transpose)
        # The opened picture's own upright size, and the DCT scale it is decoded at.
        self.opened = _upright(im.size, self.transpose)
        self.scale = 1
        self.plan = plan(self.upright, params)
        self.icc = im.info.get("icc_profile") or None
        # Pillow un-inverts every CMYK JPEG; only Adobe's (APP14) are inverted.
        self.plain_cmyk = im.format in ("JPEG", "MPO") and "adobe" not in im.info

    def shrink_on_load(self, im: Image.Image) -> None:
        """JPEG only: let libjpeg decode at 1/2..1/8 scale (DCT scaling).

        Asks for DRAFT_OVERSAMPLING x the needed resolution so the final
        LANCZOS pass still has detail to work with.
        """
        if im.format not in ("JPEG", "MPO"):
            return
        self.scale = dct.largest_scale(im.size, _stored(self._needed(), self.transpose))
        dct.draft(im, self.scale)

    def has_needed_pixels(self) -> bool:
        """Whether the opened picture (a preview, say) holds the pixels the rendition needs."""
        return _covers(self.opened, self._needed())

    def _needed(self) -> tuple[int, int]:
        return _needed(self.upright, self.plan)

    def frame(self, im: Image.Image) -> Image.Image:
        """One decoded frame -> upright, resized, sRGB, RGB or RGBA."""
        frame = _working_mode(im)
        if frame.mode == "CMYK" and self.plain_cmyk:
            frame = ImageChops.invert(frame)
        if self.transpose is not None:
            frame = frame.transpose(self.transpose)
        frame = self._resize(frame)
        frame = _to_srgb(frame, self.icc)
        frame.info = {}  # nothing of the source's metadata may reach the encoder
        return frame

    def _resize(self, frame: Image.Image) -> Image.Image:
        # The plan's box is in the original's pixels; map it onto this frame.
        # A DCT-scaled decode pads the stored picture's right and bottom edge
        # (see dct): the picture spans opened / scale pixels, and where the
        # transpose mirrored an axis, the padding now comes first on it.
        content = [side / self.scale for side in self.opened]
        if frame.size != tuple(math.ceil(side) for side in content):
            content = list(frame.size)  # not the decode planned (never seen; be safe)
        fx, fy = content[0] / self.upright[0], content[1] / self.upright[1]
        dx = frame.width - content[0] if self.transpose in _MIRRORS_X else 0.0
        dy = frame.height - content[1] if self.transpose in _MIRRORS_Y else 0.0
        x0, y0, x1, y1 = self.plan.box
        box = (x0 * fx + dx, y0 * fy + dy, x1 * fx + dx, y1 * fy + dy)
        if self.plan.size == frame.size and box == (0, 0, frame.width, frame.height):
            return frame
        return frame.resize(
            self.plan.size, Image.Resampling.LANCZOS, box=box, reducing_gap=REDUCING_GAP
        )


def _needed(upright: tuple[int, int], geometry: Plan) -> tuple[int, int]:
    """Upright source pixels for DRAFT_OVERSAMPLING x the output's detail."""
    x0, y0, x1, y1 = geometry.box
    tw, th = geometry.size
    return (
        math.ceil(upright[0] * tw / (x1 - x0) * DRAFT_OVERSAMPLING),
        math.ceil(upright[1] * th / (y1 - y0) * DRAFT_OVERSAMPLING),
    )


def _covers(have: tuple[int, int], need: tuple[int, int]) -> bool:
    return need[0] <= have[0] and need[1] <= have[1]


def preview_may_serve(full_size: tuple[int, int], params: RenderParams) -> bool:
    """Before any I/O: could the preview of an original of stored size ``full_size`` serve this?

    The orientation is not known here, so both are tried; render_preview()
    decides for sure.
    """
    if max(full_size) < preview.MIN_SOURCE_SIDE:
        return False  # such originals get no preview
    params = _checked(params, None, None)
    have = preview.preview_size(full_size)
    for upright, shown in ((full_size, have), (full_size[::-1], have[::-1])):
        if _covers(shown, _needed(upright, plan(upright, params))):
            return True
    return False


# Transposes after which the stored picture's right (bottom) edge is the
# upright picture's left (top) edge.
_MIRRORS_X = frozenset(
    {
        Image.Transpose.FLIP_LEFT_RIGHT,
        Image.Transpose.ROTATE_180,
        Image.Transpose.ROTATE_270,
        Image.Transpose.TRANSVERSE,
    }
)
_MIRRORS_Y = frozenset(
    {
        Image.Transpose.FLIP_TOP_BOTTOM,
        Image.Transpose.ROTATE_180,
        Image.Transpose.ROTATE_90,
        Image.Transpose.TRANSVERSE,
    }
)


@dataclass(frozen=True)
class _Budget:
    """What one rendition may cost: the limits, what the survey found, the deadline."""

    limits: DecodeLimits
    survey: Survey
    deadline: Deadline


def _render_frames(
    im: Image.Image, source: _Source, params: RenderParams, max_pixels: int, budget: _Budget
) -> tuple[list[Image.Image], list[int], int]:
    animate = params.animated and _is_animation(im)
    n = im.n_frames if animate else 1  # bounded by the survey where counting walks the file
    check_frames(n, budget.limits)
    w, h = source.plan.size
    if w * h * n > max_pixels:
        what = f"{n} frames of {w}x{h}" if n > 1 else f"{w}x{h}"
        message = f"the rendition ({what}) would exceed {max_pixels} pixels: ask for less"
        raise RenderError({"size": [message]})
    # Every frame of an animation is decoded whole (at the canvas size).
    check_decoded_pixels(im.size, budget.limits, n)
    if not animate:
        source.shrink_on_load(im)
        loading.load(im, budget.survey, budget.deadline, whole=False)
        return [_finish_alpha([source.frame(im)], params)[0]], [], 0
    loop = im.info.get("loop", 1)  # absent: a GIF without loop extension plays once
    try:
        frames, durations = [], []
        for frame in ImageSequence.Iterator(im):
            budget.deadline.check()  # WebP and AVIF decode a frame in one call
            frames.append(source.frame(frame))
            durations.append(round(frame.info.get("duration") or 0))
    except (OSError, EOFError, Image.DecompressionBombError) as exc:
        log.warning("animation cannot be decoded (%s); rendering its first frame", exc)
        im.seek(0)
        return [_finish_alpha([source.frame(im)], params)[0]], [], 0
    return _finish_alpha(frames, params), durations, loop


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # broken EXIF of any kind must not break a thumbnail
        return 1
    return value if value in _TRANSPOSE else 1


def _upright(size: tuple[int, int], transpose: Image.Transpose | None) -> tuple[int, int]:
    return _stored(size, transpose)  # swapping the sides is its own inverse


def _stored(size: tuple[int, int], transpose: Image.Transpose | None) -> tuple[int, int]:
    swaps = transpose in (
        Image.Transpose.TRANSPOSE,
        Image.Transpose.TRANSVERSE,
        Image.Transpose.ROTATE_90,
        Image.Transpose.ROTATE_270,
    )
    return (size[1], size[0]) if swaps else size


def _is_animation(im: Image.Image) -> bool:
    # MPO (stereo pairs) and multi-page TIFF have frames but are not animations.
    return im.format in _ANIMATED_SOURCES and getattr(im, "is_animated", False)


# -- colour ---------------------------------------------------------------------


def _working_mode(im: Image.Image) -> Image.Image:
    """8-bit L, LA, RGB, RGBA or CMYK: modes that resize well and ICC can convert."""
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
        return _lab_to_srgb(im)
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


def _lab_to_srgb(im: Image.Image) -> Image.Image:
    return ImageCms.applyTransform(im, _transform(None, "LAB"))  # type: ignore[return-value]


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
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


def _finish_alpha(frames: list[Image.Image], params: RenderParams) -> list[Image.Image]:
    """Keep alpha only where it is used and the format has it; else flatten."""
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


# -- I/O ------------------------------------------------------------------------


def _open(fp: BinaryIO) -> Image.Image:
    # Only the formats the service accepts, even though originals were validated.
    return Image.open(fp, formats=_open_formats())


def _open_formats() -> tuple[str, ...]:
    # MPO is decoded by the JPEG opener and has no opener of its own in
    # Image.OPEN: naming it makes Image.open fail with KeyError. Skip such names.
    Image.init()
    return tuple(f for f in PILLOW_FORMATS if f in Image.OPEN)


class _seekable:  # lower case: used like a function
    """Context manager: ``src`` as a seekable binary file (paths opened, streams spooled)."""

    def __init__(self, src: BinaryIO | str | os.PathLike[str]) -> None:
        self._src = src
        self._owned: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        if isinstance(self._src, (str, os.PathLike)):
            self._owned = open(self._src, "rb")  # closed in __exit__
            return self._owned
        if _can_seek(self._src):
            return self._src
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
        shutil.copyfileobj(self._src, spool, 1024 * 1024)
        spool.seek(0)
        self._owned = spool  # type: ignore[assignment]
        return spool  # type: ignore[return-value]

    def __exit__(self, *exc: object) -> None:
        if self._owned is not None:
            self._owned.close()


def _can_seek(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, ValueError):
        return False


def _encode(
    frames: list[Image.Image], durations: list[int], loop: int, params: RenderParams, out: BinaryIO
) -> None:
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


def _encoder_options(params: RenderParams) -> dict[str, object]:
    if params.format == "jpeg":
        return {"quality": params.quality, "optimize": True}
    if params.format == "webp":
        return {"quality": params.quality, "method": WEBP_METHOD}
    if params.format == "avif":
        return {"quality": params.quality, "speed": AVIF_SPEED}
    return {}
