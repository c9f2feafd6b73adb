"""How keys are presented, checked and stored."""

from __future__ import annotations

from sqlalchemy import text

from image_repo.domain import tenancy
from image_repo.http.context import services_of


def test_key_accepted_as_bearer_and_as_x_api_key(client, tenant):
    for headers in (
        {"Authorization": f"Bearer {tenant.admin_key}"},
        {"X-API-Key": tenant.admin_key},
    ):
        response = client.get("/me", headers=headers)
        assert response.status_code == 200
        assert response.json["tenant_id"] == tenant.tenant_id
        assert response.json["key_id"] == tenant.admin_key_id


def test_key_in_query_string_is_ignored(client, tenant):
    for name in ("api_key", "key", "access_token"):
        response = client.get("/me", query_string={name: tenant.admin_key})
        assert response.status_code == 401


def test_missing_key_is_401_with_challenge(client):
    response = client.get("/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["code"] == 401 and response.json["message"]


def test_wrong_keys_are_401(client, tenant):
    key_id, _, secret = tenant.admin_key.partition(".")
    wrong = [
        "nonsense",
        f"{key_id}.{'A' * 43}",  # right id, wrong secret
        f"key_{'a' * 20}.{secret}",  # unknown id, a real secret
        tenant.admin_key + "x",
        "",
    ]
    for key in wrong:
        response = client.get("/me", headers={"X-API-Key": key})
        assert response.status_code == 401, key
        assert "WWW-Authenticate" in response.headers


def test_revoked_key_is_refused_at_once(client, tenant):
    key = tenant.new_key("reader")
    headers = {"X-API-Key": key["api_key"]}
    assert client.get("/me", headers=headers).status_code == 200
    response = client.delete(f"/keys/{key['key_id']}", headers=tenant.headers())
    assert response.status_code == 200 and response.json["revoked_at"]
    assert client.get("/me", headers=headers).status_code == 401


def test_group_without_permission_is_403(client, tenant):
    response = client.get("/keys", headers=tenant.headers("reader"))
    assert response.status_code == 403
    assert "keys:manage" in response.json["message"]


def test_no_secret_is_stored_in_clear(app, tenant):
    keys = [tenant.admin_key, tenant.key("reader"), tenant.key("editor")]
    engine = services_of(app).engine
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_keys")).mappings().all()
    dump = repr([dict(row) for row in rows])
    for key in keys:
        secret = key.partition(".")[2]
        assert key not in dump and secret not in dump
        assert tenancy.hash_key(key) in dump


def test_last_used_is_recorded(client, tenant):
    key = tenant.new_key("reader")
    assert key["last_used_at"] is None
    client.get("/me", headers={"X-API-Key": key["api_key"]})
    listed = {k["key_id"]: k for k in client.get("/keys", headers=tenant.headers()).json["items"]}
    assert listed[key["key_id"]]["last_used_at"] is not None


def test_suspended_tenant_keys_are_refused(app, client, tenant):
    from image_repo.db.models import Tenant

    session = services_of(app).sessions()
    session.get(Tenant, tenant.tenant_id).status = "suspended"
    session.commit()
    session.close()
    assert client.get("/me", headers=tenant.headers()).status_code == 401


def test_configured_group_map_replaces_the_default(app_config):
    from tests.conftest import create_tenant, make_app

    app = make_app(
        {**app_config, "GROUP_PERMISSIONS": {"viewer": ["account:read"], "admin": ["keys:manage"]}}
    )
    tenant = create_tenant(app)
    client = app.test_client()
    viewer = tenant.key("viewer")
    assert client.get("/me", headers={"X-API-Key": viewer}).status_code == 200
    # admin here may manage keys but not read its account
    assert client.get("/keys", headers=tenant.headers()).status_code == 200
    assert client.get("/me", headers=tenant.headers()).status_code == 403
    result = app.test_cli_runner().invoke(
        args=["keys", "create", "--tenant", tenant.name, "--group", "reader"]
    )
    assert result.exit_code != 0 and "Unknown group" in result.output


def test_bad_group_map_is_a_config_error(app_config):
    import pytest

    from image_repo import create_app
    from image_repo.config import ConfigError

    with pytest.raises(ConfigError, match="IMAGE_REPO_GROUP_PERMISSIONS"):
        create_app({**app_config, "GROUP_PERMISSIONS": {"x": ["images:fly"]}})
    with pytest.raises(ConfigError, match="operator"):
        create_app({**app_config, "GROUP_PERMISSIONS": {"x": ["tenants:manage"]}})
