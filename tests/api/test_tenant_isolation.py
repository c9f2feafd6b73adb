"""Every image and collection operation with another tenant's id answers 404."""

from __future__ import annotations

from tests.support.images import png_bytes, upload


def test_other_tenants_images_and_collections_do_not_exist(app, client, tenant, other_tenant):
    mine = tenant.headers()
    image = upload(client, mine, png_bytes(1), tags="secret").json
    col = client.post("/collections", json={"name": "Private"}, headers=mine).json
    client.put(f"/collections/{col['id']}/images/{image['id']}", headers=mine)
    their_image = upload(client, other_tenant.headers(), png_bytes(2)).json
    their_col = client.post(
        "/collections", json={"name": "Theirs"}, headers=other_tenant.headers()
    ).json

    theirs = other_tenant.headers()
    attempts = [
        ("GET", f"/images/{image['id']}", None),
        ("GET", f"/images/{image['id']}/file", None),
        ("HEAD", f"/images/{image['id']}/file", None),
        ("GET", f"/images/{image['id']}/thumbnail", None),
        ("GET", f"/images/{image['id']}/render", None),
        ("GET", f"/images/{image['id']}/similar", None),
        ("PATCH", f"/images/{image['id']}", {"title": "pwned"}),
        ("DELETE", f"/images/{image['id']}", None),
        ("GET", f"/collections/{col['id']}", None),
        ("PATCH", f"/collections/{col['id']}", {"name": "pwned"}),
        ("GET", f"/collections/{col['id']}/images", None),
        ("PUT", f"/collections/{col['id']}/images/{their_image['id']}", None),
        ("PUT", f"/collections/{their_col['id']}/images/{image['id']}", None),
        ("DELETE", f"/collections/{col['id']}/images/{image['id']}", None),
        ("DELETE", f"/collections/{col['id']}", None),
        ("POST", f"/trash/{image['id']}/restore", None),
        ("DELETE", f"/trash/{image['id']}", None),
        ("GET", f"/images/{image['id']}/faces", None),
    ]
    # Every route that takes an image or collection id is attempted.
    id_routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if {"image_id", "collection_id"} & set(rule.arguments)
        for method in rule.methods - {"OPTIONS", "HEAD"}
    }
    attempted = set()
    for method, path, body in attempts:
        response = client.open(path, method=method, json=body, headers=theirs)
        assert response.status_code == 404, (method, path, response.status_code)
        adapter = app.url_map.bind("localhost")
        endpoint, _ = adapter.match(path, method=method)
        attempted |= {(method, r.rule) for r in app.url_map.iter_rules(endpoint)}
    assert id_routes and id_routes - attempted == set()

    # Nothing changed for the owner, and nothing leaks into the other's lists.
    assert client.get(f"/images/{image['id']}", headers=mine).json["title"] is None
    assert client.get(f"/collections/{col['id']}", headers=mine).json["name"] == "Private"
    assert client.get(f"/collections/{col['id']}", headers=mine).json["image_count"] == 1
    their_list = client.get("/images", headers=theirs).json["items"]
    assert [i["id"] for i in their_list] == [their_image["id"]]
    assert client.get("/images", query_string={"tag": "secret"}, headers=theirs).json["items"] == []
    assert (
        client.get("/images", query_string={"sha256": image["sha256"]}, headers=theirs).json[
            "items"
        ]
        == []
    )
    timeline = client.get("/images/timeline", headers=theirs).json["buckets"]
    assert sum(b["count"] for b in timeline) == 1
