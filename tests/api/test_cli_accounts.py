"""The tenants and keys commands, as operators and scripts use them."""

import json
from datetime import UTC, datetime, timedelta


def run(runner, *args):
    result = runner.invoke(args=list(args))
    return result


def test_tenants_create_prints_one_json_object(runner):
    result = run(runner, "tenants", "create", "acme", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["name"] == "acme"
    assert data["api_key"].startswith(data["key_id"] + ".")
    assert data["group"] == "admin"


def test_tenants_list(runner):
    run(runner, "tenants", "create", "acme")
    run(runner, "tenants", "create", "globex")
    data = json.loads(run(runner, "tenants", "list", "--json").output)
    assert [t["name"] for t in data["items"]] == ["acme", "globex"]
    assert "acme" in run(runner, "tenants", "list").output


def test_duplicate_tenant_is_an_error(runner):
    run(runner, "tenants", "create", "acme")
    result = run(runner, "tenants", "create", "acme")
    assert result.exit_code != 0 and "exists already" in result.output


def test_keys_create_list_revoke(runner, client):
    run(runner, "tenants", "create", "acme")
    created = json.loads(
        run(
            runner,
            "keys",
            "create",
            "--tenant",
            "acme",
            "--group",
            "reader",
            "--name",
            "ci",
            "--json",
        ).output
    )
    assert created["group"] == "reader" and created["name"] == "ci"
    assert client.get("/me", headers={"X-API-Key": created["api_key"]}).status_code == 200

    listed = json.loads(run(runner, "keys", "list", "--tenant", "acme", "--json").output)["items"]
    assert created["key_id"] in {k["key_id"] for k in listed}
    assert created["api_key"] not in json.dumps(listed)

    revoked = json.loads(run(runner, "keys", "revoke", created["key_id"], "--json").output)
    assert revoked["revoked_at"] is not None
    assert client.get("/me", headers={"X-API-Key": created["api_key"]}).status_code == 401


def test_keys_create_with_expiry(runner):
    run(runner, "tenants", "create", "acme")
    rel = json.loads(
        run(
            runner,
            "keys",
            "create",
            "--tenant",
            "acme",
            "--group",
            "reader",
            "--expires",
            "30d",
            "--json",
        ).output
    )
    expires = datetime.fromisoformat(rel["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    bad = run(
        runner, "keys", "create", "--tenant", "acme", "--group", "reader", "--expires", "soon"
    )
    assert bad.exit_code != 0


def test_keys_for_unknown_tenant_or_group_fail_clearly(runner):
    result = run(runner, "keys", "create", "--tenant", "nobody", "--group", "reader")
    assert result.exit_code != 0 and "No tenant" in result.output
    run(runner, "tenants", "create", "acme")
    result = run(runner, "keys", "create", "--tenant", "acme", "--group", "root")
    assert result.exit_code != 0 and "Unknown group" in result.output
    assert run(runner, "keys", "revoke", "key_nope").exit_code != 0
