"""Edge inputs found by fuzzing: each must be a clear 4xx, never a 500."""

from __future__ import annotations

import hashlib

import pytest
from images import png_bytes, upload

OPERATOR = "operator-" + "e" * 40


@pytest.fixture
def app_config(app_config):
    return {**app_config, "OPERATOR_KEY_SHA256": hashlib.sha256(OPERATOR.encode()).hexdigest()}


@pytest.mark.parametrize(
    "query",
    [
        {"taken_after": "0001-01-01T00:00:00+01:00"},
        {"uploaded_before": "9999-12-31T23:59:59-01:00"},
    ],
)
def test_times_outside_utc_range_are_422(client, tenant, query):
    response = client.get("/images", query_string=query, headers=tenant.headers())
    assert response.status_code == 422
    assert list(query) == list(response.json["errors"]["query"])


def test_patch_with_a_time_outside_utc_range_is_422(client, tenant):
    image = upload(client, tenant.headers(), png_bytes(1)).json
    response = client.patch(
        f"/images/{image['id']}",
        json={"taken_at": "0001-01-01T00:00:00+01:00"},
        headers=tenant.headers(),
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "body", [{"name": "big", "max_bytes": 2**63}, {"name": "many", "max_images": 2**31}]
)
def test_quotas_beyond_their_columns_are_422(client, body):
    response = client.post("/tenants", json=body, headers={"X-API-Key": OPERATOR})
    assert response.status_code == 422


def test_named_routes_are_not_taken_for_ids(client, tenant):
    assert client.delete("/images/timeline", headers=tenant.headers()).status_code == 405
    assert client.get("/images/not-an-id", headers=tenant.headers()).status_code == 404


def test_duplicate_upload_validates_its_fields_too(client, tenant):
    data = png_bytes(2)
    assert upload(client, tenant.headers(), data).status_code == 201
    again = upload(client, tenant.headers(), data, tags="t" * 100)
    assert again.status_code == 422


def test_patch_without_a_body_changes_nothing(client, tenant):
    image = upload(client, tenant.headers(), png_bytes(3), title="kept").json
    response = client.patch(f"/images/{image['id']}", headers=tenant.headers())
    assert response.status_code == 200 and response.json["title"] == "kept"
