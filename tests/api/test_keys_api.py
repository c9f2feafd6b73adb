"""A tenant's own keys over HTTP (admin group only), isolated between tenants."""

from datetime import UTC, datetime, timedelta


def test_create_list_get_revoke(client, tenant):
    admin = tenant.headers()
    created = client.post("/keys", json={"group": "contributor", "name": "uploader"}, headers=admin)
    assert created.status_code == 201
    body = created.json
    assert body["api_key"].startswith(body["key_id"] + ".")
    assert body["group"] == "contributor" and body["name"] == "uploader"

    listed = client.get("/keys", headers=admin).json["items"]
    assert {k["key_id"] for k in listed} == {tenant.admin_key_id, body["key_id"]}
    assert all("api_key" not in k for k in listed)

    shown = client.get(f"/keys/{body['key_id']}", headers=admin)
    assert shown.status_code == 200 and "api_key" not in shown.json

    assert client.get("/me", headers={"X-API-Key": body["api_key"]}).json["group"] == "contributor"
    assert client.delete(f"/keys/{body['key_id']}", headers=admin).status_code == 200
    assert client.delete(f"/keys/{body['key_id']}", headers=admin).status_code == 200  # idempotent
    assert client.get("/me", headers={"X-API-Key": body["api_key"]}).status_code == 401


def test_expiring_key(client, tenant):
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    created = client.post(
        "/keys", json={"group": "reader", "expires_at": soon}, headers=tenant.headers()
    )
    assert created.status_code == 201
    assert created.json["expires_at"] is not None


def test_bad_key_requests_are_422(client, tenant):
    admin = tenant.headers()
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    for body in (
        {},
        {"group": "superuser"},
        {"group": "reader", "expires_at": past},
        {"group": "reader", "expires_at": "2030-01-01T00:00:00"},  # no offset
        {"group": "reader", "name": "x" * 101},
        {"group": "reader", "key_id": "key_chosenbyclient00000"},
    ):
        response = client.post("/keys", json=body, headers=admin)
        assert response.status_code == 422, body
        assert response.json["message"]
    before = client.get("/keys", headers=admin).json["items"]
    assert len(before) == 1  # nothing was created


def test_tenants_cannot_see_or_touch_each_others_keys(client, tenant, other_tenant):
    mine = tenant.new_key("reader")
    theirs = other_tenant.headers()
    assert mine["key_id"] not in {
        k["key_id"] for k in client.get("/keys", headers=theirs).json["items"]
    }
    assert client.get(f"/keys/{mine['key_id']}", headers=theirs).status_code == 404
    assert client.delete(f"/keys/{mine['key_id']}", headers=theirs).status_code == 404
    assert client.get("/me", headers={"X-API-Key": mine["api_key"]}).status_code == 200
