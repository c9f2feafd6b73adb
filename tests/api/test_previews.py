"""Previews: the reduced copy of a large JPEG kept at upload, and renditions made from it."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image, ImageChops, ImageStat

from image_repo.http.context import services_of
from image_repo.imaging.preview import PREVIEW_SIDE
from image_repo.imaging.render import RenderParams, observing, preview_may_serve, render
from image_repo.storage import blob_key, preview_key
from tests.conftest import create_tenant, make_app
from tests.support.corpus import corpus_path
from tests.support.images import png16_bytes, upload
from tests.support.jobs import run_queued


def large_jpeg(name: str, scale: float = 1.5, **save) -> bytes:
    """A corpus JPEG upscaled past the preview threshold, its EXIF and ICC profile kept."""
    with Image.open(corpus_path(name)) as im:
        size = (round(im.width * scale), round(im.height * scale))
        big = im.resize(size, Image.Resampling.BICUBIC)
        options = {"quality": 92, "exif": im.info.get("exif", b"")}
        if im.info.get("icc_profile"):
            options["icc_profile"] = im.info["icc_profile"]
    out = io.BytesIO()
    big.save(out, "JPEG", **(options | save))
    return out.getvalue()


def put(client, headers, data: bytes, name: str = "big.jpg") -> dict:
    response = upload(client, headers, data, name)
    assert response.status_code == 201, response.json
    return response.json


def stored_preview(app, sha: str) -> Image.Image | None:
    store = services_of(app).blob_store
    if not store.exists(preview_key(sha)):
        return None
    with store.open(preview_key(sha)) as f:
        im = Image.open(io.BytesIO(f.read()))
        im.load()
        return im


def fetch(client, headers, image_id: str, **query) -> tuple[Image.Image, bytes]:
    response = client.get(f"/images/{image_id}/render", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return Image.open(io.BytesIO(response.data)), response.data


def direct(data: bytes, **params) -> Image.Image:
    """The same rendition made by decoding the original itself."""
    out = io.BytesIO()
    render(io.BytesIO(data), RenderParams(**params), out)
    return Image.open(io.BytesIO(out.getvalue()))


def sources(decodes) -> list[str]:
    """Which source each rendition made was decoded from ("original" or "preview")."""
    return [decode.source for decode in decodes]


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


def test_a_large_jpeg_upload_keeps_a_preview_beside_the_original(app, client, tenant):
    data = large_jpeg("orientation/Landscape_6.jpg")  # stored 1800 x 2700, shown 2700 x 1800
    image = put(client, tenant.headers(), data)
    assert (image["stored_width"], image["stored_height"]) == (1800, 2700)
    assert (image["width"], image["height"]) == (2700, 1800)
    preview = stored_preview(app, image["sha256"])
    assert preview is not None and preview.format == "JPEG"
    assert preview.size == (683, PREVIEW_SIDE)  # stored orientation, long edge PREVIEW_SIDE
    exif = preview.getexif()
    assert dict(exif) == {0x0112: 6}  # the orientation and nothing else: no GPS, no camera
    assert "icc_profile" not in preview.info


def test_small_images_get_no_preview_and_other_formats_get_theirs_in_a_job(app, client, tenant):
    small = put(client, tenant.headers(), corpus_path("orientation/Landscape_1.jpg").read_bytes())
    assert stored_preview(app, small["sha256"]) is None
    assert small["analyses"] == []  # nothing to do for it
    with Image.open(corpus_path("orientation/Landscape_1.jpg")) as im:
        big = im.resize((2400, 1600))
    cmyk, png = io.BytesIO(), io.BytesIO()
    big.convert("CMYK").save(cmyk, "JPEG", quality=90)
    big.save(png, "PNG", compress_level=1)
    images = [
        put(client, tenant.headers(), d.getvalue(), n) for d, n in ((cmyk, "c.jpg"), (png, "b.png"))
    ]
    for image in images:
        # Not in the upload (which answers first): in the job queued by it.
        assert stored_preview(app, image["sha256"]) is None
        assert [(a["kind"], a["state"]) for a in image["analyses"]] == [("preview", "pending")]
    assert run_queued(app) == ["done", "done"]
    for image in images:
        preview = stored_preview(app, image["sha256"])
        assert preview.format == "PNG" and preview.size == (PREVIEW_SIDE, 683)


# --- every format: the job's preview gives the original's renditions ----------------

# Two renditions each preview must serve like the original (png: no encoder noise).
EQUIVALENCE_CASES = [
    {"width": 256, "format": "png"},
    {"width": 300, "height": 300, "fit": "cover", "gravity": "east", "format": "png"},
]
LARGE = (2100, 1400)  # just past the preview threshold: the tests stay quick


def _photo(size=LARGE) -> Image.Image:
    with Image.open(corpus_path("valid/flower.jpg")) as im:
        return im.convert("RGB").resize(size, Image.Resampling.BICUBIC)


def _alpha(size=LARGE) -> Image.Image:
    """The photo under a radial alpha ramp: every level of transparency."""
    import numpy as np

    w, h = size
    x, y = np.meshgrid(np.linspace(-1, 1, w), np.linspace(-1, 1, h))
    ramp = np.clip(1.3 - np.hypot(x, y), 0, 1) * 255
    im = _photo(size).convert("RGBA")
    im.putalpha(Image.fromarray(ramp.astype("uint8")))
    return im


def _encoded(im: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def _corpus_scaled(name: str, size=LARGE) -> Image.Image:
    with Image.open(corpus_path(name)) as im:
        im.load()
        scaled = im.resize(size, Image.Resampling.BICUBIC if im.mode != "P" else 0)
        scaled.info = dict(im.info)
        return scaled


def _png16(kind: str) -> bytes:
    import numpy as np

    rng = np.random.default_rng(16)
    photo = np.asarray(_photo() if kind != "rgba" else _alpha(), dtype=np.uint32)
    deep = photo * 257 + rng.integers(0, 257, photo.shape)  # low bytes that matter a little
    if kind == "grey":
        deep = deep[..., :3].mean(axis=2)
    return png16_bytes(deep.astype(np.uint16))


def _gif() -> bytes:
    """Two frames: the first with a transparent colour, the second another picture."""
    first = _alpha().convert("RGB").quantize(200)
    second = _photo().transpose(Image.Transpose.ROTATE_180).quantize(200)
    return _encoded(
        first,
        "GIF",
        save_all=True,
        append_images=[second],
        transparency=0,
        duration=80,
        disposal=2,
    )


def _cmyk_jpeg(adobe: bool) -> bytes:
    if adobe:  # Adobe's APP14, inverted CMYK, as Photoshop writes (from the corpus)
        sample = _corpus_scaled("valid/pil_sample_cmyk.jpg")
        return _encoded(sample, "JPEG", quality=92)
    return _encoded(_photo().convert("CMYK"), "JPEG", quality=92)


def _with_orientation(name: str, fmt: str) -> bytes:
    with Image.open(corpus_path(name)) as im:
        exif = im.info.get("exif")
        big = im.convert("RGB").resize((LARGE[1], LARGE[0]), Image.Resampling.BICUBIC)
    return _encoded(big, fmt, quality=92, exif=exif)


def _icc() -> bytes:
    with Image.open(corpus_path("valid/icc_profile_big.jpg")) as im:
        return im.info["icc_profile"]


FORMAT_CASES = {
    "png-rgb": lambda: _encoded(_photo(), "PNG", compress_level=1),
    "png-rgba": lambda: _encoded(_alpha(), "PNG", compress_level=1),
    "png-palette-transparent": lambda: _encoded(
        _alpha().convert("RGB").quantize(64), "PNG", transparency=0
    ),
    "png-16bit-grey": lambda: _png16("grey"),
    "png-16bit-rgb": lambda: _png16("rgb"),
    "png-16bit-rgba": lambda: _png16("rgba"),
    "png-icc": lambda: _encoded(_photo(), "PNG", compress_level=1, icc_profile=_icc()),
    "webp-alpha": lambda: _encoded(_alpha(), "WEBP", quality=90),
    "webp-orientation-6": lambda: _with_orientation(
        "orientation/hopper_orientation_6.webp", "WEBP"
    ),
    "avif-alpha": lambda: _encoded(_alpha(), "AVIF", quality=80, speed=8),
    "avif-corpus-transparency": lambda: _encoded(
        _corpus_scaled("valid/transparency.avif"), "AVIF", quality=80, speed=8
    ),
    "heic": lambda: _encoded(_photo(), "HEIF", quality=85),
    "tiff-icc": lambda: _encoded(_photo(), "TIFF", compression="tiff_deflate", icc_profile=_icc()),
    "tiff-cmyk": lambda: _encoded(_photo().convert("CMYK"), "TIFF", compression="tiff_deflate"),
    "tiff-lab": lambda: _encoded(_corpus_scaled("valid/hopper.Lab.tif"), "TIFF"),
    "gif-first-frame": _gif,
    "jpeg-cmyk": lambda: _cmyk_jpeg(adobe=False),
    "jpeg-cmyk-adobe": lambda: _cmyk_jpeg(adobe=True),
}


def premultiplied_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean difference per channel of what is seen: colours weighted by their alpha, and alpha.

    (The colour of a fully transparent pixel is not seen, and is not kept
    alike by any resize.)
    """
    import numpy as np

    assert a.size == b.size
    x = np.asarray(a.convert("RGBA"), dtype=float)
    y = np.asarray(b.convert("RGBA"), dtype=float)
    seen_x = np.concatenate([x[..., :3] * x[..., 3:] / 255, x[..., 3:]], axis=2)
    seen_y = np.concatenate([y[..., :3] * y[..., 3:] / 255, y[..., 3:]], axis=2)
    return float(np.abs(seen_x - seen_y).mean())


@pytest.mark.parametrize("case", sorted(FORMAT_CASES))
def test_every_large_format_gets_a_preview_that_renders_like_its_original(
    app, client, tenant, case
):
    data = FORMAT_CASES[case]()
    image = put(client, tenant.headers(), data, f"{case}.img")
    assert run_queued(app) == ["done"]
    preview = stored_preview(app, image["sha256"])
    assert preview is not None and max(preview.size) == PREVIEW_SIDE
    assert preview.format == "PNG" and preview.mode in ("L", "LA", "RGB", "RGBA")
    assert preview.mode in ("LA", "RGBA") or not image["has_alpha"], "alpha lost"
    for params in EQUIVALENCE_CASES:
        reference = direct(data, **params)
        with observing() as decodes:
            shot, _ = fetch(client, tenant.headers(), image["id"], **params)
        assert sources(decodes) == ["preview"], params
        assert shot.size == reference.size and shot.mode == reference.mode, params
        assert premultiplied_difference(shot, reference) < 1.0, (case, params)


def test_a_preview_keeps_only_orientation_and_profile(app, client, tenant):
    data = _encoded(_photo(), "PNG", icc_profile=_icc(), pnginfo=_text_chunk("secret", "1 Lane"))
    image = put(client, tenant.headers(), data)
    run_queued(app)
    with services_of(app).blob_store.open(preview_key(image["sha256"])) as f:
        raw = f.read()
    assert b"1 Lane" not in raw
    preview = Image.open(io.BytesIO(raw))
    assert preview.info.get("icc_profile") == _icc()
    assert not preview.getexif()


def _text_chunk(key: str, value: str):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text(key, value)
    return info


def test_an_animated_rendition_never_starts_from_the_still_preview(app, client, tenant):
    image = put(client, tenant.headers(), _gif(), "anim.gif")
    run_queued(app)
    with observing() as decodes:
        response = client.get(
            f"/images/{image['id']}/render",
            query_string={"width": 128, "format": "webp", "animated": "true"},
            headers=tenant.headers(),
        )
    assert response.status_code == 200
    assert sources(decodes) == ["original"]
    assert Image.open(io.BytesIO(response.data)).n_frames == 2


def test_a_large_jpeg_uploaded_with_previews_off_gets_one_from_analyze(app_config):
    app = make_app(app_config | {"RENDITION_PREVIEWS": False})
    try:
        tenant = create_tenant(app)
        client = app.test_client()
        image = put(client, tenant.headers(), large_jpeg("orientation/Landscape_1.jpg"))
        assert image["analyses"] == [] and run_queued(app) == []
    finally:
        services_of(app).engine.dispose()
    app = make_app(app_config)  # previews on again
    try:
        result = app.test_cli_runner().invoke(args=["analyze", "--json"])
        assert json.loads(result.output)["by_kind"] == {"preview": 1}
        assert run_queued(app) == ["done"]
        preview = stored_preview(app, image["sha256"])
        assert preview.format == "JPEG"  # an L or RGB JPEG's preview is a JPEG, as at upload
        with observing() as decodes:
            fetch(app.test_client(), tenant.headers(), image["id"], width=200)
        assert sources(decodes) == ["preview"]
    finally:
        services_of(app).engine.dispose()


@pytest.mark.parametrize("scale", [2.0, 1.713])  # 3600 x 2400; 3083 x 2056, no side divides by 8
def test_small_renditions_start_from_the_preview_and_match_the_original(client, tenant, scale):
    data = large_jpeg("orientation/Landscape_1.jpg", scale=scale)
    image = put(client, tenant.headers(), data)
    cases = [
        {"width": 256, "format": "png"},
        {"width": 300, "height": 300, "fit": "cover", "gravity": "east", "format": "png"},
        {"width": 300, "height": 100, "fit": "fill", "format": "png"},
    ]
    for params in cases:
        reference = direct(data, **params)
        with observing() as decodes:
            shot, _ = fetch(client, tenant.headers(), image["id"], **params)
        assert sources(decodes) == ["preview"], params
        assert shot.size == reference.size, params
        assert mean_difference(shot, reference) < 1.0, params


def test_renditions_needing_more_pixels_than_the_preview_decode_the_original(client, tenant):
    data = large_jpeg("orientation/Landscape_1.jpg", scale=2.0)  # 3600 x 2400
    image = put(client, tenant.headers(), data)
    for params in (
        {"width": 1024, "format": "png"},  # needs 2048 px across: the preview has 1024
        # 2400 x 2400 cropped to 400 x 400 needs 800 source rows: the preview has 683
        {"width": 400, "height": 400, "fit": "cover", "format": "png"},
    ):
        expected = direct(data, **params).size
        with observing() as decodes:
            shot, _ = fetch(client, tenant.headers(), image["id"], **params)
        assert sources(decodes) == ["original"], params
        assert shot.size == expected


@pytest.mark.parametrize("kind", ["Landscape", "Portrait"])
def test_every_orientation_renders_upright_from_its_preview(client, tenant, kind):
    shots = {}
    for n in range(1, 9):
        data = large_jpeg(f"orientation/{kind}_{n}.jpg")
        image = put(client, tenant.headers(), data, f"{kind}_{n}.jpg")
        with observing() as decodes:
            shots[n], _ = fetch(client, tenant.headers(), image["id"], width=300, format="png")
        assert sources(decodes) == ["preview"]
    for n, shot in shots.items():
        assert shot.size == shots[1].size
        assert mean_difference(shot, shots[1]) < 8, f"{kind}_{n} is not upright"


def test_a_preview_keeps_the_icc_profile_so_colours_match(app, client, tenant):
    data = large_jpeg("valid/icc_profile_big.jpg", scale=6.0)  # 2550 x 1500, wide-gamut profile
    image = put(client, tenant.headers(), data)
    preview = stored_preview(app, image["sha256"])
    assert preview.info.get("icc_profile") == Image.open(io.BytesIO(data)).info["icc_profile"]
    shot, _ = fetch(client, tenant.headers(), image["id"], width=256, format="png")
    assert "icc_profile" not in shot.info  # renditions are sRGB and untagged
    assert mean_difference(shot, direct(data, width=256, format="png")) < 1.0


def test_a_damaged_or_missing_preview_only_costs_speed(app, client, tenant):
    data = large_jpeg("orientation/Landscape_1.jpg")
    image = put(client, tenant.headers(), data)
    store = services_of(app).blob_store
    store.put(preview_key(image["sha256"]), io.BytesIO(b"\xff\xd8\xff garbage"))
    with observing() as decodes:
        fetch(client, tenant.headers(), image["id"], width=200, format="png")
        assert sources(decodes) == ["original"]
        assert not store.exists(preview_key(image["sha256"]))  # removed, to be made again
        fetch(client, tenant.headers(), image["id"], width=201, format="png")
    assert sources(decodes) == ["original", "original"]


def test_previews_can_be_turned_off_and_made_later(app_config):
    app = make_app(app_config | {"RENDITION_PREVIEWS": False})
    try:
        tenant = create_tenant(app)
        client = app.test_client()
        image = put(client, tenant.headers(), large_jpeg("orientation/Landscape_1.jpg"))
        put(client, tenant.headers(), corpus_path("valid/hopper.jpg").read_bytes(), "small.jpg")
        assert stored_preview(app, image["sha256"]) is None
        with observing() as decodes:
            fetch(client, tenant.headers(), image["id"], width=200)
        assert sources(decodes) == ["original"]

        runner = app.test_cli_runner()
        made = runner.invoke(args=["previews", "--json"])
        assert made.exit_code == 0, made.output
        assert json.loads(made.output) == {
            "made": 1,
            "present": 0,
            "skipped": 0,
            "missing": [],
            "failed": [],
        }
        assert stored_preview(app, image["sha256"]).size == (PREVIEW_SIDE, 683)
        with observing() as decodes:
            fetch(client, tenant.headers(), image["id"], width=201)
        assert sources(decodes) == ["preview"]
        again = runner.invoke(args=["previews", "--json"])
        assert json.loads(again.output)["present"] == 1 and json.loads(again.output)["made"] == 0

        store = services_of(app).blob_store
        store.delete(preview_key(image["sha256"]))
        store.delete(blob_key(image["sha256"]))
        broken = runner.invoke(args=["previews", "--json"])
        assert broken.exit_code == 1
        assert json.loads(broken.output)["missing"] == [image["sha256"]]
    finally:
        services_of(app).engine.dispose()


def test_gc_removes_the_preview_with_its_original(app, client, tenant):
    image = put(client, tenant.headers(), large_jpeg("orientation/Landscape_1.jpg"))
    sha = image["sha256"]
    fetch(client, tenant.headers(), image["id"], width=100)
    assert client.delete(f"/images/{image['id']}", headers=tenant.headers()).status_code == 204
    result = app.test_cli_runner().invoke(args=["gc", "--grace", "0s", "--trash-days", "0"])
    assert result.exit_code == 0, result.output
    store = services_of(app).blob_store
    assert not store.exists(blob_key(sha))
    assert not store.exists(preview_key(sha))
    assert list(store.iter_keys("renditions/")) == []


def test_a_truncated_large_jpeg_is_still_refused(app, client, tenant):
    # Large JPEGs are validated by a DCT-scaled decode: cut-off data must still fail it.
    data = large_jpeg("orientation/Landscape_1.jpg")
    response = upload(client, tenant.headers(), data[: len(data) * 2 // 3], "cut.jpg")
    assert response.status_code == 422, response.json
    assert list(services_of(app).blob_store.iter_keys("")) == []


def test_nothing_but_the_orientation_and_colour_profile_reaches_a_preview(app, client, tenant):
    secret = b"home address: 1 Secret Lane"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + secret + b"</x:xmpmeta>"
    data = large_jpeg("valid/exif_gps.jpg", scale=300.0, comment=secret, xmp=xmp)  # 2400 px
    assert secret in data and Image.open(io.BytesIO(data)).getexif()
    image = put(client, tenant.headers(), data)
    store = services_of(app).blob_store
    with store.open(preview_key(image["sha256"])) as f:
        raw = f.read()
    assert secret not in raw
    preview = Image.open(io.BytesIO(raw))
    assert set(preview.getexif()) <= {0x0112}  # no GPS, camera or date
    assert not preview.getexif().get_ifd(0x8825)
    assert "comment" not in preview.info and "xmp" not in preview.info


def test_the_preview_is_only_looked_for_when_it_could_serve():
    landscape, portrait = (3600, 2400), (2400, 3600)
    assert preview_may_serve(landscape, RenderParams(width=256))
    assert preview_may_serve(portrait, RenderParams(width=256))  # either orientation
    assert not preview_may_serve(landscape, RenderParams(width=1024))
    assert not preview_may_serve(landscape, RenderParams())  # a format conversion: full size
    assert not preview_may_serve((1800, 1200), RenderParams(width=64))  # too small for one
