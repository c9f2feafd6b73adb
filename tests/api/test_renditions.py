"""Thumbnails, renditions, their cache, and similar images, through the API."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, ImageChops, ImageStat

from image_repo.http.context import services_of
from image_repo.imaging.render import observing
from tests.conftest import create_tenant, make_app
from tests.support.corpus import corpus_files, corpus_path, manifest
from tests.support.images import upload


def put(client, headers, name):
    response = upload(client, headers, corpus_path(name).read_bytes(), name.rsplit("/", 1)[-1])
    assert response.status_code in (200, 201), response.json
    return response.json


def picture(response) -> Image.Image:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return Image.open(io.BytesIO(response.data))


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB").resize(a.size))
    return sum(ImageStat.Stat(diff).mean) / 3


@pytest.mark.parametrize(
    ("size", "edge"), [("small", 128), ("thumb", 256), ("medium", 512), ("large", 1024)]
)
def test_thumbnail_presets(client, tenant, size, edge):
    image = put(client, tenant.headers(), "orientation/Landscape_1.jpg")
    thumb = picture(
        client.get(
            f"/images/{image['id']}/thumbnail",
            query_string={"size": size},
            headers=tenant.headers("reader"),
        )
    )
    assert max(thumb.size) == edge
    assert thumb.format == "WEBP"


def test_thumbnail_never_upscales_a_small_image(client, tenant):
    image = put(client, tenant.headers(), "valid/hopper.jpg")  # 128 x 128
    thumb = picture(
        client.get(
            f"/images/{image['id']}/thumbnail",
            query_string={"size": "large"},
            headers=tenant.headers(),
        )
    )
    assert thumb.size == (128, 128)


@pytest.mark.parametrize("kind", ["Landscape", "Portrait"])
def test_every_orientation_renders_upright_and_alike(client, tenant, kind):
    headers = tenant.headers()
    reference = None
    for n in range(9):
        name = f"orientation/{kind}_{n}.jpg"
        image = put(client, headers, name)
        expected = manifest()[name]
        assert (image["width"], image["height"]) == (expected["width"], expected["height"])
        shot = picture(
            client.get(
                f"/images/{image['id']}/render",
                query_string={"width": 300, "format": "png"},
                headers=headers,
            )
        )
        assert shot.size[0] == 300
        assert abs(shot.size[1] / shot.size[0] - expected["height"] / expected["width"]) < 0.01
        if n == 1:
            reference = shot
    for n in range(9):
        image = client.get("/images", query_string={"q": f"{kind}_{n}."}, headers=headers).json[
            "items"
        ][0]
        shot = picture(
            client.get(
                f"/images/{image['id']}/render",
                query_string={"width": 300, "format": "png"},
                headers=headers,
            )
        )
        assert mean_difference(shot, reference) < 8, f"{kind}_{n} is not upright"
    # The same check tells a wrong rotation apart.
    assert mean_difference(reference.transpose(Image.Transpose.ROTATE_180), reference) > 8


@pytest.mark.parametrize("name", corpus_files("accept"))
def test_every_accepted_file_renders_to_every_format(client, tenant, name):
    image = put(client, tenant.headers(), name)
    for fmt in ("jpeg", "png", "webp", "avif"):
        response = client.get(
            f"/images/{image['id']}/render",
            query_string={"width": 48, "format": fmt},
            headers=tenant.headers(),
        )
        assert response.status_code == 200, (fmt, response.get_data(as_text=True)[:200])
        assert response.mimetype == f"image/{fmt}"
        assert Image.open(io.BytesIO(response.data)).format == fmt.upper().replace("JPEG", "JPEG")


def test_cache_serves_without_decoding_and_honours_if_none_match(client, tenant):
    image = put(client, tenant.headers(), "valid/flower.jpg")
    url = f"/images/{image['id']}/render"
    query = {"width": 100, "format": "jpeg"}
    first = client.get(url, query_string=query, headers=tenant.headers())
    assert first.headers["X-Rendition-Cache"] == "miss"
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    with observing() as decodes:
        second = client.get(
            url,
            query_string={"format": "jpg", "width": 100, "quality": 82},
            headers=tenant.headers(),
        )
        assert second.headers["X-Rendition-Cache"] == "hit"
        assert decodes == []  # served from the store, nothing decoded
        assert second.data == first.data and second.headers["ETag"] == first.headers["ETag"]
        cached = client.get(
            url,
            query_string=query,
            headers={**tenant.headers(), "If-None-Match": first.headers["ETag"]},
        )
        assert cached.status_code == 304 and cached.data == b""
    assert decodes == []


def test_concurrent_requests_compute_a_missing_rendition_once(app, tenant):
    client = app.test_client()
    image = put(client, tenant.headers(), "orientation/Portrait_5.jpg")

    def fetch(_):
        return app.test_client().get(
            f"/images/{image['id']}/render", query_string={"width": 333}, headers=tenant.headers()
        )

    with observing() as decodes, ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(fetch, range(12)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.data for r in responses}) == 1
    assert len(decodes) == 1
    assert [r.headers["X-Rendition-Cache"] for r in responses].count("miss") == 1


def test_renditions_carry_no_metadata(client, tenant):
    image = put(client, tenant.headers(), "valid/exif_gps.jpg")
    for fmt in ("jpeg", "png", "webp", "avif"):
        shot = picture(
            client.get(
                f"/images/{image['id']}/render",
                query_string={"format": fmt},
                headers=tenant.headers(),
            )
        )
        assert not shot.getexif(), fmt
        assert "exif" not in shot.info and "xmp" not in shot.info


def test_transparency_kept_or_flattened_on_the_background(client, tenant):
    source = Image.new("RGBA", (40, 20), (0, 0, 255, 255))
    source.paste((0, 0, 0, 0), (0, 0, 20, 20))  # left half fully transparent
    data = io.BytesIO()
    source.save(data, "PNG")
    image = upload(client, tenant.headers(), data.getvalue(), "half.png").json
    url = f"/images/{image['id']}/render"
    png = picture(client.get(url, query_string={"format": "png"}, headers=tenant.headers()))
    assert png.mode == "RGBA" and png.getpixel((5, 10))[3] == 0 and png.getpixel((35, 10))[3] == 255
    query = {"format": "jpeg", "background": "#ff0000"}
    jpeg = picture(client.get(url, query_string=query, headers=tenant.headers()))
    assert jpeg.mode == "RGB"
    r, g, b = jpeg.getpixel((5, 10))
    assert r > 200 and g < 60 and b < 60
    r, g, b = jpeg.getpixel((35, 10))
    assert b > 200 and r < 60


def test_animation_first_frame_or_kept(client, tenant):
    image = put(client, tenant.headers(), "valid/iss634.gif")
    assert image["animated"]
    still = picture(
        client.get(
            f"/images/{image['id']}/render",
            query_string={"format": "webp"},
            headers=tenant.headers(),
        )
    )
    assert getattr(still, "n_frames", 1) == 1
    moving = picture(
        client.get(
            f"/images/{image['id']}/render",
            query_string={"format": "webp", "animated": "true"},
            headers=tenant.headers(),
        )
    )
    assert moving.n_frames > 1


def test_upscaling_only_when_allowed(app_config):
    for allowed in (False, True):
        app = make_app({**app_config, "RENDER_ALLOW_UPSCALE": allowed})
        tenant = create_tenant(app)
        client = app.test_client()
        image = put(client, tenant.headers(), "valid/hopper.jpg")
        response = client.get(
            f"/images/{image['id']}/render",
            query_string={"width": 256, "upscale": "true"},
            headers=tenant.headers(),
        )
        if allowed:
            assert picture(response).size == (256, 256)
        else:
            assert response.status_code == 422
        plain = picture(
            client.get(
                f"/images/{image['id']}/render",
                query_string={"width": 256},
                headers=tenant.headers(),
            )
        )
        assert plain.size == (128, 128)


@pytest.mark.parametrize(
    "query",
    [
        {"width": 0},
        {"width": 5000},
        {"height": -1},
        {"quality": 101},
        {"fit": "squash"},
        {"gravity": "up"},
        {"format": "gif"},
        {"fit": "cover", "width": 10},
        {"background": "red"},
    ],
)
def test_bad_render_parameters_are_422(client, tenant, query):
    image = put(client, tenant.headers(), "valid/hopper.jpg")
    response = client.get(
        f"/images/{image['id']}/render", query_string=query, headers=tenant.headers()
    )
    assert response.status_code == 422
    assert response.json["message"]


def test_gc_removes_renditions_with_their_original(app, client, tenant):
    store = services_of(app).blob_store
    image = put(client, tenant.headers(), "valid/hopper.png")
    client.get(f"/images/{image['id']}/thumbnail", headers=tenant.headers())
    assert list(store.iter_keys("renditions/"))
    client.delete(f"/images/{image['id']}", headers=tenant.headers())
    result = app.test_cli_runner().invoke(args=["gc", "--grace", "0s", "--trash-days", "0"])
    assert result.exit_code == 0
    assert list(store.iter_keys()) == []


def test_renditions_of_another_tenants_image_are_404(client, tenant, other_tenant):
    image = put(client, tenant.headers(), "valid/hopper.png")
    for path in ("thumbnail", "render", "similar"):
        assert (
            client.get(f"/images/{image['id']}/{path}", headers=other_tenant.headers()).status_code
            == 404
        )


def test_similar_images_find_the_same_photo_stored_eight_ways(client, tenant, other_tenant):
    headers = tenant.headers()
    landscapes = [put(client, headers, f"orientation/Landscape_{n}.jpg") for n in range(9)]
    portrait = put(client, headers, "orientation/Portrait_1.jpg")
    other = put(client, headers, "valid/hopper.jpg")
    put(client, other_tenant.headers(), "orientation/Landscape_2.jpg")
    found = client.get(
        f"/images/{landscapes[1]['id']}/similar", query_string={"max_distance": 6}, headers=headers
    ).json
    ids = [item["image"]["id"] for item in found["items"]]
    assert set(ids) == {i["id"] for i in landscapes} - {landscapes[1]["id"]}
    distances = [item["distance"] for item in found["items"]]
    assert distances == sorted(distances)
    assert portrait["id"] not in ids and other["id"] not in ids
    far = client.get(
        f"/images/{landscapes[1]['id']}/similar", query_string={"max_distance": 64}, headers=headers
    ).json
    assert other["id"] in [item["image"]["id"] for item in far["items"]]
    assert len(far["items"]) == 10  # only this tenant's images
    assert (
        client.get(
            f"/images/{landscapes[1]['id']}/similar",
            query_string={"max_distance": 65},
            headers=headers,
        ).status_code
        == 422
    )


def test_blurhash_comes_with_the_metadata(client, tenant):
    image = put(client, tenant.headers(), "valid/flower.jpg")
    assert isinstance(image["blurhash"], str) and len(image["blurhash"]) >= 6
