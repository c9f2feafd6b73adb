"""Tenant management over HTTP needs the operator credential from config."""

import hashlib

import pytest

OPERATOR = "operator-" + "s" * 40


@pytest.fixture
def app_config(app_config):
    return {**app_config, "OPERATOR_KEY_SHA256": hashlib.sha256(OPERATOR.encode()).hexdigest()}


def test_operator_creates_and_lists_tenants(client):
    op = {"X-API-Key": OPERATOR}
    created = client.post("/tenants", json={"name": "initech", "max_images": 10}, headers=op)
    assert created.status_code == 201
    body = created.json
    assert body["name"] == "initech" and body["max_images"] == 10
    admin_key = body["admin_key"]["api_key"]
    assert body["admin_key"]["group"] == "admin"
    assert (
        client.get("/me", headers={"X-API-Key": admin_key}).json["tenant_id"] == body["tenant_id"]
    )
    names = [t["name"] for t in client.get("/tenants", headers=op).json["items"]]
    assert names == ["initech"]
    assert client.post("/tenants", json={"name": "initech"}, headers=op).status_code == 409
    assert client.post("/tenants", json={"name": "../etc"}, headers=op).status_code == 422


def test_operator_is_not_a_tenant(client):
    assert client.get("/me", headers={"X-API-Key": OPERATOR}).status_code == 403
    assert client.get("/keys", headers={"X-API-Key": OPERATOR}).status_code == 403


def test_tenant_admin_cannot_manage_tenants(client, tenant):
    assert client.get("/tenants", headers=tenant.headers()).status_code == 403
    assert client.post("/tenants", json={"name": "x"}, headers=tenant.headers()).status_code == 403


def test_without_operator_config_nobody_manages_tenants(app_config):
    from tests.conftest import make_app

    client = make_app({**app_config, "OPERATOR_KEY_SHA256": None}).test_client()
    assert client.get("/tenants", headers={"X-API-Key": OPERATOR}).status_code == 401
