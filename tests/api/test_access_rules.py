"""Deny by default, and the full permission matrix: every route x every caller."""

from __future__ import annotations

import re

import pytest

from image_repo.http.access import access_for
from image_repo.http.context import services_of
from tests.conftest import create_tenant

GROUPS = ["reader", "contributor", "editor", "admin"]
CALLERS = ["no key", "revoked key", "expired key", "operator", *GROUPS]
OPERATOR_SECRET = "operator-test-secret-" + "x" * 20


@pytest.fixture
def app_config(app_config):
    import hashlib

    return {
        **app_config,
        "OPERATOR_KEY_SHA256": hashlib.sha256(OPERATOR_SECRET.encode()).hexdigest(),
    }


def routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"OPTIONS", "HEAD"}):
            yield rule, method


def test_every_route_declares_its_access(app):
    undeclared = [
        f"{method} {rule.rule}"
        for rule, method in routes(app)
        if access_for(app, rule.endpoint, method) is None
    ]
    assert undeclared == []


ID_PREFIX = {
    "image_id": "img",
    "collection_id": "col",
    "key_id": "key",
    "share_id": "shr",
    "person_id": "per",
    "face_id": "fce",
}


def _path(rule) -> str:
    # A well-formed id of nothing: access is decided before the lookup.
    return re.sub(
        r"<(?:[^:>]+:)?([^>]+)>",
        lambda m: f"{ID_PREFIX.get(m.group(1), 'x')}_{'a' * 20}",
        rule.rule,
    )


def test_permission_matrix(app):
    tenant = create_tenant(app)
    group_permissions = services_of(app).group_permissions
    keys = {group: tenant.key(group) for group in GROUPS}
    revoked = tenant.new_key("admin")
    app.test_cli_runner().invoke(args=["keys", "revoke", revoked["key_id"]])
    keys["revoked key"] = revoked["api_key"]
    expiring = tenant.new_key("admin", expires="2099-01-01T00:00:00+00:00")
    _expire(app, expiring["key_id"])
    keys["expired key"] = expiring["api_key"]
    keys["operator"] = OPERATOR_SECRET

    client = app.test_client()
    checked = 0
    for rule, method in routes(app):
        access = access_for(app, rule.endpoint, method)
        for caller in CALLERS:
            headers = {"X-API-Key": keys[caller]} if caller in keys else {}
            status = client.open(_path(rule), method=method, headers=headers, json={}).status_code
            if access.public or (access.public_when and app.config[access.public_when]):
                allowed = True
            elif caller in ("no key", "revoked key", "expired key"):
                assert status == 401, (caller, method, rule.rule, status)
                checked += 1
                continue
            elif caller == "operator":
                allowed = access.permission == "tenants:manage"
            else:
                allowed = access.permission in group_permissions[caller]
            if allowed:
                assert status not in (401, 403), (caller, method, rule.rule, status)
            else:
                assert status == 403, (caller, method, rule.rule, status)
            checked += 1
    assert checked >= len(CALLERS) * 5


def _expire(app, key_id):
    from datetime import UTC, datetime, timedelta

    from image_repo.db.models import ApiKey

    with app.app_context():
        session = services_of(app).sessions()
        key = session.get(ApiKey, key_id)
        key.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.commit()
        session.close()
