"""A tenant worth moving, and what a client sees of it, for the transfer tests."""

from __future__ import annotations

import hashlib
import io
import tarfile

from tests.support.corpus import corpus_path
from tests.support.images import upload

FILES = ["hopper.jpg", "hopper.png", "flower.jpg", "hopper.webp", "hopper.gif", "exif_gps.jpg"]


def seed(client, headers) -> dict[str, str]:
    """Uploads with titles, tags and times; two albums; one image in the trash.

    Returns {file name: image id}."""
    ids = {}
    for number, name in enumerate(FILES):
        fields = {"title": f"Title {number}", "tags": f"tag{number},shared"}
        if number % 2:
            fields["description"] = f"Described {number}\nwith two lines"
        if number == 1:
            fields["taken_at"] = "2019-06-01T12:30:00+02:00"
        response = upload(
            client, headers, corpus_path(f"valid/{name}").read_bytes(), name, **fields
        )
        assert response.status_code == 201, response.json
        ids[name] = response.json["id"]
    holidays = client.post(
        "/collections", json={"name": "Holidays", "description": "Summer"}, headers=headers
    ).json["id"]
    client.post("/collections", json={"name": "Empty"}, headers=headers)
    for name in ("hopper.jpg", "hopper.png", "flower.jpg"):
        assert (
            client.put(f"/collections/{holidays}/images/{ids[name]}", headers=headers).status_code
            == 200
        )
    assert client.delete(f"/images/{ids['flower.jpg']}", headers=headers).status_code == 204
    return ids


def _without_id(item: dict) -> dict:
    return {key: value for key, value in item.items() if key != "id"}


def snapshot(client, headers) -> dict:
    """What a client lists: images, trash, albums and their members, by content hash;
    and the hash of every original as served."""
    images = client.get("/images?limit=200", headers=headers).json["items"]
    trash = client.get("/trash?limit=200", headers=headers).json["items"]
    albums = []
    for album in client.get("/collections?limit=200", headers=headers).json["items"]:
        members = client.get(f"/collections/{album['id']}/images", headers=headers).json["items"]
        albums.append({**_without_id(album), "members": sorted(m["sha256"] for m in members)})
    served = {}
    for image in images:
        data = client.get(f"/images/{image['id']}/file", headers=headers).data
        served[image["sha256"]] = hashlib.sha256(data).hexdigest()
    # Counts the database keeps itself (triggers): they must come across too.
    timeline = client.get("/images/timeline?granularity=day", headers=headers).json
    assert sum(bucket["count"] for bucket in timeline["buckets"]) == len(images)
    return {
        "timeline": timeline,
        "images": sorted((_without_id(i) for i in images), key=lambda i: i["sha256"]),
        "trash": sorted((_without_id(i) for i in trash), key=lambda i: i["sha256"]),
        "albums": sorted(albums, key=lambda a: a["name"]),
        "served": served,
    }


def rewrite(source, target, change) -> None:
    """Copy the tar ``source`` to ``target``, member by member, through
    ``change(info, data) -> [(info, data), ...]`` (to make hostile archives)."""
    with tarfile.open(source) as tar_in, tarfile.open(target, "w") as tar_out:
        for info in tar_in.getmembers():
            data = tar_in.extractfile(info).read() if info.isreg() else b""
            for new_info, new_data in change(info, data):
                new_info.size = len(new_data) if new_info.isreg() else 0
                tar_out.addfile(new_info, io.BytesIO(new_data) if new_info.isreg() else None)
