"""``image-repo migrate``: from the embedded default (SQLite + a folder) to
PostgreSQL (or SQLite) + S3, run twice (the second copies nothing), then a
gunicorn on the target serves the same images to the same keys."""

from __future__ import annotations

import io
import json
import zipfile
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import text

from image_repo.db.engine import make_engine
from image_repo.imaging import preview
from tests.conftest import create_tenant, make_app, needs_postgres, postgres_schema
from tests.support.images import jpeg_bytes, upload
from tests.support.live_server import cli_run, gunicorn_server
from tests.support.s3_server import (
    CREDENTIALS,
    REGION,
    new_bucket,
    raw_client,
)
from tests.support.transfer import seed, snapshot


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def target_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'target' / 'image-repo.db'}"
        return
    with postgres_schema("migrate") as url:
        yield url


def objects(endpoint: str, bucket: str) -> list[str]:
    pages = raw_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def test_migrate_to_s3_twice_then_serve_from_the_target(tmp_path, s3_endpoint, target_url):
    source_dir = tmp_path / "source"
    app = make_app(
        {"TESTING": True, "ENV": "development", "DATA_DIR": source_dir, "REDIS_URL": None,
         "DATABASE_URL": f"sqlite:///{source_dir / 'image-repo.db'}"}
    )  # fmt: skip
    tenant = create_tenant(app, "acme")
    client = app.test_client()
    headers = tenant.headers()
    ids = seed(client, headers)
    # A table added by another feature (shares) goes too, with no change to migrate.
    share = client.post("/shares", json={"image_id": ids["hopper.png"]}, headers=headers)
    assert share.status_code == 201, share.json
    share_path = urlsplit(share.json["url"]).path
    side = preview.MIN_SOURCE_SIDE
    big = upload(client, headers, jpeg_bytes(7, size=(side + 10, side // 2)), "big.jpg").json
    assert client.get(f"/images/{big['id']}/render?width=50", headers=headers).status_code == 200
    before = snapshot(client, headers)
    source_keys = sorted(
        str(p.relative_to(source_dir / "blobs")) for p in (source_dir / "blobs").rglob("*")
        if p.is_file()
    )  # fmt: skip
    assert any(key.endswith("/preview") for key in source_keys)

    bucket = new_bucket(raw_client(s3_endpoint))
    env = {
        "IMAGE_REPO_DATA_DIR": str(source_dir),
        "AWS_ACCESS_KEY_ID": CREDENTIALS["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["secret_access_key"],
    }
    args = [
        "migrate", "--to-database", target_url, "--to-store", f"s3://{bucket}/moved",
        "--to-s3-endpoint-url", s3_endpoint, "--to-s3-region", REGION, "--json",
    ]  # fmt: skip
    first = cli_run(env, *args)
    assert first.returncode == 0, first.stderr + first.stdout
    report = json.loads(first.stdout)
    assert report["ok"] and report["check"]["missing"] == [] and report["check"]["counts_match"]
    assert report["tables"]["images"]["copied"] == len(before["images"]) + len(before["trash"])
    assert report["tables"]["api_keys"]["copied"] == 1
    assert report["tables"]["shares"]["copied"] == 1
    # Originals and previews, not the cached rendition (no --include-renditions).
    copied = [key.removeprefix("moved/") for key in objects(s3_endpoint, bucket)]
    assert copied == [k for k in source_keys if k.startswith("originals/") or k.endswith("preview")]
    assert report["blobs_copied"] == len(copied) < len(source_keys)

    second = cli_run(env, *args)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert (again["rows_copied"], again["blobs_copied"]) == (0, 0)
    assert again["blobs_present"] == len(copied) and again["ok"]

    with_renditions = cli_run(env, *args, "--include-renditions")
    assert json.loads(with_renditions.stdout)["blobs_copied"] == len(source_keys) - len(copied)
    assert [k.removeprefix("moved/") for k in objects(s3_endpoint, bucket)] == source_keys

    served_env = {
        "IMAGE_REPO_DATA_DIR": str(tmp_path / "target-instance"),
        "IMAGE_REPO_DATABASE_URL": target_url,
        "IMAGE_REPO_S3_BUCKET": bucket,
        "IMAGE_REPO_S3_PREFIX": "moved/",
        "IMAGE_REPO_S3_ENDPOINT_URL": s3_endpoint,
        "IMAGE_REPO_S3_REGION": REGION,
        "IMAGE_REPO_S3_ACCESS_KEY_ID": CREDENTIALS["access_key_id"],
        "IMAGE_REPO_S3_SECRET_ACCESS_KEY": CREDENTIALS["secret_access_key"],
        "IMAGE_REPO_SECRET_KEY": "x" * 48,
    }
    with gunicorn_server(served_env, workers=1) as base:
        # The same key works: keys moved with their hashes.
        after = snapshot(_Requests(base), headers)
        # An album's ZIP, streamed by gunicorn from S3.
        albums = {
            a["name"]: a["id"] for a in _Requests(base).get("/collections", headers).json["items"]
        }
        response = requests.get(
            f"{base}/collections/{albums['Holidays']}/archive", headers=headers, timeout=60
        )
        assert response.status_code == 200
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            names = archive.namelist()
            assert archive.testzip() is None
        # The share link made before the move opens on the target.
        assert requests.get(base + share_path, timeout=60).status_code == 200
    assert after == before
    assert names == ["hopper.jpg", "hopper.png"]  # the album's third image is in the trash


class _Requests:
    """requests against a live server, shaped like Flask's test client for ``snapshot``."""

    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str, headers: dict):
        response = requests.get(self.base + path, headers=headers, timeout=60)
        response.raise_for_status()
        json_body = response.headers["Content-Type"].startswith("application/json")
        return SimpleNamespace(data=response.content, json=response.json() if json_body else None)


def test_migrate_resumes_what_is_missing_and_carries_changes(tmp_path):
    """What a stopped run left out is copied by the next; a row changed in the
    source since is updated; a damaged original is reported and not carried."""
    source_dir = tmp_path / "source"
    app = make_app(
        {"TESTING": True, "ENV": "development", "DATA_DIR": source_dir, "REDIS_URL": None,
         "DATABASE_URL": f"sqlite:///{source_dir / 'image-repo.db'}"}
    )  # fmt: skip
    tenant = create_tenant(app, "acme")
    client = app.test_client()
    ids = seed(client, tenant.headers())
    target_db = tmp_path / "target" / "image-repo.db"
    args = ["migrate", "--to-database", f"sqlite:///{target_db}", "--to-store",
            str(tmp_path / "target"), "--json"]  # fmt: skip
    runner = app.test_cli_runner()
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["ok"]

    # As if the first run had stopped early: two images and one original are not there.
    target = make_engine(f"sqlite:///{target_db}")  # foreign keys on: deletes cascade
    with target.begin() as connection:
        gone = connection.execute(text("DELETE FROM images WHERE id IN (:a, :b)"),
                                  {"a": ids["hopper.jpg"], "b": ids["hopper.png"]}).rowcount  # fmt: skip
    target.dispose()
    assert gone == 2
    blobs = sorted((tmp_path / "target" / "blobs" / "originals").rglob("*"))
    removed = next(p for p in blobs if p.is_file())
    removed.unlink()
    assert (
        client.patch(
            f"/images/{ids['hopper.gif']}", json={"title": "Renamed"}, headers=tenant.headers()
        ).status_code
        == 200
    )

    second = json.loads(runner.invoke(args=args).output)
    assert second["tables"]["images"]["copied"] == 2
    assert second["tables"]["images"]["updated"] == 1  # the new title
    assert second["tables"]["image_tags"]["copied"] == 4  # two tags each, gone with them
    assert second["tables"]["collection_images"]["copied"] == 2
    assert second["blobs_copied"] == 1 and second["ok"]
    third = json.loads(runner.invoke(args=args).output)
    assert (third["rows_copied"], third["blobs_copied"]) == (0, 0)

    # A damaged original in the source is not carried over, and the run says so.
    damaged = next(
        p for p in sorted((source_dir / "blobs" / "originals").rglob("*")) if p.is_file()
    )
    damaged.write_bytes(damaged.read_bytes() + b"!")
    (tmp_path / "target" / "blobs" / "originals" / damaged.relative_to(
        source_dir / "blobs" / "originals")).unlink()  # fmt: skip
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["blobs_corrupt"] == [str(damaged.relative_to(source_dir / "blobs"))]
    assert len(report["check"]["missing"]) == 1 and not report["ok"]
