"""Uploads through the real server: curl -F, httpie -f, and concurrent uploads of the same bytes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
import requests

from tests.conftest import needs_postgres, postgres_schema
from tests.support.corpus import corpus_path
from tests.support.live_server import cli, gunicorn_server

PHOTO = corpus_path("valid/hopper.jpg")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def live(request, tmp_path):
    """A gunicorn with two workers, its database migrated, and an editor key."""
    env = {"IMAGE_REPO_DATA_DIR": str(tmp_path / "data")}
    with ExitStack() as stack:
        if request.param == "postgresql":
            env["IMAGE_REPO_DATABASE_URL"] = stack.enter_context(postgres_schema("live"))
        cli(env, "db", "upgrade")
        cli(env, "tenants", "create", "acme")
        made = cli(env, "keys", "create", "--tenant", "acme", "--group", "editor", "--json")
        with gunicorn_server(env, workers=2) as base:
            yield base, json.loads(made)["api_key"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_upload_with_curl(live):
    base, key = live
    result = subprocess.run(
        ["curl", "-sS", "-H", f"Authorization: Bearer {key}", "-F", f"image=@{PHOTO}",
         "-F", "title=From curl", "-F", "tags=a,b", f"{base}/images"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    body = json.loads(result.stdout)
    assert body["title"] == "From curl" and body["tags"] == ["a", "b"] and body["format"] == "JPEG"


def test_upload_list_fetch_patch_delete_with_httpie(live):
    base, key = live
    port = base.rsplit(":", 1)[1]
    auth = f"Authorization:Bearer {key}"

    def http(*args):
        result = subprocess.run(
            [sys.executable, "-m", "httpie", "--ignore-stdin", "--check-status", *args],
            capture_output=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    created = json.loads(
        http("-f", "POST", f":{port}/images", f"image@{PHOTO}", "title=From httpie", auth)
    )
    assert created["title"] == "From httpie"
    listed = json.loads(http(f":{port}/images", "limit==10", auth))
    assert [i["id"] for i in listed["items"]] == [created["id"]]
    original = http(f":{port}/images/{created['id']}/file", auth)
    assert original == PHOTO.read_bytes()
    patched = json.loads(http("PATCH", f":{port}/images/{created['id']}", "title=Renamed", auth))
    assert patched["title"] == "Renamed"
    http("DELETE", f":{port}/images/{created['id']}", auth)


def test_concurrent_uploads_of_the_same_bytes_make_one_image(live):
    base, key = live
    data = PHOTO.read_bytes()

    def send(_):
        return requests.post(
            f"{base}/images",
            files={"image": ("hopper.jpg", data, "image/jpeg")},
            headers={"X-API-Key": key},
            timeout=60,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(send, range(24)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 201}, [
        (r.status_code, r.text) for r in responses if r.status_code >= 300
    ]
    assert statuses.count(201) == 1
    assert len({r.json()["id"] for r in responses}) == 1
    listed = requests.get(f"{base}/images", headers={"X-API-Key": key}, timeout=10).json()
    assert len(listed["items"]) == 1
