"""Edge inputs found by fuzzing: each must be a clear 4xx, never a 500."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tests.support.images import png_bytes, upload

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


def _target(client, tenant, kind: str) -> str:
    """A path for ``kind`` of this tenant's resources, made for the test."""
    headers = tenant.headers()
    if kind == "image":
        return upload(client, headers, png_bytes(20)).json["id"]
    return client.post("/collections", json={"name": "target"}, headers=headers).json["id"]


# (method, path, where the value goes, field); {image}/{collection} are filled in.
TEXT_INPUTS = [
    ("POST", "/images", "multipart", "title"),
    ("POST", "/images", "multipart", "description"),
    ("PATCH", "/images/{image}", "json", "title"),
    ("PATCH", "/images/{image}", "json", "description"),
    ("GET", "/images", "query", "q"),
    ("GET", "/images", "query", "tag"),
    ("GET", "/collections/{collection}/images", "query", "q"),
    ("POST", "/collections", "json", "name"),
    ("POST", "/collections", "json", "description"),
    ("PATCH", "/collections/{collection}", "json", "name"),
    ("POST", "/keys", "json", "name"),
    ("POST", "/tenants", "json", "name"),
]


@pytest.mark.parametrize("bad", ["nul\x00", "esc\x1b[31m", "c1\x85", "bell\x07", "edge\x1f"])
@pytest.mark.parametrize(("method", "path", "location", "field"), TEXT_INPUTS)
def test_control_characters_in_text_are_422_naming_the_field(
    client, tenant, method, path, location, field, bad
):
    headers = {"X-API-Key": OPERATOR} if path == "/tenants" else tenant.headers()
    path = path.format(
        image=_target(client, tenant, "image") if "{image}" in path else "",
        collection=_target(client, tenant, "collection") if "{collection}" in path else "",
    )
    value = f"ok {bad} ok" if field != "name" or path != "/tenants" else f"ok{bad}"
    if location == "multipart":
        response = upload(client, headers, png_bytes(21), **{field: value})
    elif location == "query":
        response = client.open(path, method=method, query_string={field: value}, headers=headers)
    else:
        body = {"/keys": {"group": "reader"}, "/collections": {"name": "fine"}}.get(path, {})
        response = client.open(path, method=method, json={**body, field: value}, headers=headers)
    assert response.status_code == 422, (response.status_code, response.json)
    assert response.json["code"] == 422
    assert list(response.json["errors"][location]) == [field]


def test_lone_surrogates_in_json_text_are_422(client, tenant):
    image = upload(client, tenant.headers(), png_bytes(22)).json
    response = client.patch(
        f"/images/{image['id']}",
        data='{"title": "half \\ud800 a pair"}',
        content_type="application/json",
        headers=tenant.headers(),
    )
    assert response.status_code == 422
    assert list(response.json["errors"]["json"]) == ["title"]


def test_tabs_and_line_breaks_stay_in_text(client, tenant):
    image = upload(
        client, tenant.headers(), png_bytes(23), description="form\r\nlines\tand tabs"
    ).json
    assert image["description"] == "form\nlines\tand tabs"  # a form's CRLF is a line break
    changed = client.patch(
        f"/images/{image['id']}",
        json={"description": "one\ntwo\r\nthree\rfour"},
        headers=tenant.headers(),
    )
    assert changed.status_code == 200
    assert changed.json["description"] == "one\ntwo\nthree\nfour"


def test_every_text_input_is_checked_by_the_shared_field(app):
    """Every string an operation reads from a body, form or query is a ``Text``."""
    import marshmallow as ma

    from image_repo.http.fields import Text

    def strings(schema, prefix=""):
        for name, field in schema.fields.items():
            while isinstance(field, ma.fields.List):
                field = field.inner
            if isinstance(field, ma.fields.Nested):
                yield from strings(field.schema, f"{prefix}{name}.")
            elif isinstance(field, ma.fields.String):
                yield f"{prefix}{name}", field

    checked, plain = [], []
    for endpoint, view in app.view_functions.items():
        view_class = getattr(view, "view_class", None)
        for method in ("get", "post", "put", "patch", "delete"):
            handler = getattr(view_class, method, None) if view_class else None
            apidoc = getattr(handler, "_apidoc", {})
            for parameter in apidoc.get("arguments", {}).get("parameters", []):
                if parameter["in"] == "headers":
                    continue
                schema = parameter["schema"]
                schema = schema() if isinstance(schema, type) else schema
                for name, field in strings(schema):
                    where = f"{endpoint} {method} {parameter['in']} {name}"
                    (checked if isinstance(field, Text) else plain).append(where)
    assert checked and not plain


FAKE_IDS = {
    "image_id": "img_" + "a" * 20,
    "collection_id": "col_" + "a" * 20,
    "key_id": "key_" + "a" * 20,
    "share_id": "shr_" + "a" * 20,
    "person_id": "per_" + "a" * 20,
    "face_id": "fce_" + "a" * 20,
}


def _required_query(operation: dict) -> dict:
    """The operation's required query parameters, from their examples in the spec."""
    found = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query" and parameter.get("required"):
            schema = parameter["schema"]
            found[parameter["name"]] = schema.get("example") or schema["items"]["example"]
    return found


def test_every_operation_refuses_an_unknown_query_parameter(app, client, tenant):
    spec = json.loads(client.get("/openapi.json").data)
    checked = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            url = re.sub(r"{(\w+)}", lambda m: FAKE_IDS[m.group(1)], path)
            credential = OPERATOR if path.startswith("/tenants") else tenant.admin_key
            response = client.open(
                url,
                method=method.upper(),
                query_string={**_required_query(operation), "limt": "5"},
                headers={"X-API-Key": credential},
            )
            where = f"{method.upper()} {path}"
            assert response.status_code == 422, (where, response.status_code, response.json)
            assert response.json["errors"]["query"] == {"limt": ["Unknown field."]}, where
            assert "422" in operation["responses"], where
            checked.append(operation["operationId"])
    assert {"listImages", "getImage", "deleteImage", "getLiveness", "getMetrics"} <= set(checked)


def test_known_query_parameters_still_work_and_misspelt_ones_name_themselves(client, tenant):
    for i in range(3):
        upload(client, tenant.headers(), png_bytes(30 + i))
    assert len(client.get("/images?limit=2", headers=tenant.headers()).json["items"]) == 2
    refused = client.get("/images?limt=2&tga=x", headers=tenant.headers())
    assert refused.status_code == 422
    assert set(refused.json["errors"]["query"]) == {"limt", "tga"}
