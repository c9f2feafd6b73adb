"""Signed, expiring image URLs: handed out by the API, served with no key.

Refused when tampered with, expired, signed with a rotated secret or for a
key that no longer works; served (full stack and rendition front) otherwise,
cacheable until they expire.
"""

from __future__ import annotations

import io
import time
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from sqlalchemy import update

from image_repo.db.models import Tenant
from image_repo.domain import signing
from image_repo.http.context import http_state, services_of
from tests.support.images import jpeg_bytes, upload


def _front(app):
    return http_state(app).rendition_front


def _local(url: str) -> str:
    """The path and query of an absolute URL (what the test client takes)."""
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "localhost"
    return f"{parts.path}?{parts.query}"


def _with(url: str, **changes) -> str:
    path, _, query = url.partition("?")
    pairs = dict(parse_qsl(query))
    pairs.update(changes)
    return f"{path}?{urlencode(pairs)}"


@pytest.fixture
def image(client, tenant) -> dict:
    return upload(client, tenant.headers(), jpeg_bytes(7, (300, 200)), "seven.jpg").json


def _sign(client, headers, image_id, **body) -> dict:
    answer = client.post(f"/images/{image_id}/signed-url", json=body, headers=headers)
    assert answer.status_code == 200, answer.json
    return answer.json


def test_urls_object_on_image_responses(client, tenant, image):
    headers = tenant.headers("reader")
    one = client.get(f"/images/{image['id']}?urls=true", headers=headers).json
    urls = one["urls"]
    assert set(urls) == {"original", "thumbnail", "preview", "expires_at"}
    for name in ("original", "thumbnail", "preview"):
        answer = client.get(_local(urls[name]))  # no key
        assert answer.status_code == 200, (name, answer.json)
        assert answer.headers["Cache-Control"].startswith("public, max-age=")
        assert int(answer.headers["Cache-Control"].rpartition("=")[2]) <= 3600
    assert client.get(_local(urls["original"])).data[:2] == b"\xff\xd8"
    expires_at = datetime.fromisoformat(urls["expires_at"])
    assert 0 < expires_at.timestamp() - time.time() <= 3600

    # Without urls=true there are none; the list and the upload give them too, the same
    # URLs within a bucket (cacheable across calls).
    assert "urls" not in client.get(f"/images/{image['id']}", headers=headers).json
    listed = client.get("/images?urls=true", headers=headers).json["items"][0]["urls"]
    assert listed["thumbnail"] == urls["thumbnail"] or listed["expires_at"] != urls["expires_at"]
    assert "urls" not in client.get("/images", headers=headers).json["items"][0]
    uploaded = client.post(
        "/images?urls=true",
        data={"image": (io.BytesIO(jpeg_bytes(8, (40, 30))), "eight.jpg")},
        headers=tenant.headers(),
    )
    assert uploaded.status_code == 201 and "preview" in uploaded.json["urls"]


def test_sign_a_rendition_and_use_it_without_a_key(client, tenant, image):
    signed = _sign(
        client, tenant.headers("reader"), image["id"], width=64, format="png", expires_in=120
    )
    url = _local(signed["url"])
    answer = client.get(url)
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    assert answer.headers["Cache-Control"] in ("public, max-age=120", "public, max-age=119")
    assert client.head(url).status_code == 200
    # Thumbnails and the original too.
    thumb = _sign(client, tenant.headers(), image["id"], rendition="thumbnail", size="small")
    assert client.get(_local(thumb["url"])).status_code == 200
    original = _sign(client, tenant.headers(), image["id"], rendition="original", download=True)
    got = client.get(_local(original["url"]))
    assert got.status_code == 200 and got.headers["Content-Disposition"].startswith("attachment")


@pytest.mark.parametrize(
    "tamper",
    [
        {"width": "65"},  # another rendition
        {"exp": "9999999999"},  # a longer life
        {"kid": "key_" + "a" * 20},  # another key
        {"sig": "A" * 43},  # a made-up signature
        {"quality": "90"},  # a parameter added
    ],
)
def test_tampered_urls_are_refused(client, tenant, image, tamper):
    url = _local(_sign(client, tenant.headers(), image["id"], width=64)["url"])
    assert client.get(url).status_code == 200
    refused = client.get(_with(url, **tamper))
    assert refused.status_code == 403
    assert refused.json["code"] == 403 and "signed URL" in refused.json["message"]


def test_a_signature_opens_one_path_and_one_method_only(client, tenant, image, other_tenant):
    url = _local(_sign(client, tenant.headers(), image["id"], width=64)["url"])
    path, _, query = url.partition("?")
    assert client.get(path.replace("/render", "/thumbnail") + "?" + query).status_code == 403
    other = upload(client, tenant.headers(), jpeg_bytes(9), "nine.jpg").json["id"]
    assert client.get(url.replace(image["id"], other)).status_code == 403
    # Not an operation a signature opens: no key is no key.
    listed = client.get(f"/images/{image['id']}?{query}")
    assert listed.status_code in (401, 403, 422)
    assert client.delete(f"/images/{image['id']}?{query}").status_code in (401, 403)
    assert client.get(f"/images/{image['id']}", headers=tenant.headers()).status_code == 200
    # Malformed signing parameters: refused, not a 5xx.
    for bad in ("exp=x&kid=y&sig=z", "sig=" + "A" * 43, f"{query}&sig=again"):
        assert client.get(f"{path}?{bad}").status_code == 403


def test_expired_urls_are_refused(app, client, tenant, image):
    url = _local(_sign(client, tenant.headers(), image["id"], width=64)["url"])
    key_id = dict(parse_qsl(url.partition("?")[2]))["kid"]
    with app.app_context():
        session = services_of(app).sessions()
        secret = signing.current_secret(session)
        session.close()
    path = url.partition("?")[0]
    past = int(time.time()) - 1
    expired = signing.signed_query(secret, path, {"width": "64"}, expires=past, key_id=key_id)
    fresh = signing.signed_query(secret, path, {"width": "64"}, expires=past + 60, key_id=key_id)
    assert client.get(f"{path}?{fresh}").status_code == 200  # the same signer, still in time
    refused = client.get(f"{path}?{expired}")
    assert refused.status_code == 403 and refused.json["code"] == 403


def test_rotating_the_secret_stops_every_url_at_once(app, client, tenant, image, runner):
    url = _local(_sign(client, tenant.headers(), image["id"], width=64)["url"])
    assert client.get(url).status_code == 200
    front = _front(app)
    result = runner.invoke(args=["secrets", "rotate-url-key"])
    assert result.exit_code == 0, result.output
    assert client.get(url).status_code == 403
    assert front.served == 0 or client.get(url).status_code == 403
    again = _local(_sign(client, tenant.headers(), image["id"], width=64)["url"])
    assert again != url and client.get(again).status_code == 200


def test_revoking_the_key_stops_its_urls_at_once(client, tenant, image):
    reader = tenant.new_key("reader")
    headers = {"X-API-Key": reader["api_key"]}
    url = _local(_sign(client, headers, image["id"], width=64)["url"])
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200  # (now from the front)
    assert client.delete(f"/keys/{reader['key_id']}", headers=tenant.headers()).status_code in (
        200,
        204,
    )
    refused = client.get(url)
    assert refused.status_code == 403 and refused.json["code"] == 403


def test_a_suspended_tenant_s_urls_stop(app, client, tenant, image):
    url = _local(_sign(client, tenant.headers(), image["id"], width=64)["url"])
    assert client.get(url).status_code == 200
    with services_of(app).engine.begin() as connection:
        connection.execute(
            update(Tenant).where(Tenant.id == tenant.tenant_id).values(status="suspended")
        )
    assert client.get(url).status_code == 403


def test_a_trashed_image_s_urls_stop_and_come_back(client, tenant, image):
    url = _local(_sign(client, tenant.headers(), image["id"], width=64)["url"])
    assert client.get(url).status_code == 200
    client.delete(f"/images/{image['id']}", headers=tenant.headers())
    assert client.get(url).status_code == 404
    client.post(f"/trash/{image['id']}/restore", headers=tenant.headers())
    assert client.get(url).status_code == 200


def test_the_rendition_front_serves_signed_urls(app, client, tenant, image):
    front = _front(app)
    url = _local(_sign(client, tenant.headers(), image["id"], width=64, format="jpeg")["url"])
    first = client.get(url)  # the full stack makes it and teaches the front the query
    assert first.status_code == 200 and front.served == 0
    second = client.get(url)
    assert front.served == 1, "the fast path did not answer"
    assert second.status_code == 200 and second.data == first.data
    assert second.headers["Cache-Control"].startswith("public, max-age=")
    assert second.headers["ETag"] == first.headers["ETag"]
    conditional = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert conditional.status_code == 304 and front.served == 2
    # A different signature for the same rendition (another expiry): the front again.
    other = _local(
        _sign(client, tenant.headers(), image["id"], width=64, format="jpeg", expires_in=99)["url"]
    )
    assert client.get(other).status_code == 200 and front.served == 3
    # Tampered: the front steps aside and the full stack refuses.
    assert client.get(_with(url, exp=str(int(time.time()) + 5000))).status_code == 403
    assert front.served == 3


def test_signing_checks_what_it_signs(client, tenant, image, other_tenant):
    headers = tenant.headers()
    path = f"/images/{image['id']}/signed-url"
    for body, field in [
        ({"width": 0}, "width"),
        ({"rendition": "original", "width": 10}, "width"),
        ({"rendition": "thumbnail", "size": "huge"}, "size"),
        ({"expires_in": 10**9}, "expires_in"),
        ({"rendition": "movie"}, "rendition"),
        ({"width": 99999}, None),
    ]:
        answer = client.post(path, json=body, headers=headers)
        assert answer.status_code == 422, body
        if field:
            assert field in answer.json["errors"]["json"], answer.json
    assert client.post(path, json={}, headers=other_tenant.headers()).status_code == 404
