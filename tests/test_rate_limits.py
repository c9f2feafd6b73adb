"""Per-key read and write budgets, in memory and on Redis."""

import pytest
from conftest import TEST_REDIS_URL, create_tenant, make_app, needs_redis


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
def limited_app(request, app_config):
    storage = TEST_REDIS_URL if request.param == "redis" else None
    return make_app(
        {
            **app_config,
            "REDIS_URL": storage,
            "RATELIMIT_READ": "3 per day",
            "RATELIMIT_WRITE": "2 per day",
        }
    )


def test_read_budget_runs_out_with_429_and_retry_after(limited_app):
    tenant = create_tenant(limited_app)
    client = limited_app.test_client()
    headers = {"X-API-Key": tenant.admin_key}
    statuses = [client.get("/me", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = client.get("/me", headers=headers)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.json["code"] == 429 and response.json["message"]


def test_budgets_are_per_key_and_split_read_write(limited_app):
    tenant = create_tenant(limited_app)
    client = limited_app.test_client()
    admin = {"X-API-Key": tenant.admin_key}
    for _ in range(3):
        client.get("/me", headers=admin)
    assert client.get("/me", headers=admin).status_code == 429
    # Writes have their own budget...
    assert client.post("/keys", json={"group": "reader"}, headers=admin).status_code == 201
    other = client.post("/keys", json={"group": "reader"}, headers=admin)
    assert other.status_code == 201
    assert client.post("/keys", json={"group": "reader"}, headers=admin).status_code == 429
    # ...and another key has a budget of its own.
    assert client.get("/me", headers={"X-API-Key": other.json["api_key"]}).status_code == 200


def test_public_and_refused_requests_spend_no_budget(limited_app):
    tenant = create_tenant(limited_app)
    client = limited_app.test_client()
    for _ in range(5):
        assert client.get("/").status_code == 200
        assert client.get("/me", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/me", headers={"X-API-Key": tenant.admin_key}).status_code == 200


def test_limits_can_be_turned_off(app_config):
    app = make_app({**app_config, "RATELIMIT_READ": "1 per minute", "RATELIMIT_ENABLED": False})
    tenant = create_tenant(app)
    client = app.test_client()
    assert [client.get("/me", headers=tenant.headers()).status_code for _ in range(3)] == [200] * 3
