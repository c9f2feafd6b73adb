"""Decode limits: no file may hold a worker for long, at upload or at render.

Scans, frames and decoded pixels are refused before decoding (413 at upload,
422 for a rendition), and a decode past IMAGE_REPO_DECODE_TIMEOUT ends in a
422. The hostile files are built here (see hostile.py), small.
"""

from __future__ import annotations

import io
import random
import re

import pytest
from PIL import Image, ImageChops

from image_repo.http.context import services_of
from image_repo.imaging import loading
from image_repo.imaging.formats import ACCEPTED_FORMATS  # registers the HEIF plugin
from image_repo.imaging.limits import Deadline, DecodeLimits, DecodeTimeout, LimitExceeded
from image_repo.imaging.probe import ImageRejected, probe
from image_repo.imaging.render import RenderParams, render
from image_repo.imaging.survey import survey
from tests.support.corpus import corpus_files, corpus_path
from tests.support.hostile import (
    animation,
    jpeg_scan_count,
    jpeg_segments,
    many_frame_gif,
    many_page_tiff,
    many_scan_jpeg,
    progressive_jpeg,
    tiny_jpeg_claiming,
)
from tests.support.images import upload

assert "HEIF" in ACCEPTED_FORMATS


@pytest.fixture
def editor(tenant):
    return tenant.headers("editor")


def assert_refused(app, client, editor, response, status: int, reason: str, words: str) -> None:
    assert response.status_code == status, response.json
    assert response.json["code"] == status
    assert response.json["errors"] == {"image": [reason]}
    assert words in response.json["message"]
    assert client.get("/images", headers=editor).json["items"] == []
    assert list(services_of(app).blob_store.iter_keys()) == []


# --- A.1: JPEG scans ----------------------------------------------------------


def test_a_jpeg_with_more_scans_than_the_limit_is_refused_at_upload(app, client, editor):
    data = many_scan_jpeg((256, 256), 150)
    assert jpeg_scan_count(data) > 100  # the default limit
    response = upload(client, editor, data, "scans.jpg")
    assert_refused(app, client, editor, response, 413, "too_many_scans", "100 scans")


def test_the_scan_limit_is_exact_and_configurable():
    data = many_scan_jpeg((64, 64), 20)
    scans = jpeg_scan_count(data)
    assert probe(io.BytesIO(data), limits=DecodeLimits(max_jpeg_scans=scans)).format == "JPEG"
    with pytest.raises(ImageRejected) as refused:
        probe(io.BytesIO(data), limits=DecodeLimits(max_jpeg_scans=scans - 1))
    assert refused.value.reason == "too_many_scans"


def test_real_progressive_jpegs_are_far_below_the_scan_limit():
    for mode in ("L", "RGB", "CMYK"):
        data = progressive_jpeg((64, 48), mode)
        assert jpeg_scan_count(data) <= 20
        assert probe(io.BytesIO(data)).format == "JPEG"


# --- A.2 and A.3: frames and pages ---------------------------------------------


def test_a_tiff_with_more_pages_than_the_limit_is_refused_at_upload(app, client, editor):
    response = upload(client, editor, many_page_tiff(1001), "pages.tif")
    assert_refused(app, client, editor, response, 413, "too_many_frames", "1,000")
    assert "pages" in response.json["message"]


def test_a_gif_with_more_frames_than_the_limit_is_refused_at_upload(app, client, editor):
    response = upload(client, editor, many_frame_gif(1001), "frames.gif")
    assert_refused(app, client, editor, response, 413, "too_many_frames", "1,000")


def test_at_the_frame_limit_a_file_is_accepted(client, editor):
    for data, name in ((many_frame_gif(1000), "f.gif"), (many_page_tiff(1000), "p.tif")):
        response = upload(client, editor, data, name)
        assert response.status_code == 201, response.json
        assert response.json["frames"] == 1000


@pytest.mark.parametrize("fmt", ["WEBP", "PNG", "AVIF", "HEIF", "MPO", "TIFF", "GIF"])
def test_every_format_with_frames_is_bounded(app, client, editor, fmt):
    app.config["MAX_FRAMES"] = 3
    response = upload(client, editor, animation(fmt, 4), f"frames.{fmt.lower()}")
    assert_refused(app, client, editor, response, 413, "too_many_frames", "limit of 3")
    ok = upload(client, editor, animation(fmt, 3), f"ok.{fmt.lower()}")
    assert ok.status_code == 201, ok.json
    assert ok.json["frames"] == 3


def test_an_animated_rendition_is_bounded_by_the_pixels_it_decodes(app, client, tenant, editor):
    # 200 frames of 100x100: 2 megapixels decoded for a 1x1 animated rendition.
    created = upload(client, editor, many_frame_gif(200, (100, 100)), "anim.gif")
    assert created.status_code == 201, created.json
    app.config["MAX_DECODED_PIXELS"] = 1_000_000
    url = f"/images/{created.json['id']}/render"
    query = {"width": 1, "height": 1, "animated": "true", "format": "webp"}
    response = client.get(url, query_string=query, headers=tenant.headers("reader"))
    assert response.status_code == 422, response.json
    assert response.json["errors"] == {"image": ["too_many_decoded_pixels"]}
    assert "megapixels" in response.json["message"]
    # Its first frame alone is well within the bound.
    still = client.get(url, query_string={**query, "animated": "false"}, headers=editor)
    assert still.status_code == 200


def test_a_rendition_of_an_original_over_a_lowered_frame_limit_is_refused(app, client, editor):
    created = upload(client, editor, many_frame_gif(50, (4, 4)), "anim.gif")
    assert created.status_code == 201
    app.config["MAX_FRAMES"] = 10
    response = client.get(
        f"/images/{created.json['id']}/render",
        query_string={"animated": "true", "format": "webp"},
        headers=editor,
    )
    assert response.status_code == 422, response.json
    assert response.json["errors"] == {"image": ["too_many_frames"]}


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP", "TIFF", "WEBP"])
def test_tiny_files_claiming_huge_sizes_are_refused(client, editor, fmt):
    header_only = {
        "PNG": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x00\x00\x00\x00",
        "GIF": b"GIF89a\xff\xff\xff\xff\x00\x00\x00" + b"\x2c\x00\x00\x00\x00\xff\xff\xff\xff\x00\x02\x02\x44\x01\x00;",
        "BMP": b"BM" + bytes(12) + (40).to_bytes(4, "little") + (100000).to_bytes(4, "little") * 2 + b"\x01\x00\x18\x00" + bytes(24),
        "TIFF": many_page_tiff(1).replace(b"\x00\x01\x03\x00\x01\x00\x00\x00\x01\x00", b"\x00\x01\x04\x00\x01\x00\x00\x00\xa0\x86", 1),
        "WEBP": b"RIFF\x1e\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\xff\xff\x00",
    }[fmt]  # fmt: skip
    response = upload(client, editor, header_only, "huge")
    assert 400 <= response.status_code < 500, response.json
    assert response.status_code in (413, 415, 422)


# --- the time cap -------------------------------------------------------------


def slow_jpeg() -> bytes:
    """Within every bound (96 scans, 9 megapixels), but ten times the time cap the tests set."""
    return many_scan_jpeg((3000, 3000), 90)


def test_an_upload_that_decodes_longer_than_the_limit_is_refused(app, client, editor):
    app.config["DECODE_TIMEOUT"] = 0.05
    response = upload(client, editor, slow_jpeg(), "slow.jpg")
    assert_refused(app, client, editor, response, 422, "decode_timeout", "0.05 seconds")


def test_a_rendition_that_decodes_longer_than_the_limit_is_refused(app, client, tenant, editor):
    created = upload(client, editor, slow_jpeg(), "slow.jpg")
    assert created.status_code == 201, created.json
    app.config["DECODE_TIMEOUT"] = 0.05
    response = client.get(
        f"/images/{created.json['id']}/render",
        query_string={"width": 2000, "format": "png"},
        headers=tenant.headers("reader"),
    )
    assert response.status_code == 422, response.json
    assert response.json["errors"] == {"image": ["decode_timeout"]}


def test_the_time_cap_holds_for_every_decode(tmp_path):
    # The limit: raised between chunks of data, whatever the format.
    slow = tmp_path / "slow.jpg"
    slow.write_bytes(slow_jpeg())
    limits = DecodeLimits(decode_seconds=0.05)
    with pytest.raises(ImageRejected) as refused:
        probe(slow, limits=limits)
    assert refused.value.reason == "decode_timeout"
    with pytest.raises(DecodeTimeout):
        render(slow, RenderParams(format="png"), io.BytesIO(), limits=limits)


def test_render_checks_bounds_before_decoding(tmp_path):
    path = tmp_path / "frames.gif"
    path.write_bytes(many_frame_gif(30))
    params = RenderParams(format="webp", animated=True)
    with pytest.raises(LimitExceeded) as refused:
        render(path, params, io.BytesIO(), limits=DecodeLimits(max_frames=20))
    assert refused.value.reason == "too_many_frames"
    scans = tmp_path / "scans.jpg"
    scans.write_bytes(many_scan_jpeg((64, 64), 30))
    with pytest.raises(LimitExceeded) as refused:
        render(
            scans, RenderParams(format="png"), io.BytesIO(), limits=DecodeLimits(max_jpeg_scans=20)
        )
    assert refused.value.reason == "too_many_scans"


# --- item 8: a truncated JPEG stays truncated whatever follows ----------------


def test_a_tiny_jpeg_claiming_100_megapixels_is_refused(app, client, editor):
    data = tiny_jpeg_claiming((10000, 10000))
    assert len(data) < 400
    response = upload(client, editor, data, "tiny.jpg")
    assert_refused(app, client, editor, response, 422, "corrupt", "incomplete")


def camera_photo() -> bytes:
    return corpus_path("orientation/Landscape_1.jpg").read_bytes()


def photo(options: dict, mode: str = "RGB", size: tuple[int, int] = (400, 300)) -> bytes:
    """A photo-like picture (gradients and noise), encoded with ``options``."""
    rng = random.Random(size[0])
    gradient = Image.linear_gradient("L").resize(size)
    noise = Image.frombytes("L", size, bytes(rng.randrange(256) for _ in range(size[0] * size[1])))
    grey = Image.blend(gradient, noise, 0.3)
    picture = Image.merge("RGB", (grey, grey.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise))
    out = io.BytesIO()
    picture.convert(mode).save(out, "JPEG", quality=85, **options)
    return out.getvalue()


ENCODINGS = [
    {},
    {"progressive": True},
    {"subsampling": 0},
    {"optimize": True},
    {"restart_marker_blocks": 7},
    {"restart_marker_rows": 1, "progressive": True},
]
TAILS = {
    "end marker": b"\xff\xd9",
    "comment and end marker": b"\xff\xfe\x00\x06junk\xff\xd9",
    "zero bytes and end marker": b"\x00" * 16 + b"\xff\xd9",
    "restart marker and end marker": b"\xff\xd0\xff\xd9",
    "a second end marker": b"\xff\xd9\xff\xd9",
}


@pytest.mark.parametrize("tail", list(TAILS.values()), ids=list(TAILS))
def test_a_camera_photo_cut_to_a_tenth_is_incomplete_whatever_follows(app, client, editor, tail):
    data = camera_photo()
    response = upload(client, editor, data[: len(data) // 10] + tail, "cut.jpg")
    assert_refused(app, client, editor, response, 422, "corrupt", "incomplete")


@pytest.mark.parametrize("options", ENCODINGS, ids=lambda o: ",".join(o) or "baseline")
@pytest.mark.parametrize("mode", ["L", "RGB", "CMYK"])
def test_jpegs_cut_anywhere_with_an_end_marker_are_incomplete(options, mode):
    data = photo(options, mode)
    assert probe(io.BytesIO(data)).format == "JPEG"  # whole, it is accepted
    for fraction in (0.05, 0.2, 0.4, 0.6, 0.8, 0.9):
        for tail in TAILS.values():
            with pytest.raises(ImageRejected) as refused:
                probe(io.BytesIO(data[: int(len(data) * fraction)] + tail))
            assert refused.value.reason == "corrupt", (fraction, tail)


def test_a_progressive_jpeg_cut_between_two_scans_is_incomplete():
    data = photo({"progressive": True})
    scans = [start for marker, start, _ in jpeg_segments(data) if marker == 0xDA]
    for start in scans[1:]:
        with pytest.raises(ImageRejected) as refused:
            probe(io.BytesIO(data[:start] + b"\xff\xd9"))
        assert refused.value.reason == "corrupt"


def test_a_jpeg_cut_between_two_restart_intervals_is_incomplete():
    data = photo({"restart_marker_rows": 1})
    restarts = [m.start() for m in re.finditer(rb"\xff[\xd0-\xd7]", data)]
    assert len(restarts) > 10
    for start in restarts[::5]:
        for cut in (start, start + 2):  # before or after the restart marker
            with pytest.raises(ImageRejected) as refused:
                probe(io.BytesIO(data[:cut] + b"\xff\xd9"))
            assert refused.value.reason == "corrupt"


def decoded_scan_by_scan(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    loading.load(im, survey(io.BytesIO(data), DecodeLimits(), Deadline(60)), Deadline(60))
    return im


def pillows_decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.mark.parametrize("options", ENCODINGS, ids=lambda o: ",".join(o) or "baseline")
@pytest.mark.parametrize("mode", ["L", "RGB", "CMYK"])
def test_feeding_the_decoder_scan_by_scan_changes_no_pixel(options, mode):
    data = photo(options, mode)
    assert decoded_scan_by_scan(data).tobytes() == pillows_decode(data).tobytes()


CORPUS_JPEGS = [n for n in corpus_files("accept") if n.endswith((".jpg", ".mpo"))]


@pytest.mark.parametrize("name", CORPUS_JPEGS)
def test_every_corpus_jpeg_is_accepted_with_its_pixels(name):
    data = corpus_path(name).read_bytes()
    assert probe(io.BytesIO(data)).format in ("JPEG", "MPO")
    ours, pillows = decoded_scan_by_scan(data), pillows_decode(data)
    assert ours.size == pillows.size
    # Whole scans decode alike. A scan lacking a few blocks (hopper_bad_exif.jpg
    # lacks one) is accepted: the filler completes them where libjpeg writes zeros.
    differ = ImageChops.difference(ours.convert("RGB"), pillows.convert("RGB")).getbbox()
    if differ is not None:
        left, top, right, bottom = differ
        assert (right - left) * (bottom - top) <= 4 * 64, (name, differ)
