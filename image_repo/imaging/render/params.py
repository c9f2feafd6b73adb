"""Parameters: what a client may ask of a rendition, checked and put in canonical form.

``validate`` turns request parameters into a canonical ``RenderParams``,
whose ``digest`` names the cached rendition: equal renditions must get equal
params (and digests) however they were spelled, and any change to what a
rendition looks like must change every digest (``RENDER_VERSION``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace

from image_repo.imaging.formats import OUTPUT_FORMATS

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
# Gravities that look at the picture: ``smart`` places the window on the most
# interesting region (see render.attention); ``face`` keeps the detected faces
# (the caller passes them as ``focus``), and is ``smart`` when there are none.
CONTENT_GRAVITIES = ("smart", "face")
GRAVITY_NAMES = (*GRAVITIES, *CONTENT_GRAVITIES)
_ALIASES = {"jpg": "jpeg", "centre": "center"}
ALPHA_FORMATS = frozenset({"png", "webp", "avif"})
ANIMATED_FORMATS = frozenset({"png", "webp", "avif"})

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
    northwest, southeast, southwest, smart (the most interesting region) or
    face (keep ``focus`` in view; smart without it). ``format``: jpeg, png, webp, avif ("jpg"
    is an alias). ``quality`` 1..100 (jpeg, webp, avif; png is lossless).
    ``background``: "#rrggbb" or "#rgb" ("#" optional), what transparent
    pixels become in jpeg. ``animated``: see the package docstring.
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
    # Set by the service, never by a client's query:
    # ``focus``, (left, top, right, bottom) as fractions of the upright picture,
    # the region a cover crop keeps in view (the faces, for gravity=face) ...
    focus: tuple[float, float, float, float] | None = None
    # ... and ``crop``, (left, top, right, bottom) in upright pixels, the part of
    # the picture the rendition is made of (a face's thumbnail).
    crop: tuple[int, int, int, int] | None = None

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
        if p.gravity != "face":
            p = replace(p, focus=None)
        if p.focus is not None:
            p = replace(p, focus=tuple(round(float(v), 4) for v in p.focus))
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
        # Absent unless set, so that adding them kept every earlier digest.
        for name in ("focus", "crop"):
            if fields[name] is None:
                del fields[name]
        blob = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _canonical(value: object) -> object:
    if not isinstance(value, str):
        return value  # left for checked() to report
    value = value.strip().lower()
    return _ALIASES.get(value, value)


def _canonical_colour(value: object) -> object:
    if isinstance(value, str) and (m := _HEX_COLOUR.fullmatch(value.strip().lower())):
        digits = m[1] if len(m[1]) == 6 else "".join(c * 2 for c in m[1])
        return "#" + digits
    return value


def validate(params: RenderParams, *, max_width: int, max_height: int) -> RenderParams:
    """Check every parameter against the service's size limits; return them normalised.

    Raises RenderError naming every parameter that is wrong.
    """
    return checked(params, max_width, max_height)


def checked(
    params: RenderParams, max_width: int | None = None, max_height: int | None = None
) -> RenderParams:
    """``validate`` with optional size limits: the renderer checks what it is given itself."""
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
    if p.gravity not in GRAVITY_NAMES:
        bad("gravity", f"must be one of {', '.join(GRAVITY_NAMES)}")
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
