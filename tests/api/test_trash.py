"""The trash: DELETE moves an image there, hidden from everything; restore, purge, retention.

Every test runs on SQLite and on PostgreSQL (the app fixtures).
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta

import pytest
from PIL import Image as PILImage
from sqlalchemy import update

from image_repo import create_app
from image_repo.config import ConfigError
from image_repo.db.models import Image
from image_repo.db.types import utcnow
from image_repo.http.context import http_state, services_of
from image_repo.storage import blob_key, rendition_prefix
from tests.conftest import create_tenant, make_app
from tests.support.images import jpeg_bytes, png_bytes, upload


def same_picture_other_bytes(data: bytes) -> bytes:
    """The same pixels in other PNG bytes: another image with the same perceptual hash."""
    out = io.BytesIO()
    PILImage.open(io.BytesIO(data)).save(out, "PNG", compress_level=1)
    assert out.getvalue() != data
    return out.getvalue()


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json["items"]]


def similar_ids(client, headers, image_id) -> list[str]:
    response = client.get(
        f"/images/{image_id}/similar", query_string={"max_distance": 0}, headers=headers
    )
    return [item["image"]["id"] for item in response.json["items"]]


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def backdate(app, image_id: str, days: float) -> None:
    """Set an image's time in the trash, as if it had been deleted ``days`` ago."""
    with services_of(app).engine.begin() as connection:
        connection.execute(
            update(Image)
            .where(Image.id == image_id)
            .values(trashed_at=utcnow() - timedelta(days=days))
        )


def gc(app, *args) -> dict:
    result = app.test_cli_runner().invoke(args=["gc", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def album(client, tenant):
    """Two images of one picture (in other bytes) in an album; the first is titled and tagged."""
    headers = tenant.headers()
    data = png_bytes(1)
    first = upload(client, headers, data, "pier.png", title="Pier at dusk", tags="sea").json
    second = upload(client, headers, same_picture_other_bytes(data), "copy.png").json
    col = client.post("/collections", json={"name": "Coast"}, headers=headers).json
    for image in (first, second):
        client.put(f"/collections/{col['id']}/images/{image['id']}", headers=headers)
    return first, second, col


def test_a_trashed_image_is_gone_from_everything_at_once(app, client, tenant, album):
    headers = tenant.headers()
    image, other, col = album
    image_id = image["id"]
    etag = client.get(f"/images/{image_id}", headers=headers).headers["ETag"]
    thumb = client.get(f"/images/{image_id}/thumbnail", headers=headers)
    assert thumb.status_code == 200
    assert similar_ids(client, headers, other["id"]) == [image_id]

    assert client.delete(f"/images/{image_id}", headers=headers).status_code == 204

    gone = [
        ("GET", f"/images/{image_id}", {}),
        ("GET", f"/images/{image_id}", {"If-None-Match": etag}),  # 404, not 304
        ("GET", f"/images/{image_id}/file", {}),
        ("HEAD", f"/images/{image_id}/file", {}),
        ("GET", f"/images/{image_id}/thumbnail", {}),
        ("GET", f"/images/{image_id}/thumbnail", {"If-None-Match": thumb.headers["ETag"]}),
        ("GET", f"/images/{image_id}/render?width=8", {}),
        ("GET", f"/images/{image_id}/similar", {}),
        ("PATCH", f"/images/{image_id}", {}),
        ("DELETE", f"/images/{image_id}", {}),  # not twice
        ("PUT", f"/collections/{col['id']}/images/{image_id}", {}),
        ("DELETE", f"/collections/{col['id']}/images/{image_id}", {}),
    ]
    for method, url, extra in gone:
        answer = client.open(url, method=method, headers={**headers, **extra}, json={"title": "x"})
        assert answer.status_code == 404, (method, url, answer.status_code)
    # Lists, filters, search and the timeline.
    assert ids(client.get("/images", headers=headers)) == [other["id"]]
    for query in ({"tag": "sea"}, {"q": "pier"}, {"sha256": image["sha256"]}):
        assert ids(client.get("/images", query_string=query, headers=headers)) == [], query
    buckets = client.get("/images/timeline", headers=headers).json["buckets"]
    assert sum(bucket["count"] for bucket in buckets) == 1
    # Its album: not listed, not counted; similar images: not found.
    assert ids(client.get(f"/collections/{col['id']}/images", headers=headers)) == [other["id"]]
    assert client.get(f"/collections/{col['id']}", headers=headers).json["image_count"] == 1
    assert [
        c["image_count"] for c in client.get("/collections", headers=headers).json["items"]
    ] == [1]
    assert similar_ids(client, headers, other["id"]) == []

    # In the trash, with when it goes for good.
    trash = client.get("/trash", headers=headers).json
    assert [item["id"] for item in trash["items"]] == [image_id] and trash["next_cursor"] is None
    item = trash["items"][0]
    assert item["title"] == "Pier at dusk" and item["tags"] == ["sea"]
    trashed_at = when(item["trashed_at"])
    assert abs(trashed_at - utcnow()) < timedelta(minutes=5)
    assert when(item["purge_at"]) - trashed_at == timedelta(days=30)

    # gc keeps the bytes (and renditions) of an image in the trash.
    assert gc(app, "--grace", "0s") == {
        "trash_purged": 0,
        "originals_removed": 0,
        "renditions_removed": 0,
        "kept_young": 0,
        "temp_removed": 0,
    }
    store = services_of(app).blob_store
    assert store.exists(blob_key(image["sha256"]))
    assert list(store.iter_keys(rendition_prefix(image["sha256"])))


def test_restore_brings_it_back_as_it_was(client, tenant, album):
    headers = tenant.headers()
    image, other, col = album
    before = client.get(f"/images/{image['id']}", headers=headers)
    client.delete(f"/images/{image['id']}", headers=headers)

    restored = client.post(f"/trash/{image['id']}/restore", headers=tenant.headers("contributor"))
    assert restored.status_code == 200
    assert restored.json == before.json
    assert restored.headers["ETag"] == before.headers["ETag"]
    again = client.get(f"/images/{image['id']}", headers=headers)
    assert again.status_code == 200 and again.json == before.json
    assert (
        client.get(
            f"/images/{image['id']}", headers={**headers, "If-None-Match": before.headers["ETag"]}
        ).status_code
        == 304
    )
    # Back in its album, its tag, search and similar.
    assert set(ids(client.get(f"/collections/{col['id']}/images", headers=headers))) == {
        image["id"],
        other["id"],
    }
    assert client.get(f"/collections/{col['id']}", headers=headers).json["image_count"] == 2
    assert ids(client.get("/images", query_string={"tag": "sea"}, headers=headers)) == [image["id"]]
    assert similar_ids(client, headers, other["id"]) == [image["id"]]
    assert client.get(f"/images/{image['id']}/file", headers=headers).status_code == 200
    assert client.get("/trash", headers=headers).json["items"] == []

    # Only what is in the trash can be restored.
    for image_id in (image["id"], "img_" + "a" * 20):
        missing = client.post(f"/trash/{image_id}/restore", headers=headers)
        assert missing.status_code == 404
        assert missing.json["message"] == f"No image {image_id!r} in the trash."


def test_trash_pages_most_recently_deleted_first(client, tenant):
    headers = tenant.headers()
    images = [upload(client, headers, png_bytes(10 + i)).json for i in range(5)]
    kept = [upload(client, headers, png_bytes(20 + i)).json for i in range(2)]
    for image in images:
        assert client.delete(f"/images/{image['id']}", headers=headers).status_code == 204
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/trash", query_string=query, headers=headers)
        assert page.status_code == 200 and len(page.json["items"]) <= 2
        seen += [item["id"] for item in page.json["items"]]
        cursor = page.json["next_cursor"]
        if not cursor:
            break
    assert seen == [image["id"] for image in reversed(images)]
    assert not {image["id"] for image in kept} & set(seen)
    times = [when(i["trashed_at"]) for i in client.get("/trash", headers=headers).json["items"]]
    assert times == sorted(times, reverse=True)

    # A cursor is for the trash only, and forged ones are refused.
    images_cursor = client.get("/images", query_string={"limit": 1}, headers=headers).json
    assert images_cursor["next_cursor"]
    for bad in (images_cursor["next_cursor"], "forged"):
        refused = client.get("/trash", query_string={"cursor": bad}, headers=headers)
        assert refused.status_code == 422 and "cursor" in refused.json["errors"]["query"]
    assert client.get("/trash", query_string={"limit": 201}, headers=headers).status_code == 422


def test_purge_one_or_all_needs_trash_purge(app, client, tenant, album):
    headers = tenant.headers()
    image, other, col = album
    third = upload(client, headers, png_bytes(30)).json
    for victim in (image, third):
        client.delete(f"/images/{victim['id']}", headers=headers)
    keys = {group: tenant.headers(group) for group in ("reader", "contributor", "editor")}

    # Reading and restoring the trash need images:write; a reader sees none of it.
    for method, url in (
        ("GET", "/trash"),
        ("POST", f"/trash/{image['id']}/restore"),
        ("DELETE", f"/trash/{image['id']}"),
        ("POST", "/trash/empty"),
    ):
        refused = client.open(url, method=method, headers=keys["reader"])
        assert refused.status_code == 403, (method, url)
    assert client.get("/trash", headers=keys["contributor"]).status_code == 200
    for method, url in (("DELETE", f"/trash/{image['id']}"), ("POST", "/trash/empty")):
        refused = client.open(url, method=method, headers=keys["contributor"])
        assert refused.status_code == 403
        assert "'trash:purge'" in refused.json["message"]
    assert len(client.get("/trash", headers=headers).json["items"]) == 2

    # An image in the library is not purged by the trash's endpoint.
    kept = client.delete(f"/trash/{other['id']}", headers=keys["editor"])
    assert kept.status_code == 404
    assert client.get(f"/images/{other['id']}", headers=headers).status_code == 200

    assert client.delete(f"/trash/{image['id']}", headers=keys["editor"]).status_code == 204
    assert client.delete(f"/trash/{image['id']}", headers=keys["editor"]).status_code == 404
    assert client.post(f"/trash/{image['id']}/restore", headers=headers).status_code == 404
    assert ids(client.get("/trash", headers=headers)) == [third["id"]]

    emptied = client.post("/trash/empty", headers=keys["editor"])
    assert emptied.status_code == 200 and emptied.json == {"purged": 1}
    assert client.get("/trash", headers=headers).json["items"] == []
    assert client.post("/trash/empty", headers=headers).json == {"purged": 0}

    # Purged means gone: memberships went with the row, and the same bytes
    # uploaded again are a new image outside the album.
    again = upload(client, headers, png_bytes(1), "pier.png")
    assert again.status_code == 201 and again.json["id"] != image["id"]
    assert again.json["title"] is None
    assert ids(client.get(f"/collections/{col['id']}/images", headers=headers)) == [other["id"]]
    # Bytes no image refers to are collected by gc; the re-uploaded ones stay.
    removed = gc(app, "--grace", "0s")
    assert removed["trash_purged"] == 0 and removed["originals_removed"] == 1
    store = services_of(app).blob_store
    assert not store.exists(blob_key(third["sha256"]))
    assert store.exists(blob_key(image["sha256"]))


def test_gc_purges_what_has_been_in_the_trash_long_enough(app, client, tenant):
    headers = tenant.headers()
    old, young, live = (upload(client, headers, png_bytes(40 + i)).json for i in range(3))
    for image in (old, young):
        client.delete(f"/images/{image['id']}", headers=headers)
    backdate(app, old["id"], days=30.01)
    backdate(app, young["id"], days=29.99)
    listed = {item["id"]: item for item in client.get("/trash", headers=headers).json["items"]}
    assert when(listed[old["id"]]["purge_at"]) < utcnow() < when(listed[young["id"]]["purge_at"])

    report = gc(app, "--grace", "0s")  # IMAGE_REPO_TRASH_DAYS, 30 by default
    assert report["trash_purged"] == 1 and report["originals_removed"] == 1
    assert ids(client.get("/trash", headers=headers)) == [young["id"]]
    store = services_of(app).blob_store
    assert not store.exists(blob_key(old["sha256"]))
    assert store.exists(blob_key(young["sha256"])) and store.exists(blob_key(live["sha256"]))
    assert client.post(f"/trash/{old['id']}/restore", headers=headers).status_code == 404

    # Another period, now: 0 days empties every tenant's trash; the library stays.
    report = gc(app, "--grace", "0s", "--trash-days", "0")
    assert report["trash_purged"] == 1 and report["originals_removed"] == 1
    assert client.get("/trash", headers=headers).json["items"] == []
    assert ids(client.get("/images", headers=headers)) == [live["id"]]
    assert store.exists(blob_key(live["sha256"]))

    text = app.test_cli_runner().invoke(args=["gc"]).output
    assert text.startswith("purged 0 images from the trash (there 30 days or more); removed ")


def test_retention_follows_the_setting(app_config):
    app = make_app({**app_config, "TRASH_DAYS": 7})
    try:
        tenant = create_tenant(app)
        client = app.test_client()
        image = upload(client, tenant.headers(), png_bytes(50)).json
        client.delete(f"/images/{image['id']}", headers=tenant.headers())
        [item] = client.get("/trash", headers=tenant.headers()).json["items"]
        assert when(item["purge_at"]) - when(item["trashed_at"]) == timedelta(days=7)
        backdate(app, image["id"], days=6.99)
        assert gc(app)["trash_purged"] == 0
        backdate(app, image["id"], days=7.01)
        assert gc(app)["trash_purged"] == 1
    finally:
        services_of(app).engine.dispose()


def test_with_the_trash_off_a_delete_is_final_at_once(app_config):
    app = make_app({**app_config, "TRASH_DAYS": 0})
    try:
        tenant = create_tenant(app)
        client = app.test_client()
        headers = tenant.headers()
        image = upload(client, headers, png_bytes(60)).json
        col = client.post("/collections", json={"name": "Off"}, headers=headers).json
        client.put(f"/collections/{col['id']}/images/{image['id']}", headers=headers)

        assert client.delete(f"/images/{image['id']}", headers=headers).status_code == 204
        assert client.get(f"/images/{image['id']}", headers=headers).status_code == 404
        assert client.get("/trash", headers=headers).json["items"] == []
        assert client.post(f"/trash/{image['id']}/restore", headers=headers).status_code == 404
        assert client.get(f"/collections/{col['id']}", headers=headers).json["image_count"] == 0
        assert client.delete(f"/images/{image['id']}", headers=headers).status_code == 404
        # The row is gone: the same bytes again are a new image, and gc may take the bytes.
        again = upload(client, headers, png_bytes(60))
        assert again.status_code == 201 and again.json["id"] != image["id"]
        client.delete(f"/images/{again.json['id']}", headers=headers)
        assert gc(app, "--grace", "0s")["originals_removed"] == 1
    finally:
        services_of(app).engine.dispose()


def test_trash_days_may_not_be_negative(tmp_path):
    with pytest.raises(ConfigError, match="IMAGE_REPO_TRASH_DAYS"):
        create_app({"DATA_DIR": tmp_path, "TRASH_DAYS": -1})


def test_the_rendition_front_refuses_a_trashed_images_stored_rendition(app_config):
    app = make_app({**app_config, "RATELIMIT_READ": "1000 per minute"})
    try:
        tenant = create_tenant(app)
        client = app.test_client()
        headers = {"X-API-Key": tenant.admin_key}
        image_id = upload(client, headers, jpeg_bytes(7, (120, 80)), "7.jpg").json["id"]
        front = http_state(app).rendition_front
        url = f"/images/{image_id}/render?width=40&height=40&format=jpeg"
        made = client.get(url, headers=headers)
        assert made.status_code == 200 and made.headers["X-Rendition-Cache"] == "miss"
        served = front.served
        assert client.get(url, headers=headers).status_code == 200
        assert front.served == served + 1  # the front answers the stored rendition

        assert client.delete(f"/images/{image_id}", headers=headers).status_code == 204
        conditional = {**headers, "If-None-Match": made.headers["ETag"]}
        for request_headers in (headers, conditional):
            for method in ("GET", "HEAD"):
                refused = client.open(url, method=method, headers=request_headers)
                assert refused.status_code == 404, (method, request_headers)
        assert client.get(url, headers=headers).json["message"] == f"No image {image_id!r}."
        assert front.served == served + 1  # the front stepped aside each time
        # The stored file is still there (kept until purge): only the query refused it.
        assert list(services_of(app).blob_store.iter_keys("renditions/"))

        client.post(f"/trash/{image_id}/restore", headers=headers)
        back = client.get(url, headers=headers)
        assert back.status_code == 200 and back.data == made.data
        assert front.served == served + 2
    finally:
        services_of(app).engine.dispose()


def test_another_tenant_can_neither_see_nor_restore_nor_purge_the_trash(
    client, tenant, other_tenant
):
    mine, theirs = tenant.headers(), other_tenant.headers()
    data = png_bytes(70)
    image = upload(client, mine, data).json
    client.delete(f"/images/{image['id']}", headers=mine)

    assert client.get("/trash", headers=theirs).json["items"] == []
    for method, url in (
        ("POST", f"/trash/{image['id']}/restore"),
        ("DELETE", f"/trash/{image['id']}"),
    ):
        answer = client.open(url, method=method, headers=theirs)
        assert answer.status_code == 404
        assert answer.json["message"] == f"No image {image['id']!r} in the trash."
    assert client.post("/trash/empty", headers=theirs).json == {"purged": 0}
    # Their upload of the same bytes is their own new image; mine stays in my trash.
    their_copy = upload(client, theirs, data)
    assert their_copy.status_code == 201 and their_copy.json["id"] != image["id"]
    assert ids(client.get("/trash", headers=mine)) == [image["id"]]
    # And their trash is theirs: deleting their copy leaves mine alone.
    client.delete(f"/images/{their_copy.json['id']}", headers=theirs)
    assert ids(client.get("/trash", headers=theirs)) == [their_copy.json["id"]]
    assert client.post("/trash/empty", headers=theirs).json == {"purged": 1}
    assert ids(client.get("/trash", headers=mine)) == [image["id"]]
    assert client.post(f"/trash/{image['id']}/restore", headers=mine).status_code == 200


def test_uploading_a_trashed_images_bytes_restores_it(client, tenant, album):
    headers = tenant.headers()
    image, _, col = album
    client.delete(f"/images/{image['id']}", headers=headers)

    again = upload(
        client, tenant.headers("contributor"), png_bytes(1), "new-name.png", title="Other title"
    )
    assert again.status_code == 200
    assert again.json["id"] == image["id"]
    # As it was: the upload's fields are ignored, as for any duplicate.
    assert again.json["title"] == "Pier at dusk" and again.json["filename"] == "pier.png"
    assert again.json["tags"] == ["sea"]
    assert client.get("/trash", headers=headers).json["items"] == []
    assert client.get(f"/collections/{col['id']}", headers=headers).json["image_count"] == 2
    assert client.get(f"/images/{image['id']}", headers=headers).status_code == 200


def test_trashed_images_count_against_quotas_until_purged(app, client):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["tenants", "create", "small", "--max-images", "1"]).exit_code == 0
    created = runner.invoke(
        args=["keys", "create", "--tenant", "small", "--group", "editor", "--json"]
    )
    headers = {"X-API-Key": json.loads(created.output)["api_key"]}
    first = upload(client, headers, png_bytes(80)).json
    assert client.delete(f"/images/{first['id']}", headers=headers).status_code == 204

    over = upload(client, headers, png_bytes(81))
    assert over.status_code == 409 and over.json["errors"] == {"quota": ["max_images"]}
    # Restoring never passes the quota (the image was counted all along).
    assert upload(client, headers, png_bytes(80)).status_code == 200
    assert client.delete(f"/images/{first['id']}", headers=headers).status_code == 204
    assert client.post(f"/trash/{first['id']}/restore", headers=headers).status_code == 200
    assert client.delete(f"/images/{first['id']}", headers=headers).status_code == 204
    # Purged, the room is free.
    assert client.delete(f"/trash/{first['id']}", headers=headers).status_code == 204
    assert upload(client, headers, png_bytes(81)).status_code == 201


def test_trashed_bytes_count_against_the_byte_quota(app, client):
    data = png_bytes(90)
    runner = app.test_cli_runner()
    quota = str(len(data) + 10)
    assert runner.invoke(args=["tenants", "create", "tight", "--max-bytes", quota]).exit_code == 0
    created = runner.invoke(
        args=["keys", "create", "--tenant", "tight", "--group", "editor", "--json"]
    )
    headers = {"X-API-Key": json.loads(created.output)["api_key"]}
    image = upload(client, headers, data).json
    client.delete(f"/images/{image['id']}", headers=headers)
    over = upload(client, headers, png_bytes(91))
    assert over.status_code == 409 and over.json["errors"] == {"quota": ["max_bytes"]}
    assert client.post("/trash/empty", headers=headers).json == {"purged": 1}
    assert upload(client, headers, png_bytes(91)).status_code == 201


def test_migrating_down_purges_the_trash_and_keeps_the_library(app, client, tenant, album):
    from alembic import command
    from sqlalchemy import text

    from image_repo.db import migrate

    headers = tenant.headers()
    image, other, col = album
    client.put(f"/collections/{col['id']}/images/{other['id']}", headers=headers)
    client.patch(f"/images/{other['id']}", json={"tags": ["kept"]}, headers=headers)
    client.delete(f"/images/{image['id']}", headers=headers)
    engine = services_of(app).engine

    def rows() -> dict:
        with engine.connect() as connection:
            return {
                table: sorted(connection.execute(text(f"SELECT image_id FROM {table}")).scalars())
                for table in ("image_tags", "collection_images")
            }

    # Before this revision there was no trash: what is in it goes, nothing else.
    command.downgrade(migrate.alembic_config(engine), "0006-1")
    assert rows() == {"image_tags": [other["id"]], "collection_images": [other["id"]]}
    migrate.upgrade(engine)
    assert client.get(f"/images/{other['id']}", headers=headers).json["tags"] == ["kept"]
    assert client.get("/trash", headers=headers).json["items"] == []


def _has_share_links(app) -> bool:
    return any(rule.rule == "/shares" for rule in app.url_map.iter_rules())


def test_share_links_lose_a_trashed_image_and_get_it_back_on_restore(app, client, tenant, album):
    """The hook for share links (branch share-links, not on main yet): runs once they are.

    A share shows what its tenant has now; an image in the trash is not had. The
    share itself stays (the image's row does), so a restore brings it back.
    """
    if not _has_share_links(app):
        pytest.skip("no share links in this build")
    headers = tenant.headers()
    image, other, col = album

    def token(**body) -> str:
        made = client.post("/shares", json=body, headers=headers)
        assert made.status_code == 201, made.json
        return made.json["url"].rsplit("/s/", 1)[1]

    alone, whole = token(image_id=image["id"]), token(collection_id=col["id"])
    thumbs = [f"/s/{t}/images/{image['id']}/thumbnail?size=small" for t in (alone, whole)]
    assert [client.get(url).status_code for url in thumbs] == [200, 200]

    client.delete(f"/images/{image['id']}", headers=headers)
    assert [client.get(url).status_code for url in thumbs] == [404, 404]
    for t in (alone, whole):  # its page, in HTML and JSON
        for accept in ("text/html", "application/json"):
            page = client.get(f"/s/{t}/images/{image['id']}", headers={"Accept": accept})
            assert page.status_code == 404, (t == whole, accept)
    shown = client.get(f"/s/{whole}", headers={"Accept": "application/json"}).json
    assert [i["id"] for i in shown["images"]] == [other["id"]]

    client.post(f"/trash/{image['id']}/restore", headers=headers)
    assert [client.get(url).status_code for url in thumbs] == [200, 200]
