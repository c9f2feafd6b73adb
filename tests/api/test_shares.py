"""Share links: the API that makes them and the public pages they open.

Tokens, expiry, passwords, what a share may serve (no originals unless
allowed), its own rate limit, views counted, privacy headers, and tenant
isolation: a share of tenant A never shows anything of tenant B.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from image_repo.db.models import Share
from image_repo.http.context import services_of
from tests.support.images import jpeg_bytes, upload

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def app_config(app_config):
    return {**app_config, "SHARE_RATELIMIT": "1000 per minute"}


@pytest.fixture
def images(client, tenant) -> list[dict]:
    headers = tenant.headers()
    return [
        upload(client, headers, jpeg_bytes(seed, (160, 120)), f"{seed}.jpg", title=f"n{seed}").json
        for seed in (1, 2, 3)
    ]


@pytest.fixture
def album(client, tenant, images) -> dict:
    headers = tenant.headers()
    col = client.post("/collections", json={"name": "Trip"}, headers=headers).json
    for image in images[:2]:
        client.put(f"/collections/{col['id']}/images/{image['id']}", headers=headers)
    return col


def _share(client, headers, **body) -> dict:
    made = client.post("/shares", json=body, headers=headers)
    assert made.status_code == 201, made.json
    return made.json


def _path(share: dict) -> str:
    url = share["url"]
    assert url.startswith("http://localhost/s/")
    return url.removeprefix("http://localhost")


def _token(share: dict) -> str:
    return share["url"].rsplit("/s/", 1)[1]


def _local(url: str) -> str:
    return url.removeprefix("http://localhost")


def test_create_list_show_and_delete(client, tenant, images):
    headers = tenant.headers("contributor")
    made = _share(client, headers, image_id=images[0]["id"], label="For grandma")
    token = _token(made)
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token)  # 192 bits
    assert made["kind"] == "image" and made["allow_original"] is False
    assert made["has_password"] is False and made["view_count"] == 0
    lifetime = datetime.fromisoformat(made["expires_at"]) - datetime.fromisoformat(
        made["created_at"]
    )
    assert lifetime == timedelta(days=7)
    shown = client.get(f"/shares/{made['id']}", headers=headers).json
    assert "url" not in shown and shown["label"] == "For grandma"
    listed = client.get("/shares?limit=1", headers=headers).json
    assert [s["id"] for s in listed["items"]] == [made["id"]]

    page = client.get(_path(made), headers=JSON)
    assert page.status_code == 200
    assert client.delete(f"/shares/{made['id']}", headers=headers).status_code == 204
    assert client.get(_path(made), headers=JSON).status_code == 404
    assert client.get(f"/shares/{made['id']}", headers=headers).status_code == 404


def test_only_the_token_s_hash_is_stored(app, client, tenant, images):
    made = _share(client, tenant.headers(), image_id=images[0]["id"])
    with services_of(app).engine.connect() as connection:
        row = connection.execute(select(Share).where(Share.id == made["id"])).one()
    assert _token(made) not in str(tuple(row))
    assert len(row.token_sha256) == 64


def test_paging_and_permissions(client, tenant, images):
    headers = tenant.headers()
    for image in images:
        _share(client, headers, image_id=image["id"])
    first = client.get("/shares?limit=2", headers=headers).json
    second = client.get(f"/shares?limit=2&cursor={first['next_cursor']}", headers=headers).json
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    assert second["next_cursor"] is None
    reader = tenant.headers("reader")
    assert (
        client.post("/shares", json={"image_id": images[0]["id"]}, headers=reader).status_code
        == 403
    )
    assert client.get("/shares", headers=reader).status_code == 403


def test_bad_requests_are_422_or_404(client, tenant, images, album, other_tenant):
    headers = tenant.headers()
    for body in (
        {},
        {"image_id": images[0]["id"], "collection_id": album["id"]},
        {"image_id": images[0]["id"], "expires_in": 0},
        {"image_id": images[0]["id"], "expires_in": 91 * 86400},
        {"image_id": images[0]["id"], "password": ""},
    ):
        assert client.post("/shares", json=body, headers=headers).status_code == 422, body
    # Another tenant's image or album: not found (in the body: 422), as any id not its own.
    theirs = other_tenant.headers()
    assert (
        client.post("/shares", json={"image_id": images[0]["id"]}, headers=theirs).status_code
        == 422
    )
    assert (
        client.post("/shares", json={"collection_id": album["id"]}, headers=theirs).status_code
        == 422
    )


def test_an_image_share_page_in_html_and_json(client, tenant, images):
    made = _share(client, tenant.headers(), image_id=images[0]["id"], label="Pier")
    html = client.get(_path(made), headers=HTML)
    assert html.status_code == 200 and html.mimetype == "text/html"
    text = html.get_data(as_text=True)
    assert "<script" not in text and "style=" not in text
    assert f"/s/{_token(made)}/images/{images[0]['id']}/render" in text
    assert "original" not in text.lower().replace("original files", "")
    csp = html.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert html.headers["Referrer-Policy"] == "no-referrer"
    assert html.headers["X-Robots-Tag"].startswith("noindex")

    data = client.get(_path(made), headers=JSON).json
    assert data["share"]["kind"] == "image" and data["share"]["title"] == "Pier"
    [image] = data["images"]
    assert image["id"] == images[0]["id"] and image["title"] == "n1"
    assert (image["width"], image["height"]) == (160, 120)
    assert set(image["urls"]) == {"page", "thumbnail", "preview", "render"}
    for name in ("thumbnail", "preview"):
        got = client.get(_local(image["urls"][name]))
        assert got.status_code == 200 and got.mimetype.startswith("image/"), name
        assert got.headers["Referrer-Policy"] == "no-referrer"
        assert "no-cache" in got.headers["Cache-Control"]
    sized = client.get(_local(image["urls"]["render"]) + "?width=50&format=png")
    assert sized.status_code == 200 and sized.mimetype == "image/png"
    assert client.get(_local(image["urls"]["render"]) + "?width=0").status_code == 422
    # The stylesheet is served here too.
    assert client.get("/s/_assets/share.css").status_code == 200


def test_no_original_unless_allowed(client, tenant, images):
    headers = tenant.headers()
    image_id = images[0]["id"]
    plain = _share(client, headers, image_id=image_id)
    refused = client.get(f"{_path(plain)}/images/{image_id}/original")
    assert refused.status_code == 404
    allowed = _share(client, headers, image_id=image_id, allow_original=True)
    urls = client.get(_path(allowed), headers=JSON).json["images"][0]["urls"]
    got = client.get(_local(urls["original"]) + "?download=true")
    assert got.status_code == 200 and got.data[:2] == b"\xff\xd8"
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert "Download the original" in client.get(_path(allowed), headers=HTML).get_data(True)


def test_a_collection_share_shows_its_members_only(client, tenant, images, album):
    made = _share(client, tenant.headers(), collection_id=album["id"])
    data = client.get(_path(made), headers=JSON).json
    assert data["share"]["title"] == "Trip" and data["share"]["kind"] == "collection"
    shown = {i["id"] for i in data["images"]}
    assert shown == {images[0]["id"], images[1]["id"]}
    outsider = images[2]["id"]
    for suffix in ("", "/thumbnail", "/render?width=20"):
        assert (
            client.get(f"{_path(made)}/images/{outsider}{suffix}", headers=JSON).status_code == 404
        )
    page = client.get(_path(made), headers=HTML).get_data(as_text=True)
    assert page.count("<img ") == 2
    one = client.get(f"{_path(made)}/images/{images[0]['id']}", headers=HTML)
    assert one.status_code == 200 and "Trip" in one.get_data(as_text=True)
    # Removed from the album: gone from the share.
    client.delete(f"/collections/{album['id']}/images/{images[1]['id']}", headers=tenant.headers())
    data = client.get(_path(made), headers=JSON).json
    assert [i["id"] for i in data["images"]] == [images[0]["id"]]


def test_expired_revoked_and_unknown_links_look_the_same(app, client, tenant, images):
    headers = tenant.headers()
    expired = _share(client, headers, image_id=images[0]["id"])
    revoked = _share(client, headers, image_id=images[0]["id"])
    with services_of(app).engine.begin() as connection:
        connection.execute(
            update(Share)
            .where(Share.id == expired["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    client.delete(f"/shares/{revoked['id']}", headers=headers)
    unknown = "/s/" + "A" * 32
    paths = [_path(expired), _path(revoked), unknown, "/s/short"]
    for accept in (HTML, JSON):
        answers = [client.get(path, headers=accept) for path in paths]
        assert {a.status_code for a in answers} == {404}
        assert len({a.data for a in answers}) == 1, accept
        assert {a.headers["Content-Type"] for a in answers} == {answers[0].headers["Content-Type"]}
    assert "not available" in client.get(unknown, headers=HTML).get_data(as_text=True)
    assert client.get(unknown, headers=JSON).json["code"] == 404
    image = f"/images/{images[0]['id']}/thumbnail"
    assert {client.get(p + image).status_code for p in paths} == {404}


def test_password_protected_share(client, tenant, images):
    made = _share(client, tenant.headers(), image_id=images[0]["id"], password="hunter2")
    assert made["has_password"] is True
    path = _path(made)
    thumb = f"{path}/images/{images[0]['id']}/thumbnail"
    form = client.get(path, headers=HTML)
    assert form.status_code == 401 and 'type="password"' in form.get_data(as_text=True)
    assert "<script" not in form.get_data(as_text=True)
    assert client.get(path, headers=JSON).json["errors"] == {"password": ["required"]}
    assert client.get(thumb).status_code == 401

    wrong = client.post(path, data={"password": "nope"}, headers=HTML)
    assert wrong.status_code == 403 and "not the password" in wrong.get_data(as_text=True)
    assert client.get(thumb).status_code == 401

    right = client.post(path, data={"password": "hunter2"}, headers=HTML)
    assert right.status_code == 303 and right.headers["Location"].endswith(path)
    cookie = right.headers["Set-Cookie"]
    assert f"Path={path}" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "hunter2" not in cookie
    assert client.get(path, headers=HTML).status_code == 200
    assert client.get(thumb).status_code == 200

    # The cookie opens this share only.
    other = _share(client, tenant.headers(), image_id=images[0]["id"], password="hunter2")
    assert client.get(_path(other), headers=JSON).status_code == 401
    # JSON clients post JSON.
    fresh = client.application.test_client()
    unlocked = fresh.post(_path(other), json={"password": "hunter2"}, headers=JSON)
    assert unlocked.status_code == 200 and unlocked.json["unlocked"] is True
    assert fresh.get(_path(other), headers=JSON).status_code == 200


def test_password_attempts_are_rate_limited(app_config, tmp_path):
    from tests.conftest import create_tenant, make_app

    app = make_app({**app_config, "SHARE_PASSWORD_RATELIMIT": "3 per hour"})
    client = app.test_client()
    tenant = create_tenant(app)
    image = upload(client, tenant.headers(), jpeg_bytes(5), "5.jpg").json
    made = _share(client, tenant.headers(), image_id=image["id"], password="s3cret")
    path = _path(made)
    statuses = [client.post(path, data={"password": "x"}).status_code for _ in range(3)]
    assert statuses == [403, 403, 403]
    refused = client.post(path, data={"password": "s3cret"}, headers=JSON)
    assert refused.status_code == 429 and refused.json["code"] == 429
    assert "Retry-After" in refused.headers
    services_of(app).engine.dispose()


def test_each_share_has_its_own_rate_limit(app_config):
    from tests.conftest import create_tenant, make_app

    app = make_app({**app_config, "SHARE_RATELIMIT": "4 per hour"})
    client = app.test_client()
    tenant = create_tenant(app)
    image = upload(client, tenant.headers(), jpeg_bytes(6), "6.jpg").json
    busy = _share(client, tenant.headers(), image_id=image["id"])
    calm = _share(client, tenant.headers(), image_id=image["id"])
    thumb = f"/images/{image['id']}/thumbnail"
    answers = [client.get(_path(busy), headers=JSON)] + [
        client.get(_path(busy) + thumb) for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    assert answers[-1].json["code"] == 429
    assert client.get(_path(calm) + thumb).status_code == 200
    # The key's own budget is not the share's.
    assert client.get(thumb, headers=tenant.headers()).status_code == 200
    services_of(app).engine.dispose()


def test_views_are_counted(client, tenant, images):
    headers = tenant.headers()
    made = _share(client, headers, image_id=images[0]["id"])
    client.get(_path(made), headers=HTML)
    client.get(_path(made), headers=JSON)
    client.get(f"{_path(made)}/images/{images[0]['id']}/thumbnail")  # an image is not a view
    shown = client.get(f"/shares/{made['id']}", headers=headers).json
    assert shown["view_count"] == 2 and shown["last_viewed_at"] is not None


def test_a_share_never_shows_another_tenant_s_images(client, tenant, other_tenant, images, album):
    theirs = upload(client, other_tenant.headers(), jpeg_bytes(40), "40.jpg").json
    # Even in an album of tenant A, an image of tenant B is never shown.
    client.put(f"/collections/{album['id']}/images/{theirs['id']}", headers=tenant.headers())
    mine = _share(client, tenant.headers(), collection_id=album["id"])
    their_share = _share(client, other_tenant.headers(), image_id=theirs["id"])
    data = client.get(_path(mine), headers=JSON).json
    assert theirs["id"] not in {i["id"] for i in data["images"]}
    for suffix in ("", "/thumbnail", "/render?width=10", "/original"):
        got = client.get(f"{_path(mine)}/images/{theirs['id']}{suffix}", headers=JSON)
        assert got.status_code == 404, suffix
    # B's share shows B's image, and none of A's.
    assert client.get(_path(their_share), headers=JSON).json["images"][0]["id"] == theirs["id"]
    for image in images:
        got = client.get(f"{_path(their_share)}/images/{image['id']}/thumbnail")
        assert got.status_code == 404
    # Neither tenant sees the other's shares through the API.
    assert client.get(f"/shares/{mine['id']}", headers=other_tenant.headers()).status_code == 404
    assert client.delete(f"/shares/{mine['id']}", headers=other_tenant.headers()).status_code == 404
    assert [
        s["id"] for s in client.get("/shares", headers=other_tenant.headers()).json["items"]
    ] == [their_share["id"]]
