"""POST /images: validation by decoding, dedup, limits, quotas, nothing stored on failure."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from image_repo.db.models import Image
from image_repo.http.context import services_of
from image_repo.storage import StorageError
from tests.conftest import create_tenant, make_app
from tests.support.corpus import corpus_path
from tests.support.images import png_bytes, upload


def image_rows(app) -> int:
    session = services_of(app).sessions()
    try:
        return session.scalar(select(func.count(Image.id)))
    finally:
        session.close()


def blob_count(app) -> int:
    return len(list(services_of(app).blob_store.iter_keys("originals/")))


def test_upload_returns_201_with_metadata_and_location(client, tenant):
    data = png_bytes(1)
    response = upload(
        client,
        tenant.headers("contributor"),
        data,
        "holiday.png",
        title="Beach",
        description="Sand",
        tags="sea,sun",
        taken_at="2024-05-01T10:00:00+02:00",
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert response.headers["Location"].endswith(f"/images/{body['id']}")
    assert body["filename"] == "holiday.png"
    assert body["title"] == "Beach" and body["description"] == "Sand"
    assert body["tags"] == ["sea", "sun"]
    assert body["taken_at"] == "2024-05-01T10:00:00+02:00" and body["taken_at_offset_known"]
    assert body["format"] == "PNG" and body["mime_type"] == "image/png"
    assert (body["width"], body["height"]) == (16, 12)
    assert body["bytes"] == len(data)
    import hashlib

    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["blurhash"] and len(body["phash"]) == 16


def test_repeated_tag_fields_are_accepted(client, tenant):
    form = {"image": (io.BytesIO(png_bytes(2)), "a.png"), "tags": ["one", "two, three"]}
    response = client.post("/images", data=form, headers=tenant.headers())
    assert response.json["tags"] == ["one", "two", "three"]


def test_same_bytes_again_returns_the_existing_image_with_200(app, client, tenant):
    data = png_bytes(3)
    first = upload(client, tenant.headers(), data, "a.png")
    again = upload(client, tenant.headers(), data, "other-name.png", title="ignored")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json["id"] == first.json["id"]
    assert image_rows(app) == 1 and blob_count(app) == 1


def test_two_tenants_with_the_same_bytes_get_their_own_images(app, client, tenant, other_tenant):
    data = png_bytes(4)
    mine = upload(client, tenant.headers(), data)
    theirs = upload(client, other_tenant.headers(), data)
    # Neither learns of the other: both are fresh uploads for their tenant.
    assert mine.status_code == 201 and theirs.status_code == 201
    assert mine.json["id"] != theirs.json["id"]
    assert image_rows(app) == 2 and blob_count(app) == 1
    listed = client.get("/images", headers=other_tenant.headers()).json["items"]
    assert [i["id"] for i in listed] == [theirs.json["id"]]


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("invalid/script.svg", 415),
        ("invalid/page.html", 415),
        ("invalid/pil_sample_cmyk.eps", 415),
        ("invalid/text.png", 415),
        ("invalid/empty.jpg", 415),
        ("invalid/truncated_jpeg.jpg", 422),
        ("invalid/cut_in_half.jpg", 422),
    ],
)
def test_bad_files_are_refused_and_nothing_is_stored(app, client, tenant, name, status):
    response = upload(client, tenant.headers(), corpus_path(name).read_bytes(), name.split("/")[-1])
    assert response.status_code == status, response.json
    assert response.json["message"]
    assert image_rows(app) == 0 and blob_count(app) == 0


def test_missing_file_field_is_422(client, tenant):
    response = client.post("/images", data={"title": "no file"}, headers=tenant.headers())
    assert response.status_code == 422
    assert "image" in response.json["errors"]["multipart"]


def test_json_body_instead_of_multipart_is_422(client, tenant):
    response = client.post("/images", json={"image": "aGVsbG8="}, headers=tenant.headers())
    assert response.status_code == 422


def test_server_owned_fields_cannot_be_set_at_upload(client, tenant):
    form = {"image": (io.BytesIO(png_bytes(5)), "a.png"), "sha256": "0" * 64}
    response = client.post("/images", data=form, headers=tenant.headers())
    assert response.status_code == 422


def test_too_large_file_is_413(app_config):
    app = make_app({**app_config, "MAX_UPLOAD_BYTES": 500})
    tenant = create_tenant(app)
    response = upload(app.test_client(), tenant.headers(), png_bytes(6, (64, 64)))
    assert response.status_code == 413
    assert image_rows(app) == 0


def test_body_far_over_the_limit_is_413(app_config):
    app = make_app({**app_config, "MAX_UPLOAD_BYTES": 1000})
    tenant = create_tenant(app)
    response = upload(app.test_client(), tenant.headers(), b"\xff" * (3 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json["code"] == 413


def test_too_many_pixels_is_413(app_config):
    app = make_app({**app_config, "MAX_PIXELS": 100})
    tenant = create_tenant(app)
    response = upload(app.test_client(), tenant.headers(), png_bytes(7, (20, 20)))
    assert response.status_code == 413
    assert "pixel" in response.json["message"].lower()
    assert image_rows(app) == 0 and blob_count(app) == 0


def test_decompression_bomb_is_refused(client, tenant, app):
    data = corpus_path("invalid/decompression_bomb.gif").read_bytes()
    response = upload(client, tenant.headers(), data, "bomb.gif")
    assert response.status_code == 413
    assert image_rows(app) == 0


def test_hostile_filename_is_made_safe(client, tenant):
    response = upload(client, tenant.headers(), png_bytes(8), '../../etc/pass"wd\r\n.png')
    assert response.status_code == 201
    name = response.json["filename"]
    assert "/" not in name and "\r" not in name and "\n" not in name and '"' not in name


def test_bad_fields_are_422_and_store_nothing(app, client, tenant):
    for fields in ({"taken_at": "yesterday"}, {"title": "x" * 201}, {"tags": "x" * 65}):
        response = upload(client, tenant.headers(), png_bytes(9), **fields)
        assert response.status_code == 422, fields
    assert image_rows(app) == 0 and blob_count(app) == 0


def test_quota_of_images(app, client):
    runner = app.test_cli_runner()
    runner.invoke(args=["tenants", "create", "small", "--max-images", "1"])
    import json

    key = json.loads(
        runner.invoke(
            args=["keys", "create", "--tenant", "small", "--group", "editor", "--json"]
        ).output
    )
    headers = {"X-API-Key": key["api_key"]}
    assert upload(client, headers, png_bytes(10)).status_code == 201
    over = upload(client, headers, png_bytes(11))
    assert over.status_code == 409
    assert "quota" in over.json["message"]
    assert image_rows(app) == 1 and blob_count(app) == 1


def test_quota_of_bytes(app, client):
    import json

    runner = app.test_cli_runner()
    runner.invoke(args=["tenants", "create", "tiny", "--max-bytes", "100"])
    key = json.loads(
        runner.invoke(
            args=["keys", "create", "--tenant", "tiny", "--group", "editor", "--json"]
        ).output
    )
    over = upload(client, {"X-API-Key": key["api_key"]}, png_bytes(12))
    assert over.status_code == 409
    assert image_rows(app) == 0 and blob_count(app) == 0


def test_storage_failure_is_503_and_leaves_no_row(app, client, tenant):
    store = services_of(app).blob_store
    real_put = store.put

    def failing_put(key, stream):
        stream.read(10)
        raise StorageError("disk on fire")

    store.put = failing_put
    response = upload(client, tenant.headers(), png_bytes(13))
    assert response.status_code == 503
    assert "nothing was saved" in response.json["message"]
    assert image_rows(app) == 0
    store.put = real_put
    assert upload(client, tenant.headers(), png_bytes(13)).status_code == 201


def test_reader_cannot_upload(client, tenant):
    assert upload(client, tenant.headers("reader"), png_bytes(14)).status_code == 403


def test_exif_metadata_is_extracted(client, tenant):
    response = upload(
        client, tenant.headers(), corpus_path("valid/exif_gps.jpg").read_bytes(), "g.jpg"
    )
    body = response.json
    assert response.status_code == 201
    assert body["camera_make"] is not None
    assert body["taken_at"] is not None


def test_empty_form_fields_mean_not_given(client, tenant):
    # Swagger UI sends cleared fields as empty strings.
    form = {
        "image": (io.BytesIO(png_bytes(15)), "a.png"),
        "title": "",
        "description": "",
        "tags": "",
        "taken_at": "",
    }
    response = client.post("/images", data=form, headers=tenant.headers())
    assert response.status_code == 201, response.json
    body = response.json
    assert body["title"] is None and body["description"] is None
    assert body["tags"] == [] and body["taken_at"] is None
