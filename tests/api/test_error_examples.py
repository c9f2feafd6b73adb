"""Each error response in the spec shows what the service really answers then.

Swagger UI and ReDoc show a response's example as the body to expect: an
example per status, and per operation where one status means different
things (no image, no collection, no key; a quota, a name taken). The spec
test reads the rules off the generated spec; the live test provokes 401, 403
and 404 on every operation and compares the answers with the examples.
"""

from __future__ import annotations

import re
from collections import defaultdict
from http import HTTPStatus

import pytest
from jsonschema import Draft202012Validator
from limits import parse

from image_repo import create_app
from image_repo.config import SETTINGS_BY_KEY
from image_repo.domain.permissions import DEFAULT_GROUP_PERMISSIONS

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
QUOTED_ID = re.compile(r"'([a-z]+_[a-z2-7]{20})'")
INPUT_LOCATIONS = {"query": "query", "headers": "header", "path": "path"}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    """The spec of a default app, as `image-repo openapi write` makes it."""
    app = create_app({"DATA_DIR": tmp_path_factory.mktemp("data")})
    return app.test_client().get("/openapi.json").json


def operations(spec):
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method], item.get("parameters", [])


def resolve(spec, node: dict) -> dict:
    while "$ref" in node:
        target = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def error_examples(spec, response: dict) -> list[dict]:
    """The error bodies a response shows, one or several."""
    media = resolve(spec, response).get("content", {}).get("application/json", {})
    if "example" in media:
        return [media["example"]]
    return [example["value"] for example in media.get("examples", {}).values()]


def error_responses(spec, op: dict):
    """(status, examples) of an operation's error responses; `default` is 500."""
    for status, response in op["responses"].items():
        if status == "default" or int(status) >= 400:
            code = 500 if status == "default" else int(status)
            yield code, error_examples(spec, response)


def test_every_error_response_has_its_own_truthful_example(spec):
    error_schema = resolve(spec, {"$ref": "#/components/schemas/Error"})
    validator = Draft202012Validator(error_schema)
    statuses_of_message = defaultdict(set)
    for path, method, op, _ in operations(spec):
        where = f"{op['operationId']} ({method.upper()} {path})"
        messages_here = {}
        for code, examples in error_responses(spec, op):
            assert examples, f"{where}: the {code} response has no example"
            for body in examples:
                errors = [e.message for e in validator.iter_errors(body)]
                assert not errors, f"{where} {code}: {body} is no Error: {errors}"
                assert (body["code"], body["status"]) == (code, HTTPStatus(code).phrase), where
                statuses_of_message[body["message"]].add(code)
                assert messages_here.setdefault(body["message"], code) == code, (
                    f"{where}: {code} and {messages_here[body['message']]} say the same"
                )
    shared = {message: codes for message, codes in statuses_of_message.items() if len(codes) > 1}
    assert not shared, f"messages shown for more than one status: {shared}"


def test_access_errors_name_what_the_operation_needs(spec):
    budgets = {
        kind: str(parse(SETTINGS_BY_KEY[f"RATELIMIT_{kind.upper()}"].default))
        for kind in ("read", "write")
    }
    for _path, method, op, _ in operations(spec):
        if "x-permission" not in op:
            continue
        errors = dict(error_responses(spec, op))
        [forbidden] = errors[403]
        assert repr(op["x-permission"]) in forbidden["message"], op["operationId"]
        [limited] = errors[429]
        kind = "read" if method == "get" else "write"
        assert limited["message"] == budgets[kind], (op["operationId"], limited)


def test_not_found_names_an_id_of_the_operation(spec):
    # "No image 'img_...'." on an image, "No collection 'col_...'." on a collection.
    checked = []
    for path, _method, op, path_params in operations(spec):
        examples = dict(error_responses(spec, op)).get(404)
        if examples is None:
            continue
        patterns = [
            re.compile(param["schema"]["pattern"])
            for param in [*path_params, *op.get("parameters", [])]
            if param["in"] == "path"
        ]
        quoted = [i for body in examples for i in QUOTED_ID.findall(body["message"])]
        assert quoted, f"{op['operationId']}: no 404 example names what was not found"
        for found in quoted:
            assert any(p.match(found) for p in patterns), (op["operationId"], path, found)
        checked.append(op["operationId"])
    assert {"getImage", "getCollection", "getKey", "addImageToCollection"} <= set(checked)


def test_validation_examples_name_inputs_the_operation_has(spec):
    for _path, _method, op, path_params in operations(spec):
        examples = dict(error_responses(spec, op)).get(422, [])
        params = [*path_params, *op.get("parameters", [])]
        body = op.get("requestBody", {}).get("content", {})
        for example in examples:
            for location, fields in example.get("errors", {}).items():
                if location in INPUT_LOCATIONS:
                    known = {p["name"] for p in params if p["in"] == INPUT_LOCATIONS[location]}
                elif location in ("json", "multipart"):
                    media = "application/json" if location == "json" else "multipart/form-data"
                    assert media in body, (op["operationId"], location)
                    known = set(resolve(spec, body[media]["schema"])["properties"])
                else:  # details of a domain error, e.g. {"image": ["corrupt"]}
                    continue
                assert set(fields) <= known, (op["operationId"], location, fields, known)


# -- against the service ------------------------------------------------------------------------

NOBODY = "nobody"  # a group without a single permission


@pytest.fixture
def app_config(app_config):
    return {
        **app_config,
        "GROUP_PERMISSIONS": {**DEFAULT_GROUP_PERMISSIONS, NOBODY: []},
        "RATELIMIT_ENABLED": False,
    }


def example_ids(spec) -> dict[str, str]:
    """Example ids in the spec's schemas, by prefix: {"img": "img_...", ...}."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            example = node.get("example")
            if isinstance(example, str) and re.fullmatch(r"[a-z]+_[a-z2-7]{20}", example):
                found[example.split("_")[0]] = example
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec["components"]["schemas"])
    return found


def test_the_service_answers_what_the_examples_show(app, client, tenant):
    spec = client.get("/openapi.json").json
    ids = example_ids(spec)
    nobody = {"X-API-Key": tenant.key(NOBODY)}
    admin = {"X-API-Key": tenant.admin_key}
    checked = defaultdict(list)
    for path, method, op, path_params in operations(spec):
        url = path
        for param in path_params:  # e.g. image_id, ^img_[a-z2-7]{20}$: the spec's img_ example
            prefix = param["schema"]["pattern"].removeprefix("^").split("_")[0]
            url = url.replace(f"{{{param['name']}}}", ids[prefix])
        examples = dict(error_responses(spec, op))
        shown = {code: [body["message"] for body in bodies] for code, bodies in examples.items()}
        calls = []
        if op["security"] and {} not in op["security"]:
            calls += [(401, {}), (401, {"X-API-Key": "not-a-key"}), (403, nobody)]
        if 404 in examples:
            calls.append((404, admin))
        for code, headers in calls:
            answer = client.open(url, method=method.upper(), headers=headers)
            assert answer.status_code == code, (op["operationId"], code, answer.json)
            assert answer.json["message"] in shown[code], (
                f"{op['operationId']} answered {code} {answer.json['message']!r}; "
                f"the spec shows {shown[code]}"
            )
            checked[code].append(op["operationId"])
    assert len(checked[403]) > 20 and len(checked[404]) > 10, dict(checked)
