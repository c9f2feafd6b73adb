"""ZIP downloads: an album, or a selection of images, streamed as built."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import zipfile

import pytest

from tests.support.images import png_bytes, upload


def _upload(client, headers, data: bytes, name: str) -> dict:
    response = upload(client, headers, data, name)
    assert response.status_code == 201, response.json
    return response.json


def _zip(response) -> dict[str, bytes]:
    assert response.status_code == 200, response.json
    assert response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


def test_an_album_downloads_as_a_zip_of_its_originals(client, tenant, other_tenant):
    headers = tenant.headers()
    files = [png_bytes(seed) for seed in range(4)]
    images = [_upload(client, headers, data, "same name.png") for data in files]
    album = client.post("/collections", json={"name": "Summer/2024"}, headers=headers).json
    for image in images[:3]:
        assert client.put(f"/collections/{album['id']}/images/{image['id']}", headers=headers)
    assert client.delete(f"/images/{images[2]['id']}", headers=headers).status_code == 204

    reader = {"Authorization": f"Bearer {tenant.key('reader')}"}
    response = client.get(f"/collections/{album['id']}/archive", headers=reader)
    members = _zip(response)
    # Names made unique, the trashed member left out, bytes as uploaded.
    assert members == {"same name.png": files[0], "same name (2).png": files[1]}
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "2024.zip" in disposition
    assert "/" not in disposition.split("filename", 1)[1]
    assert "private" in response.headers["Cache-Control"]
    assert "Content-Length" not in response.headers  # streamed

    # Another tenant's key sees no such album.
    other = client.get(f"/collections/{album['id']}/archive", headers=other_tenant.headers())
    assert other.status_code == 404
    assert other.json["message"] == f"No collection {album['id']!r}."


def test_an_empty_album_is_an_empty_zip(client, tenant):
    album = client.post("/collections", json={"name": "Empty"}, headers=tenant.headers()).json
    response = client.get(f"/collections/{album['id']}/archive", headers=tenant.headers())
    assert _zip(response) == {}


def test_a_selection_downloads_in_the_order_given(client, tenant, other_tenant):
    headers = tenant.headers()
    first = _upload(client, headers, png_bytes(10), "a.png")
    second = _upload(client, headers, png_bytes(11), "b.png")
    url = f"/images/archive?ids={second['id']}&ids={first['id']}&ids={second['id']}"
    response = client.get(url, headers=headers)
    members = _zip(response)
    assert list(members) == ["b.png", "a.png"]
    assert hashlib.sha256(members["a.png"]).hexdigest() == first["sha256"]
    assert "images.zip" in response.headers["Content-Disposition"]

    # Someone else's image, or one in the trash, is not in anyone's selection.
    theirs = _upload(client, other_tenant.headers(), png_bytes(12), "c.png")
    assert client.delete(f"/images/{first['id']}", headers=headers).status_code == 204
    for missing in (theirs["id"], first["id"]):
        refused = client.get(f"/images/archive?ids={second['id']}&ids={missing}", headers=headers)
        assert refused.status_code == 422
        assert refused.json["message"] == (
            f"The selection names an image you do not have: {missing!r}."
        )
        assert refused.json["errors"] == {"query": {"ids": [f"no image {missing!r}"]}}


def test_a_selection_is_bounded_and_checked(client, tenant):
    headers = tenant.headers()
    assert client.get("/images/archive", headers=headers).status_code == 422
    assert client.get("/images/archive?ids=../../etc", headers=headers).status_code == 422
    many = "&".join(f"ids=img_{'a' * 19}{'bcdefg'[i % 6]}" for i in range(201))
    assert client.get(f"/images/archive?{many}", headers=headers).status_code == 422


def test_the_spec_documents_the_zip_downloads(client):
    spec = client.get("/openapi.json").json
    album = spec["paths"]["/collections/{collection_id}/archive"]["get"]
    selection = spec["paths"]["/images/archive"]["get"]
    assert album["operationId"] == "downloadCollectionArchive"
    assert selection["operationId"] == "downloadImagesArchive"
    for operation in (album, selection):
        content = operation["responses"]["200"]["content"]
        assert content == {"application/zip": {"schema": {"type": "string", "format": "binary"}}}
        assert operation["x-permission"] == "images:read"


@pytest.mark.skipif(shutil.which("unzip") is None, reason="no unzip on this machine")
def test_unzip_reads_the_streamed_zip(client, tenant, tmp_path):
    headers = tenant.headers()
    image = _upload(client, headers, png_bytes(20), "x.png")
    archive = tmp_path / "images.zip"
    archive.write_bytes(client.get(f"/images/archive?ids={image['id']}", headers=headers).data)
    checked = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "No errors detected" in checked.stdout
