"""Every error is JSON in one envelope, whatever raised it."""

import pytest
from flask import request

from image_repo.http.api import mark_public


def assert_envelope(response, code):
    assert response.status_code == code
    assert response.mimetype == "application/json"
    body = response.json
    assert body["code"] == code
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_unknown_path_is_404_json(client):
    assert_envelope(client.get("/no/such/thing"), 404)


def test_wrong_method_is_405_json_with_allow(client):
    response = client.delete("/")
    assert_envelope(response, 405)
    assert "GET" in response.headers["Allow"]


def test_body_over_limit_is_413_json(app_config):
    from image_repo import create_app

    app = create_app({**app_config, "MAX_UPLOAD_BYTES": 1000})

    def echo():
        return {"length": len(request.get_data())}

    app.add_url_rule("/echo", view_func=mark_public(echo), methods=["POST"])
    client = app.test_client()
    assert client.post("/echo", data=b"x" * 10).json == {"length": 10}
    assert_envelope(client.post("/echo", data=b"x" * (2 * 1024 * 1024)), 413)


def test_unexpected_exception_is_500_json_without_traceback(app):
    def boom():
        raise RuntimeError("secret internal detail")

    app.add_url_rule("/boom", view_func=mark_public(boom))
    response = app.test_client().get("/boom")
    body = assert_envelope(response, 500)
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert "errors" not in body


def test_route_without_declared_access_is_refused(app):
    def undeclared():
        return {"leaked": True}

    app.add_url_rule("/undeclared", view_func=undeclared)
    response = app.test_client().get("/undeclared")
    assert_envelope(response, 403)
    assert "leaked" not in response.get_data(as_text=True)


def _image_url(client, tenant) -> str:
    from tests.support.images import png_bytes, upload

    return f"/images/{upload(client, tenant.headers(), png_bytes(1)).json['id']}"


@pytest.mark.parametrize("depth", [1000, 100_000])
@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deeply_nested_json_is_400(client, tenant, depth, opening):
    closing = "]" if opening == "[" else "}"
    body = opening * depth + "1" + closing * depth
    for method, url in (("PATCH", _image_url(client, tenant)), ("POST", "/collections")):
        response = client.open(
            url, method=method, data=body, content_type="application/json", headers=tenant.headers()
        )
        envelope = assert_envelope(response, 400)
        assert "JSON" in envelope["message"] and "deep" in envelope["message"]


@pytest.mark.parametrize("body", ["{nope", '{"title": "a"', "\xff\xfe", "[1,]"])
def test_malformed_json_is_400_saying_the_body_is_not_json(client, tenant, body):
    response = client.patch(
        _image_url(client, tenant),
        data=body.encode("latin-1"),
        content_type="application/json",
        headers=tenant.headers(),
    )
    envelope = assert_envelope(response, 400)
    assert "not valid JSON" in envelope["message"]
    assert "well-formed" not in envelope["message"]
    assert envelope["errors"]["json"]
