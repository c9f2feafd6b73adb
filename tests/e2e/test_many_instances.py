"""Two gunicorn instances sharing one PostgreSQL, one S3 endpoint and one Redis.

Runs when IMAGE_REPO_TEST_DATABASE_URL and IMAGE_REPO_TEST_REDIS_URL are set
(CI sets both); moto's server stands in for S3.
"""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, postgres_schema
from tests.support.corpus import corpus_path
from tests.support.live_server import cli, gunicorn_server
from tests.support.s3_server import (
    CREDENTIALS,
    REGION,
    moto_server,
    new_bucket,
    raw_client,
    s3_unavailable,
)

pytestmark = pytest.mark.skipif(
    not (TEST_DATABASE_URL and TEST_REDIS_URL) or s3_unavailable() is not None,
    reason="needs IMAGE_REPO_TEST_DATABASE_URL, IMAGE_REPO_TEST_REDIS_URL and moto",
)


@pytest.fixture
def shared_services(tmp_path):
    with postgres_schema("many") as database_url, moto_server() as s3:
        bucket = new_bucket(raw_client(s3))
        env = {
            "IMAGE_REPO_DATABASE_URL": database_url,
            "IMAGE_REPO_REDIS_URL": TEST_REDIS_URL,
            "IMAGE_REPO_S3_BUCKET": bucket,
            "IMAGE_REPO_S3_ENDPOINT_URL": s3,
            "IMAGE_REPO_S3_REGION": REGION,
            "IMAGE_REPO_S3_ACCESS_KEY_ID": CREDENTIALS["access_key_id"],
            "IMAGE_REPO_S3_SECRET_ACCESS_KEY": CREDENTIALS["secret_access_key"],
            "IMAGE_REPO_RATELIMIT_READ": "10 per day",
            "IMAGE_REPO_SECRET_KEY": "shared-secret-" + "x" * 30,
            "IMAGE_REPO_ENV": "production",
        }
        cli({**env, "IMAGE_REPO_DATA_DIR": str(tmp_path / "cli")}, "db", "upgrade")
        yield env, s3, bucket


def test_two_instances_share_one_truth(shared_services, tmp_path):
    env, s3, bucket = shared_services
    cli_env = {**env, "IMAGE_REPO_DATA_DIR": str(tmp_path / "cli")}
    admin_key = json.loads(cli(cli_env, "tenants", "create", "acme", "--json"))["api_key"]

    def key(group: str) -> dict:
        created = json.loads(
            cli(cli_env, "keys", "create", "--tenant", "acme", "--group", group, "--json")
        )
        return created

    uploader, viewer, limited, doomed = key("editor"), key("reader"), key("reader"), key("reader")
    env_a = {**env, "IMAGE_REPO_DATA_DIR": str(tmp_path / "a")}
    env_b = {**env, "IMAGE_REPO_DATA_DIR": str(tmp_path / "b")}
    with gunicorn_server(env_a, workers=2) as a, gunicorn_server(env_b, workers=2) as b:
        # 1. The same bytes uploaded concurrently through both: one image, one blob.
        data = corpus_path("valid/flower.jpg").read_bytes()

        def send(i: int):
            return requests.post(
                f"{(a, b)[i % 2]}/images",
                files={"image": ("flower.jpg", data, "image/jpeg")},
                headers={"X-API-Key": uploader["api_key"]},
                timeout=60,
            )

        with ThreadPoolExecutor(max_workers=12) as pool:
            responses = list(pool.map(send, range(24)))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 201} and statuses.count(201) == 1, statuses
        assert len({r.json()["id"] for r in responses}) == 1
        image_id = responses[0].json()["id"]
        originals = [k for k in _objects(s3, bucket) if k.startswith("originals/")]
        assert len(originals) == 1

        # 2. A rendition asked from both at once: correct everywhere, made once.
        def render(i: int):
            return requests.get(
                f"{(a, b)[i % 2]}/images/{image_id}/render",
                params={"width": 200, "format": "png"},
                headers={"X-API-Key": viewer["api_key"]},
                timeout=60,
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            renders = list(pool.map(render, range(8)))
        assert {r.status_code for r in renders} == {200}
        assert len({r.content for r in renders}) == 1
        assert Image.open(io.BytesIO(renders[0].content)).width == 200
        assert [r.headers["X-Rendition-Cache"] for r in renders].count("miss") == 1

        # 3. The per-key rate limit is one budget across instances.
        limited_headers = {"X-API-Key": limited["api_key"]}
        codes = [
            requests.get(f"{(a, b)[i % 2]}/me", headers=limited_headers, timeout=10).status_code
            for i in range(10)
        ]
        assert codes == [200] * 10
        assert requests.get(f"{a}/me", headers=limited_headers, timeout=10).status_code == 429
        assert requests.get(f"{b}/me", headers=limited_headers, timeout=10).status_code == 429

        # 4. A key revoked through one instance is refused by the other at once.
        doomed_headers = {"X-API-Key": doomed["api_key"]}
        assert requests.get(f"{b}/me", headers=doomed_headers, timeout=10).status_code == 200
        revoked = requests.delete(
            f"{a}/keys/{doomed['key_id']}", headers={"X-API-Key": admin_key}, timeout=10
        )
        assert revoked.status_code == 200
        assert requests.get(f"{b}/me", headers=doomed_headers, timeout=10).status_code == 401


def _objects(endpoint: str, bucket: str) -> list[str]:
    listed = raw_client(endpoint).list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])]
