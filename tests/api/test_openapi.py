"""The spec is the contract: valid OpenAPI 3.1, complete, and committed as generated."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from image_repo import create_app

COMMITTED_SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
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


# -- what Swagger UI's Try it out fills in --------------------------------------------------

NOTHING = object()


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    """The spec of a default app, as `image-repo openapi write` makes it."""
    app = create_app({"DATA_DIR": tmp_path_factory.mktemp("data")})
    return app.test_client().get("/openapi.json").json


def resolve(spec, node: dict) -> dict:
    """``node``, or what its ``$ref`` points to in the spec."""
    while "$ref" in node:
        target = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def swagger_ui_value(schema: dict):
    """What Swagger UI 5 puts in a form field before the person types: the first
    of ``examples``, else ``default``, else ``example``; NOTHING means it makes up
    a sample of the type (``string``, the current time, ...)."""
    if schema.get("examples"):
        return schema["examples"][0]
    for keyword in ("default", "example"):
        if keyword in schema:
            return schema[keyword]
    return NOTHING


def request_bodies(spec, media_type: str):
    for path, method, op in operations(spec):
        content = op.get("requestBody", {}).get("content", {})
        if media_type in content:
            yield f"{op['operationId']} ({method.upper()} {path})", content[media_type]


def test_upload_form_fields_start_empty_in_swagger_ui(spec):
    # Try it out sends every form field it filled in: a placeholder in an
    # optional field would be stored as the image's title, tags or capture time.
    forms = list(request_bodies(spec, "multipart/form-data"))
    assert forms, "no multipart/form-data body in the spec"
    for name, media in forms:
        schema = resolve(spec, media["schema"])
        for field, prop in schema["properties"].items():
            if field in schema.get("required", []) or prop.get("format") == "binary":
                continue
            value = swagger_ui_value(prop)
            assert value is not NOTHING, f"{name}: Swagger UI fills `{field}` with a made-up sample"
            assert value in ("", []), f"{name}: Swagger UI fills `{field}` with {value!r}"


def test_json_bodies_have_an_explicit_example_that_is_valid(spec):
    # Without one, Swagger UI's body editor starts with every property filled
    # in (`string`, the current time, 0), and sends them all.
    bodies = list(request_bodies(spec, "application/json"))
    assert bodies, "no JSON body in the spec"
    for name, media in bodies:
        assert "example" in media, f"{name}: the JSON body has no example"
        schema = {"$ref": media["schema"]["$ref"], "components": spec["components"]}
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(media["example"])]
        assert not errors, f"{name}: its example {media['example']} is invalid: {errors}"


def test_optional_parameters_are_prefilled_with_their_default_at_most(spec):
    # Swagger UI puts a parameter's example in its field and sends it.
    for _path, _method, op in operations(spec):
        for param in op.get("parameters", []):
            if param.get("required"):
                continue
            schema = param.get("schema", {})
            shown = [param[k] for k in ("example",) if k in param]
            shown += [schema["example"]] if "example" in schema else []
            shown += schema.get("examples", [])[:1]
            for value in shown:
                assert value == schema.get("default", NOTHING), (
                    f"{op['operationId']}: Swagger UI sends {param['name']}={value!r} "
                    f"unless the person clears it (default: {schema.get('default')!r})"
                )


def test_binary_responses_name_their_image_types_and_offer_plain_bytes(spec):
    # Concrete types for people and tools that show images; application/octet-stream
    # for generated clients, which return bytes for no image/* type.
    binary = {"type": "string", "format": "binary"}
    found = []
    for _path, _method, op in operations(spec):
        for status, response in op["responses"].items():
            content = resolve(spec, response).get("content", {})
            images = [media_type for media_type in content if media_type.startswith("image/")]
            if not images:
                continue
            found.append(op["operationId"])
            where = f"{op['operationId']} {status}"
            assert all("*" not in media_type for media_type in images), f"{where}: {images}"
            assert set(content) == {*images, "application/octet-stream"}, where
            assert all(media["schema"] == binary for media in content.values()), where
    assert {"getImageFile", "getThumbnail", "renderImage"} <= set(found)
