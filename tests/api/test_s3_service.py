"""The service on S3 storage (moto's server): uploads, downloads, renditions,
gc and fsck work as on the data folder; optional presigned redirects."""

from __future__ import annotations

import json

import pytest
import requests

from tests.conftest import create_tenant, make_app
from tests.support.corpus import corpus_path
from tests.support.images import upload
from tests.support.s3_server import (
    CREDENTIALS,
    REGION,
    new_bucket,
    raw_client,
)


@pytest.fixture
def s3_config(app_config, s3_endpoint):
    bucket = new_bucket(raw_client(s3_endpoint))
    return {
        **app_config,
        "S3_BUCKET": bucket,
        "S3_PREFIX": "repo/",
        "S3_ENDPOINT_URL": s3_endpoint,
        "S3_REGION": REGION,
        "S3_ACCESS_KEY_ID": CREDENTIALS["access_key_id"],
        "S3_SECRET_ACCESS_KEY": CREDENTIALS["secret_access_key"],
    }


def objects(endpoint, bucket) -> list[str]:
    listed = raw_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_images_live_in_the_bucket(s3_config, s3_endpoint):
    app = make_app(s3_config)
    tenant = create_tenant(app)
    client = app.test_client()
    data = corpus_path("valid/hopper.jpg").read_bytes()
    image = upload(client, tenant.headers(), data, "hopper.jpg").json
    keys = objects(s3_endpoint, s3_config["S3_BUCKET"])
    assert keys == [
        f"repo/originals/{image['sha256'][:2]}/{image['sha256'][2:4]}/{image['sha256']}"
    ]
    assert not (s3_config["DATA_DIR"] / "blobs").exists()

    url = f"/images/{image['id']}/file"
    whole = client.get(url, headers=tenant.headers())
    assert whole.status_code == 200 and whole.data == data
    assert int(whole.headers["Content-Length"]) == len(data)
    assert whole.headers["ETag"] == f'"{image["sha256"]}"'
    assert whole.headers["Content-Disposition"] == "inline; filename=hopper.jpg"
    part = client.get(url, headers={**tenant.headers(), "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert (
        client.get(url, headers={**tenant.headers(), "Range": f"bytes={len(data)}-"}).status_code
        == 416
    )
    for unusable in ("bytes=abc", "bytes=0-1,5-6", "items=0-5"):  # ignored: the whole file
        ignored = client.get(url, headers={**tenant.headers(), "Range": unusable})
        assert ignored.status_code == 200 and ignored.data == data, unusable
    assert (
        client.get(
            url, headers={**tenant.headers(), "If-None-Match": whole.headers["ETag"]}
        ).status_code
        == 304
    )
    head = client.head(url, headers=tenant.headers())
    assert head.status_code == 200 and head.data == b""

    thumb = client.get(f"/images/{image['id']}/thumbnail", headers=tenant.headers())
    assert thumb.status_code == 200 and thumb.headers["X-Rendition-Cache"] == "miss"
    again = client.get(f"/images/{image['id']}/thumbnail", headers=tenant.headers())
    assert again.headers["X-Rendition-Cache"] == "hit" and again.data == thumb.data
    assert any(
        k.startswith("repo/renditions/") for k in objects(s3_endpoint, s3_config["S3_BUCKET"])
    )

    runner = app.test_cli_runner()
    assert json.loads(runner.invoke(args=["fsck", "--json"]).output)["ok"] is True
    client.delete(f"/images/{image['id']}", headers=tenant.headers())
    runner.invoke(args=["gc", "--grace", "0s", "--trash-days", "0"])
    assert objects(s3_endpoint, s3_config["S3_BUCKET"]) == []
    assert client.get("/health/ready").json["checks"]["storage"] == "ok"


def test_previews_live_in_the_bucket_beside_their_original(s3_config, s3_endpoint):
    from image_repo.imaging.render import observing
    from tests.api.test_previews import large_jpeg

    app = make_app(s3_config)
    tenant = create_tenant(app)
    client = app.test_client()
    big = upload(client, tenant.headers(), large_jpeg("orientation/Landscape_1.jpg"), "big.jpg")
    small = upload(client, tenant.headers(), corpus_path("valid/hopper.jpg").read_bytes())
    sha = big.json["sha256"]
    bucket = s3_config["S3_BUCKET"]
    assert f"repo/renditions/{sha[:2]}/{sha[2:4]}/{sha}/preview" in objects(s3_endpoint, bucket)
    with observing() as decodes:
        for image in (big.json, small.json):
            thumb = client.get(f"/images/{image['id']}/thumbnail", headers=tenant.headers())
            assert thumb.status_code == 200, thumb.json
    # The large one from its preview; the small one has none (a 404 from S3) and
    # decodes its original.
    assert [decode.source for decode in decodes] == ["preview", "original"]
    for image in (big.json, small.json):
        client.delete(f"/images/{image['id']}", headers=tenant.headers())
    app.test_cli_runner().invoke(args=["gc", "--grace", "0s", "--trash-days", "0"])
    assert objects(s3_endpoint, bucket) == []


def test_presigned_redirects(s3_config):
    app = make_app({**s3_config, "S3_PRESIGNED_REDIRECTS": True})
    tenant = create_tenant(app)
    client = app.test_client()
    data = corpus_path("valid/hopper.png").read_bytes()
    image = upload(client, tenant.headers(), data, "hopper.png").json
    response = client.get(f"/images/{image['id']}/file", headers=tenant.headers())
    assert response.status_code == 307
    assert response.headers["Cache-Control"] == "private, no-store"
    fetched = requests.get(response.headers["Location"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == data
    assert fetched.headers["Content-Type"] == "image/png"
    # Renditions are computed (or found) first, then redirected to.
    thumb = client.get(f"/images/{image['id']}/thumbnail", headers=tenant.headers())
    assert thumb.status_code == 307
    assert requests.get(thumb.headers["Location"], timeout=10).content[:4] == b"RIFF"
    # Authorization comes first: no key, no URL.
    assert client.get(f"/images/{image['id']}/file").status_code == 401


def test_storage_down_is_503_not_500(s3_config):
    app = make_app({**s3_config, "S3_ENDPOINT_URL": "http://127.0.0.1:1"})
    tenant = create_tenant(app)
    client = app.test_client()
    response = upload(client, tenant.headers(), corpus_path("valid/hopper.png").read_bytes())
    assert response.status_code == 503
    assert client.get("/images", headers=tenant.headers()).json["items"] == []
    ready = client.get("/health/ready")
    assert ready.status_code == 503 and set(ready.json["errors"]) == {"storage"}
