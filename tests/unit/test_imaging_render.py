"""Renditions: parameters, geometry, orientation, colour, alpha, animation, metadata."""

from __future__ import annotations

import io
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import (
    Image,
    ImageChops,
    ImageCms,
    ImageSequence,
    ImageStat,
    JpegImagePlugin,
    UnidentifiedImageError,
)

from image_repo.imaging import dct
from image_repo.imaging.formats import OUTPUT_FORMATS
from image_repo.imaging.render import (
    RenderError,
    RenderParams,
    add_observer,
    observing,
    plan,
    remove_observer,
    render,
    render_preview,
    validate,
)
from image_repo.storage import rendition_key
from tests.support.corpus import corpus_files, corpus_path, manifest

MAX = 4096
OUTPUTS = list(OUTPUT_FORMATS)
ANIMATED = ["webp", "png", "avif"]

# Mean absolute difference (0..255 per channel) between renditions of one
# photo. Measured: right orientations differ by at most 1.4 (JPEG noise); a
# wrong one (mirrored or rotated) by 40 or more. 8 separates them with margin.
SAME_PICTURE = 8.0
# hopper_orientation_* are separately re-encoded 128 px copies of hopper.jpg:
# right ones differ by ~5, wrong ones by ~74.
SAME_HOPPER = 12.0


def rendition(src, **params) -> tuple[Image.Image, str, bytes]:
    """Render ``src`` with ``params``; return the decoded output, its MIME type, its bytes."""
    out = io.BytesIO()
    mime = render(src, RenderParams(**params), out)
    data = out.getvalue()
    im = Image.open(io.BytesIO(data))
    im.load()
    return im, mime, data


def pixels(im: Image.Image, mode: str = "RGB") -> np.ndarray:
    return np.asarray(im.convert(mode), dtype=float)


def mad(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference of two same-sized images, in RGB."""
    assert a.size == b.size
    return float(np.abs(pixels(a) - pixels(b)).mean())


def png_bytes(im: Image.Image, **options) -> io.BytesIO:
    buf = io.BytesIO()
    im.save(buf, "PNG", **options)
    buf.seek(0)
    return buf


def half_transparent(size=(40, 20)) -> Image.Image:
    """Left half fully transparent (black), right half opaque blue."""
    im = Image.new("RGBA", size, (0, 0, 0, 0))
    im.paste((0, 0, 255, 255), (size[0] // 2, 0, size[0], size[1]))
    return im


def two_colour(size=(200, 100)) -> Image.Image:
    """Left half red, right half blue."""
    im = Image.new("RGB", size, (255, 0, 0))
    im.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    return im


# -- parameters -----------------------------------------------------------------


def test_validate_returns_normalised_params():
    got = validate(
        RenderParams(width=300, format="JPG", fit="Contain"), max_width=MAX, max_height=MAX
    )
    assert got == RenderParams(width=300, format="jpeg", fit="contain")


@pytest.mark.parametrize(
    "params, field",
    [
        (RenderParams(width=0), "width"),
        (RenderParams(width=-5), "width"),
        (RenderParams(width=MAX + 1), "width"),
        (RenderParams(height=0), "height"),
        (RenderParams(height=MAX + 1), "height"),
        (RenderParams(width="300"), "width"),  # type: ignore[arg-type]
        (RenderParams(width=True), "width"),  # type: ignore[arg-type]
        (RenderParams(width=2.5), "width"),  # type: ignore[arg-type]
        (RenderParams(quality=0), "quality"),
        (RenderParams(quality=101), "quality"),
        (RenderParams(quality="high"), "quality"),  # type: ignore[arg-type]
        (RenderParams(fit="stretch"), "fit"),
        (RenderParams(fit=None), "fit"),  # type: ignore[arg-type]
        (RenderParams(width=9, height=9, fit="cover", gravity="up"), "gravity"),
        (RenderParams(format="gif"), "format"),
        (RenderParams(format="bmp"), "format"),
        (RenderParams(format=""), "format"),
        (RenderParams(width=100, fit="cover"), "height"),
        (RenderParams(height=100, fit="cover"), "width"),
        (RenderParams(width=100, fit="fill"), "height"),
        (RenderParams(fit="fill"), "width"),
        (RenderParams(background="red"), "background"),
        (RenderParams(background="#12345"), "background"),
        (RenderParams(background="#ggg"), "background"),
        (RenderParams(upscale="yes"), "upscale"),  # type: ignore[arg-type]
        (RenderParams(animated=1), "animated"),  # type: ignore[arg-type]
    ],
)
def test_validate_rejects(params, field):
    with pytest.raises(RenderError) as err:
        validate(params, max_width=MAX, max_height=MAX)
    assert field in err.value.errors
    assert str(err.value).startswith(field) or f"; {field}:" in str(err.value)


def test_validate_reports_every_problem_and_the_limit():
    with pytest.raises(RenderError) as err:
        validate(RenderParams(width=5000, quality=0, format="tiff"), max_width=2000, max_height=MAX)
    assert set(err.value.errors) == {"width", "quality", "format"}
    assert "2000" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_validate_accepts_the_limits():
    for w, h in ((1, 1), (MAX, MAX)):
        validate(RenderParams(width=w, height=h, fit="cover"), max_width=MAX, max_height=MAX)


def test_unused_gravity_is_still_checked():
    with pytest.raises(RenderError):
        validate(RenderParams(width=10, gravity="sideways"), max_width=MAX, max_height=MAX)


@pytest.mark.parametrize(
    "given, expected",
    [
        (RenderParams(format="JPG"), RenderParams(format="jpeg")),
        (RenderParams(format=" WebP "), RenderParams(format="webp")),
        (
            RenderParams(width=9, height=9, fit="COVER", gravity="Centre"),
            RenderParams(width=9, height=9, fit="cover", gravity="center"),
        ),
        (RenderParams(background="#ABC"), RenderParams(background="#aabbcc")),
        (RenderParams(background="FF0000"), RenderParams(background="#ff0000")),
        # inside = contain that never upscales
        (RenderParams(width=9, fit="inside", upscale=True), RenderParams(width=9)),
        # gravity only matters for cover
        (RenderParams(width=9, gravity="north"), RenderParams(width=9)),
        # formats with alpha never use the background; png ignores quality
        (RenderParams(format="png", background="#000", quality=10), RenderParams(format="png")),
        (RenderParams(format="webp", background="#000"), RenderParams(format="webp")),
        # jpeg cannot animate
        (RenderParams(animated=True), RenderParams()),
        # nothing to scale to: upscale cannot matter
        (RenderParams(upscale=True), RenderParams()),
    ],
)
def test_normalised(given, expected):
    assert given.normalised() == expected
    assert given.digest() == expected.digest()


def test_normalised_keeps_what_matters():
    p = RenderParams(width=9, height=7, fit="cover", gravity="north", format="jpeg",
                     quality=50, upscale=True, background="#000000", animated=False)  # fmt: skip
    assert p.normalised() == p
    assert RenderParams(format="webp", animated=True).normalised().animated is True


def test_digest_is_short_hex_usable_in_a_storage_key():
    digest = RenderParams(width=300).digest()
    assert re.fullmatch(r"[0-9a-f]{16}", digest)
    assert rendition_key("a" * 64, digest).endswith(digest)


def test_digest_is_stable():
    # Pinned across processes and versions: a change here orphans every cached
    # rendition. If that is intended, bump RENDER_VERSION and update the value.
    assert RenderParams().digest() == "fb44aa78147954ed"


def test_digest_separates_different_renditions():
    variants = [
        RenderParams(),
        RenderParams(width=300),
        RenderParams(height=300),
        RenderParams(width=300, height=300),
        RenderParams(width=300, height=300, fit="cover"),
        RenderParams(width=300, height=300, fit="cover", gravity="north"),
        RenderParams(width=300, height=300, fit="fill"),
        RenderParams(width=300, upscale=True),
        RenderParams(format="png"),
        RenderParams(format="webp"),
        RenderParams(format="webp", animated=True),
        RenderParams(quality=83),
        RenderParams(background="#000000"),
    ]
    assert len({v.digest() for v in variants}) == len(variants)


# -- geometry -------------------------------------------------------------------


C = {"fit": "cover"}
F = {"fit": "fill"}
SQ = {"width": 300, "height": 300}


@pytest.mark.parametrize(
    "source, params, size, box",
    [
        ((1800, 1200), {}, (1800, 1200), (0, 0, 1800, 1200)),
        ((1800, 1200), {"width": 300}, (300, 200), (0, 0, 1800, 1200)),
        ((1800, 1200), {"height": 300}, (450, 300), (0, 0, 1800, 1200)),
        ((1800, 1200), SQ, (300, 200), (0, 0, 1800, 1200)),
        ((100, 50), {"width": 400}, (100, 50), (0, 0, 100, 50)),
        ((100, 50), {"width": 400, "upscale": True}, (400, 200), (0, 0, 100, 50)),
        ((100, 50), {"width": 400, "fit": "inside", "upscale": True}, (100, 50), (0, 0, 100, 50)),
        ((3, 1000), {"width": 10}, (3, 1000), (0, 0, 3, 1000)),
        ((1000, 3), {"width": 10}, (10, 1), (0, 0, 1000, 3)),  # never 0 px
        ((1800, 1200), SQ | C, (300, 300), (300, 0, 1500, 1200)),
        ((1800, 1200), SQ | C | {"gravity": "west"}, (300, 300), (0, 0, 1200, 1200)),
        ((1800, 1200), SQ | C | {"gravity": "southeast"}, (300, 300), (600, 0, 1800, 1200)),
        ((1200, 1800), SQ | C | {"gravity": "north"}, (300, 300), (0, 0, 1200, 1200)),
        ((1200, 1800), SQ | C | {"gravity": "south"}, (300, 300), (0, 600, 1200, 1800)),
        ((100, 50), {"width": 200, "height": 200} | C, (50, 50), (25, 0, 75, 50)),
        (
            (100, 50),
            {"width": 200, "height": 200, "upscale": True} | C,
            (200, 200),
            (25, 0, 75, 50),
        ),
        ((1800, 1200), {"width": 300, "height": 100} | F, (300, 100), (0, 0, 1800, 1200)),
        ((100, 50), {"width": 200, "height": 200} | F, (50, 50), (0, 0, 100, 50)),
        (
            (100, 50),
            {"width": 200, "height": 200, "upscale": True} | F,
            (200, 200),
            (0, 0, 100, 50),
        ),
    ],
)
def test_plan(source, params, size, box):
    got = plan(source, RenderParams(**params).normalised())
    assert got.size == size
    assert got.box == pytest.approx(box)


@pytest.mark.parametrize("fit", ["contain", "inside", "cover", "fill"])
@pytest.mark.parametrize("box", [(500, 300), (300, 500), (500, 500), (100, 500)])
def test_no_upscale_never_exceeds_the_source(fit, box):
    im, _, _ = rendition(corpus_path("valid/hopper.png"), width=box[0], height=box[1], fit=fit)
    assert im.width <= 128 and im.height <= 128


@pytest.mark.parametrize(
    "fit, box", [("contain", (500, 500)), ("cover", (500, 300)), ("fill", (500, 300))]
)
def test_upscale_reaches_the_box(fit, box):
    path = corpus_path("valid/hopper.png")
    im, _, _ = rendition(path, width=box[0], height=box[1], fit=fit, upscale=True)
    assert im.size == box


@pytest.mark.parametrize(
    "gravity, left, right",
    [("west", "red", "red"), ("east", "blue", "blue"), ("center", "red", "blue")],
)
def test_cover_crops_by_gravity(gravity, left, right):
    colours = {"red": (255, 0, 0), "blue": (0, 0, 255)}
    src = png_bytes(two_colour((200, 100)))
    im, _, _ = rendition(src, width=50, height=50, fit="cover", gravity=gravity, format="png")
    assert im.size == (50, 50)
    # LANCZOS reads a little past the crop's edge: allow a trace of the other colour.
    assert np.abs(np.subtract(im.getpixel((2, 25)), colours[left])).max() <= 3
    assert np.abs(np.subtract(im.getpixel((47, 25)), colours[right])).max() <= 3


def test_fill_stretches():
    src = png_bytes(two_colour((200, 100)))
    im, _, _ = rendition(src, width=40, height=80, fit="fill", format="png")
    assert im.size == (40, 80)
    # Both halves survive (no crop): red on the left, blue on the right.
    assert im.getpixel((2, 40)) == (255, 0, 0)
    assert im.getpixel((37, 40)) == (0, 0, 255)


def test_too_many_output_pixels_is_a_render_error():
    thin = png_bytes(Image.new("RGB", (1, 100), "white"))
    with pytest.raises(RenderError) as err:
        render(thin, RenderParams(width=10_000, upscale=True), io.BytesIO())
    assert "pixels" in str(err.value)


def test_animation_pixels_count_every_frame():
    path = corpus_path("valid/iss634.gif")
    limit = 245 * 245 * 10  # room for one frame, not for 42
    render(path, RenderParams(format="webp"), io.BytesIO(), max_pixels=limit)
    with pytest.raises(RenderError):
        render(path, RenderParams(format="webp", animated=True), io.BytesIO(), max_pixels=limit)


# -- orientation ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Landscape", "Portrait"])
def test_every_exif_orientation_renders_upright(kind):
    reference, _, _ = rendition(corpus_path(f"orientation/{kind}_1.jpg"), width=300, format="png")
    for n in range(9):
        name = f"orientation/{kind}_{n}.jpg"
        entry = manifest()[name]
        im, _, _ = rendition(corpus_path(name), width=300, format="png")
        assert im.size == (300, round(300 * entry["height"] / entry["width"])), name
        assert mad(im, reference) < SAME_PICTURE, name
        # The threshold does tell right from wrong: mirrored or turned fails it.
        assert mad(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), reference) > SAME_PICTURE
        assert mad(im.transpose(Image.Transpose.ROTATE_180), reference) > SAME_PICTURE


@pytest.mark.parametrize("n", range(2, 9))
@pytest.mark.parametrize("ext", ["jpg", "webp"])
def test_hopper_orientations_render_upright(n, ext):
    reference, _, _ = rendition(corpus_path("valid/hopper.jpg"), format="png")
    im, _, _ = rendition(corpus_path(f"orientation/hopper_orientation_{n}.{ext}"), format="png")
    assert mad(im, reference) < SAME_HOPPER
    assert mad(im.transpose(Image.Transpose.TRANSPOSE), reference) > SAME_HOPPER


def test_png_exif_orientation_is_applied():
    path = corpus_path("valid/exif_imagemagick_orientation.png")
    with Image.open(path) as raw:
        stored = raw.convert("RGB")
    im, _, _ = rendition(path, format="png")
    assert mad(im, stored.transpose(Image.Transpose.ROTATE_180)) < 1
    assert mad(im, stored) > SAME_PICTURE


@pytest.mark.parametrize("name", corpus_files("accept"))
def test_full_size_rendition_has_displayed_size(name):
    entry = manifest()[name]
    im, _, _ = rendition(corpus_path(name))
    assert im.size == (entry["width"], entry["height"])


# -- shrink-on-load -------------------------------------------------------------


@pytest.fixture
def draft_calls(monkeypatch):
    """Record each JPEG draft request and the size the decoder then delivers."""
    calls = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = original(self, mode, size)
        calls.append((size, self.size))
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    return calls


def test_jpeg_shrinks_on_load_but_keeps_twice_the_target(draft_calls):
    path = corpus_path("orientation/Landscape_1.jpg")  # 1800 x 1200
    im, _, _ = rendition(path, width=100, format="png")
    assert im.size == (100, 67)
    [(_, decoded)] = draft_calls
    assert decoded[0] < 1800 / 2  # decoded at reduced scale...
    assert decoded[0] >= 2 * 100 and decoded[1] >= 2 * 67  # ...but not below 2x the output
    # Quality: close to a full decode resized with LANCZOS.
    with Image.open(path) as full:
        reference = full.convert("RGB").resize((100, 67), Image.Resampling.LANCZOS)
    assert mad(im, reference) < 2


def test_jpeg_shrink_on_load_respects_orientation(draft_calls):
    # Stored 1200 x 1800, displayed 1800 x 1200: the draft size is in stored terms.
    im, _, _ = rendition(corpus_path("orientation/Landscape_6.jpg"), width=100, format="png")
    assert im.size == (100, 67)
    [(requested, decoded)] = draft_calls
    assert requested[0] < requested[1]
    assert decoded[0] >= 2 * 67 and decoded[1] >= 2 * 100


def test_jpeg_cover_crop_survives_shrink_on_load(draft_calls):
    src = io.BytesIO()
    two_colour((1600, 800)).save(src, "JPEG", quality=95)
    src.seek(0)
    im, _, _ = rendition(src, width=50, height=50, fit="cover", gravity="east", format="png")
    assert draft_calls and draft_calls[0][1][0] < 1600
    assert np.abs(pixels(im) - (0, 0, 255)).max() < 40  # all blue: the east end


def test_no_shrink_on_load_when_it_would_cost_quality(draft_calls):
    im, _, _ = rendition(corpus_path("orientation/Landscape_1.jpg"), width=1000, format="png")
    assert im.size == (1000, 667)
    assert all(decoded == (1800, 1200) for _, decoded in draft_calls)


# -- colour ---------------------------------------------------------------------


def test_icc_profile_is_converted_to_srgb():
    path = corpus_path("valid/icc_profile_big.jpg")
    with Image.open(path) as src:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(src.info["icc_profile"]))
        reference = ImageCms.profileToProfile(src, profile, ImageCms.createProfile("sRGB"))
        raw = src.convert("RGB")
    im, _, _ = rendition(path, format="png")
    assert "icc_profile" not in im.info  # untagged output means sRGB
    assert mad(im, reference) < 1.5
    assert mad(im, raw) > 6  # the profile matters for this file: ignoring it shows


def test_unusable_icc_profile_is_ignored():
    src = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(src, "PNG", icc_profile=b"not a profile")
    src.seek(0)
    im, _, _ = rendition(src, format="png")
    assert im.getpixel((4, 4)) == (10, 200, 30)


def test_cmyk_jpeg_renders_in_the_right_colours():
    # Adobe CMYK JPEG (stored inverted): red in the top left corner, black bottom right.
    im, _, _ = rendition(corpus_path("valid/pil_sample_cmyk.jpg"), format="png")
    assert im.mode == "RGB"
    r, g, b = im.getpixel((0, 0))
    assert r > 200 and g < 60 and b < 60
    assert max(im.getpixel((im.width - 1, im.height - 1))) < 40


def without_jpeg_segment(data: bytes, marker: int) -> bytes:
    """The JPEG with every segment of one marker type cut out."""
    pos, out = 2, bytearray(data[:2])
    while data[pos + 1] != 0xDA:
        end = pos + 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if data[pos + 1] != marker:
            out += data[pos:end]
        pos = end
    return bytes(out + data[pos:])


def test_cmyk_jpeg_without_adobe_marker_is_not_inverted():
    buf = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 0, 0, 0)).save(buf, "JPEG", quality=95)  # white
    adobe = buf.getvalue()
    plain = without_jpeg_segment(adobe, 0xEE)  # APP14 "Adobe"
    assert plain != adobe
    # Pillow stores CMYK inverted, as Adobe does; read as plain CMYK that is full ink.
    white, _, _ = rendition(io.BytesIO(adobe), format="png")
    black, _, _ = rendition(io.BytesIO(plain), format="png")
    assert min(white.getpixel((8, 8))) > 245
    assert max(black.getpixel((8, 8))) < 10


def test_lab_tiff_renders_like_the_rgb_original():
    lab_path = corpus_path("valid/hopper.Lab.tif")
    reference, _, _ = rendition(corpus_path("valid/hopper.png"), format="png")
    im, _, _ = rendition(lab_path, format="png")
    assert mad(im, reference) < 5
    with Image.open(lab_path) as lab:  # Lab bytes taken for RGB: clearly wrong
        misread = Image.frombytes("RGB", lab.size, lab.tobytes())
    assert mad(misread, reference) > 30


@pytest.mark.parametrize("name", ["valid/p_16.png", "valid/tiff_16bit_RGB_target.png"])
def test_corpus_16_bit_named_files_render_like_pillow(name):
    # Despite their names both are 8-bit PNGs; they must simply come out right.
    im, _, _ = rendition(corpus_path(name), format="png")
    with Image.open(corpus_path(name)) as src:
        assert mad(im, src.convert("RGB")) < 1


@pytest.mark.parametrize("container", ["PNG", "TIFF"])
def test_16_bit_grey_is_scaled_not_clipped(container):
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (4, 1))
    src = io.BytesIO()
    Image.fromarray(ramp).save(src, container)
    src.seek(0)
    assert Image.open(src).mode.startswith("I;16")
    src.seek(0)
    im, _, _ = rendition(src, format="png")
    row = pixels(im)[1, :, 0]
    assert np.abs(row - np.arange(256)).max() <= 1  # 0..255: the ramp survives


def test_float_grey_is_scaled():
    ramp = np.tile(np.linspace(0, 1, 256, dtype=np.float32), (4, 1))
    src = io.BytesIO()
    Image.fromarray(ramp, mode="F").save(src, "TIFF")
    src.seek(0)
    im, _, _ = rendition(src, format="png")
    assert np.abs(pixels(im)[1, :, 0] - np.arange(256)).max() <= 1


def png_16_bit_rgb(rgb: np.ndarray) -> io.BytesIO:
    """A 16-bit RGB PNG (Pillow cannot write one): rows of big-endian samples."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
    return io.BytesIO(data + chunk(b"IEND", b""))


def test_16_bit_rgb_png_keeps_its_colours():
    rgb = np.zeros((8, 8, 3), dtype=np.uint16)
    rgb[:] = (65535, 32896, 4112)  # 255, 128, 16 in 8 bits
    im, _, _ = rendition(png_16_bit_rgb(rgb), format="png")
    assert im.getpixel((4, 4)) == (255, 128, 16)


# -- transparency ---------------------------------------------------------------


@pytest.mark.parametrize("fmt, tolerance", [("png", 0), ("webp", 2), ("avif", 8)])
def test_alpha_is_kept_where_the_format_has_it(fmt, tolerance):
    im, _, _ = rendition(png_bytes(half_transparent()), format=fmt)
    assert im.mode == "RGBA"
    assert im.getpixel((2, 10))[3] <= tolerance
    assert im.getpixel((37, 10))[3] >= 255 - tolerance


def test_jpeg_flattens_alpha_onto_the_background():
    im, _, _ = rendition(png_bytes(half_transparent()), format="jpeg", background="#00ff00")
    assert im.mode == "RGB"
    assert np.abs(np.subtract(im.getpixel((2, 10)), (0, 255, 0))).max() < 12
    assert np.abs(np.subtract(im.getpixel((37, 10)), (0, 0, 255))).max() < 12


def test_transparent_avif_pixel_becomes_the_background():
    path = corpus_path("valid/transparency.avif")
    with Image.open(path) as src:
        alpha = np.asarray(src.getchannel("A"))
    y, x = np.argwhere(alpha == 0)[len(np.argwhere(alpha == 0)) // 2]
    flat, _, _ = rendition(path, format="jpeg", background="#ff00ff")
    assert np.abs(np.subtract(flat.getpixel((int(x), int(y))), (255, 0, 255))).max() < 16
    kept, _, _ = rendition(path, format="png")
    assert (np.asarray(kept.getchannel("A")) == alpha).all()


def test_palette_transparency_is_kept():
    im = Image.new("P", (10, 10), 0)
    im.putpalette([255, 0, 0, 0, 255, 0])
    im.paste(1, (5, 0, 10, 10))
    out, _, _ = rendition(png_bytes(im, transparency=0), format="png")
    assert out.getpixel((2, 5))[3] == 0
    assert out.getpixel((7, 5)) == (0, 255, 0, 255)


def test_opaque_alpha_channel_is_dropped():
    im, _, _ = rendition(corpus_path("valid/p_16.png"), format="png")  # RGBA, all opaque
    assert im.mode == "RGB"


# -- animation ------------------------------------------------------------------


def source_durations(path) -> list[int]:
    with Image.open(path) as im:
        out = []
        for frame in ImageSequence.Iterator(im):
            frame.load()
            out.append(frame.info.get("duration", 0))
        return out


def output_durations(im: Image.Image) -> list[int]:
    out = []
    for frame in ImageSequence.Iterator(im):
        frame.load()
        out.append(round(frame.info.get("duration", 0)))
    return out


@pytest.mark.parametrize("name", ["valid/iss634.gif", "valid/iss634.webp"])
def test_first_frame_by_default(name):
    for fmt in OUTPUTS:
        im, _, _ = rendition(corpus_path(name), format=fmt)
        assert getattr(im, "n_frames", 1) == 1, fmt


@pytest.mark.parametrize("name", ["valid/iss634.gif", "valid/iss634.webp"])
def test_animated_webp_keeps_frames_and_durations(name):
    path = corpus_path(name)
    im, mime, _ = rendition(path, format="webp", animated=True, width=100)
    assert mime == "image/webp"
    assert im.n_frames == manifest()[name]["frames"] > 1
    assert output_durations(im) == source_durations(path)
    assert im.info.get("loop") == 0


def test_animated_frames_stay_in_order():
    path = corpus_path("valid/iss634.gif")
    im, _, _ = rendition(path, format="webp", animated=True)
    with Image.open(path) as src:
        src.seek(20)
        frame20 = src.convert("RGB")
        src.seek(0)
        frame0 = src.convert("RGB")
    im.seek(20)
    assert mad(im, frame20) < 6
    assert mad(im, frame20) < mad(im, frame0)


@pytest.mark.parametrize("fmt", ["png", "avif"])
def test_animation_in_apng_and_avif(fmt):
    im, _, _ = rendition(corpus_path("valid/iss634.gif"), format=fmt, animated=True, width=64)
    assert im.n_frames > 1


def test_animated_jpeg_is_the_first_frame():
    path = corpus_path("valid/iss634.gif")
    animated, _, _ = rendition(path, format="jpeg", animated=True)
    still, _, _ = rendition(path, format="jpeg")
    assert mad(animated, still) == 0


@pytest.mark.parametrize(
    "name", ["valid/sugarshack.mpo", "valid/hopper.gif", "valid/decompression_bomb_extents.gif"]
)
def test_not_an_animation_gives_one_frame(name):
    # MPO holds a stereo pair, not an animation; the "extents" GIF has a second
    # frame that cannot be decoded safely: both render their first frame.
    im, _, _ = rendition(corpus_path(name), format="webp", animated=True)
    assert getattr(im, "n_frames", 1) == 1


# -- metadata -------------------------------------------------------------------


def jpeg_segments(data: bytes) -> list[int]:
    """Marker codes of the segments before the image data."""
    assert data[:2] == b"\xff\xd8"
    pos, markers = 2, []
    while data[pos + 1] != 0xDA:  # start of scan
        markers.append(data[pos + 1])
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return markers


def png_chunks(data: bytes) -> list[bytes]:
    pos, kinds = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        kinds.append(kind)
        pos += 12 + length
    return kinds


def riff_chunks(data: bytes) -> list[bytes]:
    pos, kinds = 12, []
    while pos < len(data):
        kind, length = struct.unpack("<4sI", data[pos : pos + 8])
        kinds.append(kind)
        pos += 8 + length + (length & 1)
    return kinds


def isobmff_outside_mdat(data: bytes) -> bytes:
    """The file minus the compressed pixels: where AVIF keeps its metadata."""
    pos, kept = 0, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind != b"mdat":
            kept.append(data[pos : pos + length])
        pos += length
    return b"".join(kept)


def assert_no_metadata(data: bytes, fmt: str) -> None:
    if fmt == "jpeg":
        # Only APP0 (JFIF) and the coding segments: no APP1 (EXIF, XMP),
        # APP2 (ICC), APP13 (Photoshop/IPTC) or COM.
        extra = [m for m in jpeg_segments(data) if 0xE1 <= m <= 0xEF or m == 0xFE]
        assert not extra, [hex(m) for m in extra]
    elif fmt == "png":
        allowed = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"acTL", b"fcTL", b"fdAT"}
        assert set(png_chunks(data)) <= allowed, png_chunks(data)
    elif fmt == "webp":
        chunks = riff_chunks(data)
        assert set(chunks) <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"}, chunks
        if b"VP8X" in chunks:
            flags = data[20]
            assert not flags & 0b101100  # ICC, EXIF, XMP bits
    else:
        header = isobmff_outside_mdat(data)
        for marker in (b"Exif", b"mime", b"prof", b"rICC"):  # EXIF, XMP, ICC items
            assert marker not in header, marker


@pytest.mark.parametrize("fmt", OUTPUTS)
@pytest.mark.parametrize("name", ["valid/exif_gps.jpg", "valid/flower2.webp", "valid/flower.jpg"])
def test_no_metadata_in_renditions(name, fmt):
    im, _, data = rendition(corpus_path(name), format=fmt)
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment"):
        assert key not in im.info, key
    assert not im.getexif()
    assert_no_metadata(data, fmt)


def test_animated_renditions_carry_no_metadata():
    for fmt in ANIMATED:
        _, _, data = rendition(corpus_path("valid/iss634.webp"), format=fmt, animated=True)
        assert_no_metadata(data, fmt)


@pytest.mark.parametrize("fmt", OUTPUTS)
def test_metadata_check_notices_metadata(fmt):
    # The structural checks above must fail on a file that does carry metadata.
    with Image.open(corpus_path("valid/flower2.webp")) as src:
        exif, icc = src.info["exif"], src.info["icc_profile"]
        buf = io.BytesIO()
        src.save(buf, OUTPUT_FORMATS[fmt].name, exif=exif, icc_profile=icc)
    with pytest.raises(AssertionError):
        assert_no_metadata(buf.getvalue(), fmt)


def test_gps_source_really_has_gps():
    # Guards the test above against a corpus file that lost its metadata.
    with Image.open(corpus_path("valid/exif_gps.jpg")) as im:
        assert im.getexif().get_ifd(0x8825)


# -- every accepted corpus file, every output format ------------------------------


@pytest.mark.parametrize("fmt", OUTPUTS)
@pytest.mark.parametrize("name", corpus_files("accept"))
def test_corpus_renders_to_every_format(name, fmt):
    entry = manifest()[name]
    im, mime, _ = rendition(corpus_path(name), width=64, height=64, format=fmt)
    assert mime == OUTPUT_FORMATS[fmt].mime_type
    assert im.format == OUTPUT_FORMATS[fmt].name
    expected = plan((entry["width"], entry["height"]), RenderParams(width=64, height=64)).size
    assert im.size == expected


# -- I/O and bookkeeping ----------------------------------------------------------


class Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_sources_as_path_stream_or_unseekable_stream():
    path = corpus_path("valid/hopper.jpg")
    by_path, _, _ = rendition(path, width=32, format="png")
    with open(path, "rb") as f:
        by_file, _, _ = rendition(f, width=32, format="png")
    by_pipe, _, _ = rendition(Unseekable(path.read_bytes()), width=32, format="png")
    assert mad(by_path, by_file) == 0 and mad(by_path, by_pipe) == 0


def test_formats_outside_the_accepted_list_are_not_opened():
    src = io.BytesIO()
    Image.new("RGB", (4, 4)).save(src, "PPM")  # Pillow reads PPM; the service does not
    src.seek(0)
    with pytest.raises(UnidentifiedImageError):
        render(src, RenderParams(), io.BytesIO())


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_quality_changes_the_encoding(fmt):
    path = corpus_path("valid/flower.jpg")
    low = rendition(path, format=fmt, quality=20)[2]
    high = rendition(path, format=fmt, quality=95)[2]
    assert len(low) < len(high)


def test_observers_hear_of_each_rendition_made_and_its_source():
    params = validate(RenderParams(width=10), max_width=MAX, max_height=MAX)
    with observing() as decodes:
        params.digest()
        assert decodes == []  # checking parameters decodes nothing
        render(corpus_path("valid/hopper.jpg"), params, io.BytesIO())
        render(corpus_path("valid/hopper.png"), params, io.BytesIO())
        # A "preview" of a 4096 px original: 128 px cannot serve a 1024 px rendition.
        too_small = render_preview(
            corpus_path("valid/hopper.jpg"), (4096, 4096), RenderParams(width=1024), io.BytesIO()
        )
        assert too_small is None
        render_preview(corpus_path("valid/hopper.jpg"), (256, 256), params, io.BytesIO())
        with pytest.raises(RenderError):  # a failed rendition is not one made
            render(
                corpus_path("valid/hopper.jpg"), RenderParams(width=10), io.BytesIO(), max_pixels=9
            )
    assert [d.source for d in decodes] == ["original", "original", "preview"]
    assert all(d.seconds > 0 for d in decodes)
    render(corpus_path("valid/hopper.jpg"), params, io.BytesIO())
    assert len(decodes) == 3  # no longer observed after the block


def test_a_failing_observer_never_fails_a_rendition():
    def broken(_decode):
        raise RuntimeError("metrics backend down")

    add_observer(broken)
    try:
        with observing() as decodes:
            mime = render(corpus_path("valid/hopper.jpg"), RenderParams(width=10), io.BytesIO())
    finally:
        remove_observer(broken)
    assert mime == "image/jpeg"
    assert len(decodes) == 1  # observers after the broken one still hear


def test_render_rejects_bad_params_itself():
    with pytest.raises(RenderError):
        render(corpus_path("valid/hopper.jpg"), RenderParams(format="tga"), io.BytesIO())


def test_shrink_on_load_takes_the_largest_dct_scale_that_keeps_the_pixels():
    # libjpeg rounds a scaled side up: 683 rows at 1/2 are 342, enough for 342.
    assert dct.largest_scale((1024, 683), (512, 342)) == 2
    assert dct.largest_scale((1024, 683), (512, 343)) == 1
    assert dct.largest_scale((6000, 4000), (512, 342)) == 8
    assert dct.largest_scale((6000, 4000), (1501, 1000)) == 2


# Stored pixels for EXIF orientation n: the upright picture put through the
# inverse of the transpose that orientation n asks a viewer for.
_STORE_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_shrink_on_load_keeps_the_picture_in_place_when_sides_do_not_divide(orientation):
    # 2701 x 1803 at 1/4 decodes to 676 x 451 pixels, the last row and column
    # part padding, wherever the orientation puts them: renditions must match
    # a full decode, not be stretched or shifted.
    upright = Image.open(corpus_path("orientation/Landscape_1.jpg")).convert("RGB")
    upright = upright.resize((2701, 1803), Image.Resampling.BICUBIC)
    transpose = _STORE_AS[orientation]
    stored = upright.transpose(transpose) if transpose is not None else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = io.BytesIO()
    stored.save(data, "JPEG", quality=95, exif=exif.tobytes())
    for params, window in (
        ({"width": 300}, (0, 0, 2701, 1803)),
        ({"width": 150, "height": 150, "fit": "cover", "gravity": "northwest"}, (0, 0, 1803, 1803)),
        (
            {"width": 150, "height": 150, "fit": "cover", "gravity": "southeast"},
            (898, 0, 2701, 1803),
        ),
    ):
        out = io.BytesIO()
        render(io.BytesIO(data.getvalue()), RenderParams(format="png", **params), out)
        shot = Image.open(out).convert("RGB")
        ideal = upright.resize(shot.size, Image.Resampling.LANCZOS, box=window)
        diff = ImageChops.difference(shot, ideal)
        assert sum(ImageStat.Stat(diff).mean) / 3 < 0.8, (orientation, params)
