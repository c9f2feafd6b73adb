"""Every corpus file: accepted ones with the manifest's format and size, rejected ones
with a 4xx that leaves no row and no blob. Never a 5xx."""

from __future__ import annotations

import pytest

from image_repo.http.context import services_of
from tests.support.corpus import corpus_files, corpus_path, manifest
from tests.support.images import upload


@pytest.fixture
def editor(tenant):
    return tenant.headers("editor")


@pytest.mark.parametrize("name", corpus_files("accept"))
def test_accepted_file(client, editor, name):
    expected = manifest()[name]
    response = upload(client, editor, corpus_path(name).read_bytes(), name.rsplit("/", 1)[-1])
    assert response.status_code == 201, response.json
    body = response.json
    assert body["format"] == expected["format"]
    assert (body["width"], body["height"]) == (expected["width"], expected["height"])
    assert (body["stored_width"], body["stored_height"]) == (
        expected["stored_width"],
        expected["stored_height"],
    )
    assert body["sha256"] == expected["sha256"]
    assert body["bytes"] == expected["bytes"]
    assert body["has_gps"] == expected["gps"]


@pytest.mark.parametrize("name", corpus_files("reject"))
def test_rejected_file(app, client, editor, name):
    response = upload(client, editor, corpus_path(name).read_bytes(), name.rsplit("/", 1)[-1])
    assert 400 <= response.status_code < 500, (response.status_code, response.json)
    assert response.json["message"]
    assert client.get("/images", headers=editor).json["items"] == []
    assert list(services_of(app).blob_store.iter_keys()) == []
