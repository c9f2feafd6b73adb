import ast
import inspect

import pytest

from image_repo.http.landing import models
from image_repo.http.landing.models import LandingPageModel


def test_greets_guest_by_default(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.json["hello"] == "guest"
    assert "image repository" in response.json["info"]


def test_greets_by_name(client):
    response = client.get("/", query_string={"name": "Ada"})
    assert response.status_code == 200
    assert response.json["hello"] == "Ada"


def test_name_of_100_characters_is_accepted(client):
    assert client.get("/", query_string={"name": "a" * 100}).json["hello"] == "a" * 100


@pytest.mark.parametrize("name", ["a" * 101, ""])
def test_bad_name_is_422_in_the_envelope(client, name):
    response = client.get("/", query_string={"name": name})
    assert response.status_code == 422
    body = response.json
    assert body["code"] == 422
    assert body["status"] == "Unprocessable Entity"
    assert "name" in body["errors"]["query"]
    assert body["message"]


def test_model_is_plain_python():
    tree = ast.parse(inspect.getsource(models))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert "flask" not in imported
    page = LandingPageModel("Ada")
    assert page.hello == "Ada"
    assert page.info
