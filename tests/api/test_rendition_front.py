"""The rendition front: repeat requests for stored renditions answered before Flask.

It must answer exactly what the full stack answers (headers, body, budget,
logs, metrics) and hand over everything it is not sure of.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import update

from image_repo.db.models import ApiKey
from image_repo.domain.permissions import ACCOUNT_READ, ALL_PERMISSIONS, TENANTS_MANAGE
from image_repo.http.context import http_state, services_of
from image_repo.storage import rendition_key
from tests.conftest import create_tenant, make_app
from tests.support.images import jpeg_bytes, upload
from tests.support.live_server import cli, gunicorn_server

QUERY = "width=40&height=40&format=jpeg"
# Differ on every answer by nature.
VOLATILE = {"Date", "Expires", "X-Request-ID", "X-RateLimit-Remaining", "X-RateLimit-Reset"}


def _front(app):
    return http_state(app).rendition_front


def _app_with_image(app_config, seed: int, **settings):
    """An app with ``settings``, a tenant, its admin headers and an uploaded image's id."""
    app = make_app({**app_config, **settings})
    tenant = create_tenant(app)
    client = app.test_client()
    headers = {"X-API-Key": tenant.admin_key}
    image_id = upload(client, headers, jpeg_bytes(seed, (120, 80)), f"{seed}.jpg").json["id"]
    return app, client, tenant, headers, image_id


@pytest.fixture
def served_image(app_config):
    """An app, a tenant, an image, and the URL of a rendition made once."""
    app, client, tenant, headers, image_id = _app_with_image(
        app_config, 1, RATELIMIT_READ="1000 per minute"
    )
    url = f"/images/{image_id}/render?{QUERY}"
    first = client.get(url, headers=headers)
    assert first.status_code == 200 and first.headers["X-Rendition-Cache"] == "miss"
    return app, client, tenant, headers, image_id, url


def _full_stack(app, client, method: str, url: str, headers: dict):
    front = _front(app)
    front.enabled = False
    try:
        return client.open(url, method=method, headers=headers)
    finally:
        front.enabled = True


def _stable(response) -> dict:
    return {k: v for k, v in response.headers.items() if k not in VOLATILE}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("credential", ["X-API-Key", "Authorization"])
def test_front_answers_what_the_full_stack_answers(served_image, method, credential):
    app, client, tenant, _, _, url = served_image
    headers = (
        {"X-API-Key": tenant.admin_key}
        if credential == "X-API-Key"
        else {"Authorization": f"Bearer {tenant.admin_key}"}
    )
    front = _front(app)
    full = _full_stack(app, client, method, url, headers)
    served = front.served
    fast = client.open(url, method=method, headers=headers)
    assert front.served == served + 1
    assert fast.status_code == full.status_code == 200
    assert fast.data == full.data
    assert _stable(fast) == _stable(full)
    assert set(fast.headers.keys()) == set(full.headers.keys())
    # One budget: the front's answer spent one read after the full stack's
    # (or the first of a new fixed window, when one began between the two).
    spent_before = (
        int(full.headers["X-RateLimit-Remaining"])
        if fast.headers["X-RateLimit-Reset"] == full.headers["X-RateLimit-Reset"]
        else int(full.headers["X-RateLimit-Limit"])
    )
    assert int(fast.headers["X-RateLimit-Remaining"]) == spent_before - 1
    if method == "GET":
        assert fast.data[:2] == b"\xff\xd8" and len(fast.data) == int(
            fast.headers["Content-Length"]
        )


def test_front_answers_if_none_match_with_304_like_the_full_stack(served_image):
    app, client, _, headers, _, url = served_image
    etag = client.get(url, headers=headers).headers["ETag"]
    conditional = {**headers, "If-None-Match": etag}
    full = _full_stack(app, client, "GET", url, conditional)
    served = _front(app).served
    fast = client.get(url, headers=conditional)
    assert _front(app).served == served + 1
    assert fast.status_code == full.status_code == 304
    assert fast.data == full.data == b""
    assert _stable(fast) == _stable(full)
    # Another ETag: the whole file again.
    other = client.get(url, headers={**headers, "If-None-Match": '"nope"'})
    assert other.status_code == 200 and other.data


def test_front_and_full_stack_share_one_read_budget(app_config):
    app, client, _, headers, image_id = _app_with_image(app_config, 2, RATELIMIT_READ="4 per day")
    url = f"/images/{image_id}/thumbnail?size=small"
    answers = [client.get(url, headers=headers) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["3", "2", "1", "0", "0"]
    assert _front(app).served == 3  # the first made it, the last was refused: full stack
    assert answers[-1].json["code"] == 429


def test_front_hands_over_what_it_must_not_answer(served_image, app_config):
    app, client, tenant, headers, image_id, url = served_image
    front = _front(app)
    stored = _stored_key(client, url, headers)
    assert front.served == 1  # _stored_key's rendition request

    # A revoked key is refused at once.
    reader = tenant.new_key("reader")
    reader_headers = {"X-API-Key": reader["api_key"]}
    assert client.get(url, headers=reader_headers).status_code == 200
    served = front.served
    assert client.delete(f"/keys/{reader['key_id']}", headers=headers).status_code in (200, 204)
    refused = client.get(url, headers=reader_headers)
    assert refused.status_code == 401 and refused.json["code"] == 401
    assert "WWW-Authenticate" in refused.headers

    # Wrong or missing keys, and another tenant's key: the full stack's answers.
    assert client.get(url, headers={"X-API-Key": tenant.admin_key + "x"}).status_code == 401
    assert client.get(url).status_code == 401
    stranger = create_tenant(app)
    assert client.get(url, headers={"X-API-Key": stranger.admin_key}).status_code == 404

    # Range and CORS requests.
    ranged = client.get(url, headers={**headers, "Range": "bytes=0-9"})
    assert ranged.status_code == 206 and len(ranged.data) == 10
    client.get(url, headers={**headers, "Origin": "https://example.org"})

    # A query not seen before, even if it means the same.
    reordered = client.get(
        f"/images/{image_id}/render?format=jpeg&height=40&width=40", headers=headers
    )
    assert reordered.status_code == 200
    assert front.served == served

    # A collected rendition is made again by the full stack.
    services_of(app).blob_store.delete(stored)
    again = client.get(url, headers=headers)
    assert again.status_code == 200 and again.headers["X-Rendition-Cache"] == "miss"

    # A deleted image is gone for the front too.
    assert client.delete(f"/images/{image_id}", headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404
    assert front.served == served


def _stored_key(client, url, headers) -> str:
    etag = client.get(url, headers=headers).headers["ETag"].strip('"')
    sha_prefix, digest = etag.split("-")
    sha = client.get(url.split("/render")[0], headers=headers).json["sha256"]
    assert sha.startswith(sha_prefix)
    return rendition_key(sha, digest)


def test_front_refuses_a_group_without_read_permission(app_config):
    groups = {
        "admin": sorted(ALL_PERMISSIONS - {TENANTS_MANAGE}),
        "auditor": [ACCOUNT_READ],
    }
    app, client, tenant, headers, image_id = _app_with_image(
        app_config, 3, GROUP_PERMISSIONS=groups
    )
    url = f"/images/{image_id}/render?{QUERY}"
    client.get(url, headers=headers)
    refused = client.get(url, headers={"X-API-Key": tenant.key("auditor")})
    assert refused.status_code == 403 and refused.json["code"] == 403
    assert _front(app).served == 0


def test_front_leaves_a_stale_last_used_to_the_full_stack(served_image):
    app, client, tenant, headers, _, url = served_image
    engine = services_of(app).engine
    with engine.begin() as connection:
        connection.execute(
            update(ApiKey).where(ApiKey.id == tenant.admin_key_id).values(last_used_at=None)
        )
    served = _front(app).served
    assert client.get(url, headers=headers).status_code == 200
    assert _front(app).served == served  # the full stack recorded the use...
    assert client.get(url, headers=headers).status_code == 200
    assert _front(app).served == served + 1  # ...so the next one is the front's


def test_front_logs_and_counts_its_answers(served_image, capsys):
    app, client, tenant, headers, _, url = served_image
    metrics = services_of(app).metrics

    def sample(name: str, **labels) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    hits = sample("image_repo_rendition_cache_total", result="hit")
    answered = sample(
        "image_repo_requests_total", operation="renderImage", method="GET", status="200"
    )
    capsys.readouterr()
    response = client.get(url, headers={**headers, "X-Request-ID": "front-test-1"})
    assert response.headers["X-Request-ID"] == "front-test-1"
    assert _front(app).served == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "front-test-1"
    assert line["operation"] == "renderImage" and line["status"] == 200
    assert line["route"] == "/images/<image_id:image_id>/render"
    assert line["tenant_id"] == tenant.tenant_id and line["key_id"] == tenant.admin_key_id
    assert tenant.admin_key not in json.dumps(line)
    assert sample("image_repo_rendition_cache_total", result="hit") == hits + 1
    assert (
        sample("image_repo_requests_total", operation="renderImage", method="GET", status="200")
        == answered + 1
    )


def test_front_can_be_turned_off(app_config):
    app, client, _, headers, image_id = _app_with_image(app_config, 4, RENDITION_FRONT=False)
    url = f"/images/{image_id}/render?{QUERY}"
    statuses = [client.get(url, headers=headers).headers["X-Rendition-Cache"] for _ in range(3)]
    assert statuses == ["miss", "hit", "hit"]
    assert _front(app).served == 0


def test_front_sends_the_file_through_gunicorn(tmp_path):
    """Over real HTTP (sendfile through gunicorn's file wrapper), bytes and log line."""
    import requests

    env = {"IMAGE_REPO_DATA_DIR": str(tmp_path / "data")}
    cli(env, "db", "upgrade")
    key = json.loads(cli(env, "tenants", "create", "acme", "--json"))["api_key"]
    log_path = tmp_path / "gunicorn.log"
    headers = {"X-API-Key": key}
    with gunicorn_server(env, workers=1, log_path=log_path) as base:
        made = requests.post(
            f"{base}/images",
            files={"image": ("e.jpg", jpeg_bytes(5, (300, 200)), "image/jpeg")},
            headers=headers,
            timeout=30,
        )
        url = f"{base}/images/{made.json()['id']}/render?{QUERY}"
        first = requests.get(url, headers=headers, timeout=30)
        again = [
            requests.get(url, headers={**headers, "X-Request-ID": f"again-{i}"}, timeout=30)
            for i in range(3)
        ]
    assert first.headers["X-Rendition-Cache"] == "miss"
    for response in again:
        assert response.status_code == 200 and response.content == first.content
        assert response.headers["Content-Length"] == str(len(first.content))
    logged = [
        json.loads(line)
        for line in log_path.read_text().splitlines()
        if line.startswith("{") and '"again-' in line
    ]
    assert [line["status"] for line in logged] == [200, 200, 200]
    assert key not in log_path.read_text()


def test_front_leaves_unknown_query_parameters_to_the_full_stack(served_image):
    app, client, _, headers, _, url = served_image
    front = _front(app)
    assert client.get(url, headers=headers).status_code == 200
    served = front.served
    for _ in range(2):  # the full stack refuses it, so the front never learns it
        misspelt = client.get(f"{url}&widht=10", headers=headers)
        assert misspelt.status_code == 422
        assert misspelt.json["errors"]["query"] == {"widht": ["Unknown field."]}
    assert front.served == served
