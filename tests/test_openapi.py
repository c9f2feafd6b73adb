"""The spec is the contract: valid OpenAPI 3.1, complete, and committed as generated."""

import json
from pathlib import Path

from openapi_spec_validator import validate

from image_repo import create_app

COMMITTED_SPEC = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield path, method, op


def test_spec_is_valid_openapi_3_1(client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_operation_has_a_unique_operation_id_summary_and_tag(app):
    spec = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    ids = []
    for path, method, op in operations(spec):
        assert op.get("operationId"), f"{method.upper()} {path} has no operationId"
        assert op.get("summary"), f"{method.upper()} {path} has no summary"
        assert op.get("tags"), f"{method.upper()} {path} has no tag"
        assert "security" in op, f"{method.upper()} {path} does not say its security"
        ids.append(op["operationId"])
    assert ids and len(ids) == len(set(ids))


def test_committed_spec_matches_the_code(tmp_path):
    # Generated from a default app, as `image-repo openapi write` does.
    generated = create_app({"DATA_DIR": tmp_path}).test_client().get("/openapi.json").json
    committed = json.loads(COMMITTED_SPEC.read_text())
    assert committed == generated, (
        "openapi/openapi.json is stale: run "
        "`image-repo openapi write --format=json openapi/openapi.json`"
    )


def test_cli_writes_the_spec(runner, tmp_path):
    out = tmp_path / "spec.json"
    result = runner.invoke(args=["openapi", "write", "--format=json", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["openapi"].startswith("3.1")
