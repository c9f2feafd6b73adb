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
from tests.support.images import upload


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


def test_small_and_cmyk_jpegs_and_other_formats_get_no_preview(app, client, tenant):
    small = put(client, tenant.headers(), corpus_path("orientation/Landscape_1.jpg").read_bytes())
    assert stored_preview(app, small["sha256"]) is None
    with Image.open(corpus_path("orientation/Landscape_1.jpg")) as im:
        big = im.resize((2400, 1600))
    cmyk, png = io.BytesIO(), io.BytesIO()
    big.convert("CMYK").save(cmyk, "JPEG", quality=90)
    big.save(png, "PNG", compress_level=1)
    for data, name in ((cmyk.getvalue(), "cmyk.jpg"), (png.getvalue(), "big.png")):
        image = put(client, tenant.headers(), data, name)
        assert stored_preview(app, image["sha256"]) is None, name


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
