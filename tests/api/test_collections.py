"""Collections: create, list, rename, delete; add and remove images; page through them."""

from __future__ import annotations

from tests.support.images import png_bytes, upload


def test_collection_lifecycle(client, tenant):
    headers = tenant.headers()
    created = client.post(
        "/collections", json={"name": "Trip", "description": "2024"}, headers=headers
    )
    assert created.status_code == 201
    col = created.json
    assert col["image_count"] == 0
    assert client.post("/collections", json={"name": "Trip"}, headers=headers).status_code == 409

    renamed = client.patch(f"/collections/{col['id']}", json={"name": "Big trip"}, headers=headers)
    assert renamed.status_code == 200 and renamed.json["name"] == "Big trip"
    assert client.get(f"/collections/{col['id']}", headers=headers).json["name"] == "Big trip"

    listed = client.get("/collections", headers=headers).json
    assert [c["id"] for c in listed["items"]] == [col["id"]] and listed["next_cursor"] is None

    assert (
        client.delete(
            f"/collections/{col['id']}", headers=tenant.headers("contributor")
        ).status_code
        == 403
    )
    assert client.delete(f"/collections/{col['id']}", headers=headers).status_code == 204
    assert client.get(f"/collections/{col['id']}", headers=headers).status_code == 404


def test_adding_removing_and_paging_images(client, tenant):
    headers = tenant.headers()
    col = client.post("/collections", json={"name": "Best"}, headers=headers).json
    images = [
        upload(client, headers, png_bytes(i), tags="x" if i % 2 else "y").json for i in range(5)
    ]
    outside = upload(client, headers, png_bytes(99)).json
    for image in images:
        added = client.put(f"/collections/{col['id']}/images/{image['id']}", headers=headers)
        assert added.status_code == 200 and added.json["added"] is True
    again = client.put(f"/collections/{col['id']}/images/{images[0]['id']}", headers=headers)
    assert again.json["added"] is False
    assert client.get(f"/collections/{col['id']}", headers=headers).json["image_count"] == 5

    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(
            f"/collections/{col['id']}/images", query_string=query, headers=headers
        ).json
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [i["id"] for i in reversed(images)]
    assert outside["id"] not in seen
    tagged = client.get(
        f"/collections/{col['id']}/images", query_string={"tag": "x"}, headers=headers
    ).json
    assert {i["id"] for i in tagged["items"]} == {images[1]["id"], images[3]["id"]}

    removed = client.delete(f"/collections/{col['id']}/images/{images[0]['id']}", headers=headers)
    assert removed.status_code == 204
    assert (
        client.delete(
            f"/collections/{col['id']}/images/{images[0]['id']}", headers=headers
        ).status_code
        == 404
    )
    assert client.get(f"/images/{images[0]['id']}", headers=headers).status_code == 200

    # Deleting an image takes it out of its collections.
    client.delete(f"/images/{images[1]['id']}", headers=headers)
    assert client.get(f"/collections/{col['id']}", headers=headers).json["image_count"] == 3


def test_collection_list_pages(client, tenant):
    headers = tenant.headers()
    names = [f"c{i}" for i in range(5)]
    for name in names:
        client.post("/collections", json={"name": name}, headers=headers)
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/collections", query_string=query, headers=headers).json
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == names


def test_bad_collection_input_is_422(client, tenant):
    headers = tenant.headers()
    for body in ({}, {"name": ""}, {"name": "x" * 201}, {"name": "ok", "id": "col_mine"}):
        assert client.post("/collections", json=body, headers=headers).status_code == 422, body


def test_collection_etag_conditional_get_and_if_match(client, tenant):
    headers = tenant.headers()
    col = client.post("/collections", json={"name": "Walls"}, headers=headers).json
    url = f"/collections/{col['id']}"
    got = client.get(url, headers=headers)
    etag = got.headers["ETag"]
    assert etag.startswith('"')
    cached = client.get(url, headers={**headers, "If-None-Match": etag})
    assert cached.status_code == 304 and cached.data == b""
    assert cached.headers["ETag"] == etag

    # Adding an image changes what GET shows (image_count), so the ETag too.
    image = upload(client, headers, png_bytes(1)).json
    client.put(f"{url}/images/{image['id']}", headers=headers)
    after_add = client.get(url, headers={**headers, "If-None-Match": etag})
    assert after_add.status_code == 200 and after_add.json["image_count"] == 1
    current = after_add.headers["ETag"]
    assert current != etag

    for stale in (etag, f"W/{current}", ", , ,"):
        refused = client.patch(url, json={"name": "Lost"}, headers={**headers, "If-Match": stale})
        assert refused.status_code == 412, stale
    assert client.get(url, headers=headers).json["name"] == "Walls"
    renamed = client.patch(url, json={"name": "Halls"}, headers={**headers, "If-Match": current})
    assert renamed.status_code == 200 and renamed.json["name"] == "Halls"
    assert renamed.headers["ETag"] not in (current, etag)
    assert renamed.headers["ETag"] == client.get(url, headers=headers).headers["ETag"]
