"""Faces and people: detection on the test portraits, grouping, the API, privacy, crops."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from image_repo.imaging import faces as face_finder
from tests.conftest import create_tenant
from tests.support.faces import analyse, face_path, manifest, upload_photo
from tests.support.images import upload
from tests.support.jobs import queued_analyses, run_queued


@pytest.fixture
def app_config(app_config):
    return {**app_config, "FACES": True}


@pytest.fixture
def acme(app, tenant):
    """The tenant, its face switch turned on (through the API)."""
    response = app.test_client().patch(
        "/account/faces", json={"enabled": True}, headers=tenant.headers()
    )
    assert response.status_code == 200, response.json
    assert response.json["active"] is True
    return tenant


def _analysed(app, client, tenant, name: str) -> str:
    """Upload a photo and run the jobs its upload queued (its faces among them)."""
    image_id = upload_photo(client, tenant.headers(), name)
    run_queued(app)
    return image_id


def _faces(client, tenant, image_id: str) -> list[dict]:
    response = client.get(f"/images/{image_id}/faces", headers=tenant.headers("reader"))
    assert response.status_code == 200, response.json
    return response.json["items"]


def test_each_photo_gives_its_faces_and_each_person_is_one_person(app, client, acme):
    who: dict[str, set[str]] = {}
    images: dict[str, str] = {}
    for name, expected in manifest().items():
        images[name] = _analysed(app, client, acme, name)
        found = _faces(client, acme, images[name])
        assert len(found) == expected["faces"], name
        lefts = [face["box"]["left"] for face in found]
        assert lefts == sorted(lefts), "faces come left to right"
        for face, person in zip(found, expected["people"], strict=True):
            assert face["person_id"] is not None
            who.setdefault(person, set()).add(face["person_id"])
    # Every photo of one person ends as one person, and two people are two persons.
    assert all(len(ids) == 1 for ids in who.values()), who
    person_of = {name: next(iter(ids)) for name, ids in who.items()}
    assert len(set(person_of.values())) == len(person_of)

    listed = client.get("/people", headers=acme.headers("reader")).json["items"]
    counts = {person["id"]: person["face_count"] for person in listed}
    for name, person_id in person_of.items():
        expected = sum(entry["people"].count(name) for entry in manifest().values())
        assert counts[person_id] == expected
        with_them = client.get(f"/images?person={person_id}", headers=acme.headers("reader"))
        assert with_them.status_code == 200
        assert sorted(image["id"] for image in with_them.json["items"]) == sorted(
            images[file] for file, entry in manifest().items() if name in entry["people"]
        )


def test_an_upload_is_analysed_in_the_background(app, client, acme, other_tenant):
    image_id = upload_photo(client, acme.headers(), "two_people.jpg")
    # The answer came first: the faces job waits in the queue.
    assert (image_id, "faces") in queued_analyses(app)
    assert _faces(client, acme, image_id) == []
    shown = client.get(f"/images/{image_id}", headers=acme.headers()).json["analyses"]
    assert {"kind": "faces", "state": "pending"}.items() <= next(
        a for a in shown if a["kind"] == "faces"
    ).items()
    assert "done" in run_queued(app)
    assert len(_faces(client, acme, image_id)) == manifest()["two_people.jpg"]["faces"]
    shown = client.get(f"/images/{image_id}", headers=acme.headers()).json["analyses"]
    assert next(a for a in shown if a["kind"] == "faces")["state"] == "done"
    # A tenant whose switch is off gets no faces job at all.
    theirs = upload_photo(client, other_tenant.headers(), "two_people.jpg")
    assert (theirs, "faces") not in queued_analyses(app)
    # Off deletes the analysis rows with the faces: `image-repo analyze` finds them again.
    client.patch("/account/faces", json={"enabled": False}, headers=acme.headers())
    shown = client.get(f"/images/{image_id}", headers=acme.headers()).json["analyses"]
    assert "faces" not in [a["kind"] for a in shown]


def test_a_photo_without_faces_gets_none(app, client, acme):
    empty = [name for name, entry in manifest().items() if entry["faces"] == 0]
    assert empty
    for name in empty:
        assert _faces(client, acme, _analysed(app, client, acme, name)) == []
    assert client.get("/people", headers=acme.headers()).json["items"] == []


def test_boxes_are_in_the_displayed_pictures_pixels(app, client, acme):
    """A picture stored on its side with EXIF orientation 6 gets the upright picture's boxes."""
    name = next(n for n, e in manifest().items() if e["faces"] == 1)
    upright = Image.open(face_path(name))
    upright.load()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what orientation 6 turns back
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    stored.save(out, "JPEG", quality=95, exif=exif)
    turned = upload(client, acme.headers(), out.getvalue(), "turned.jpg").json
    assert (turned["width"], turned["height"]) == upright.size
    analyse(app, acme.tenant_id, turned["id"])
    plain = _analysed(app, client, acme, name)
    [a] = _faces(client, acme, turned["id"])
    [b] = _faces(client, acme, plain)
    for side in ("left", "top", "width", "height"):
        assert abs(a["box"][side] - b["box"][side]) <= 0.03 * max(upright.size), (a, b)
    assert a["person_id"] == b["person_id"]


def test_analysis_runs_only_with_both_switches_on(app, client, tenant):
    image_id = upload_photo(client, tenant.headers(), "obama.jpg")
    # The operator allows it, the tenant has not turned it on.
    assert analyse(app, tenant.tenant_id, image_id).status == "skipped"
    assert _faces(client, tenant, image_id) == []
    settings = client.get("/account/faces", headers=tenant.headers("reader")).json
    assert (settings["enabled"], settings["available"], settings["active"]) == (False, True, False)
    # The tenant turns it on while the operator does not allow it.
    app.config["FACES"] = False
    client.patch("/account/faces", json={"enabled": True}, headers=tenant.headers())
    assert analyse(app, tenant.tenant_id, image_id).status == "skipped"
    assert client.get("/account/faces", headers=tenant.headers()).json["active"] is False
    app.config["FACES"] = True
    assert analyse(app, tenant.tenant_id, image_id).status == "done"
    # Done is done: a second run (a duplicate job) changes nothing.
    before = _faces(client, tenant, image_id)
    assert analyse(app, tenant.tenant_id, image_id).status == "present"
    assert _faces(client, tenant, image_id) == before


def test_turning_the_switch_off_deletes_faces_and_people(app, client, acme):
    image_id = _analysed(app, client, acme, "two_people.jpg")
    assert len(client.get("/people", headers=acme.headers()).json["items"]) == 2
    # Only an admin may turn it off (it deletes data).
    assert (
        client.patch(
            "/account/faces", json={"enabled": False}, headers=acme.headers("editor")
        ).status_code
        == 403
    )
    off = client.patch("/account/faces", json={"enabled": False}, headers=acme.headers())
    assert off.status_code == 200
    assert off.json == {
        "enabled": False,
        "available": True,
        "active": False,
        "faces": 0,
        "people": 0,
    }
    assert _faces(client, acme, image_id) == []
    assert client.get("/people", headers=acme.headers()).json["items"] == []
    assert analyse(app, acme.tenant_id, image_id).status == "skipped"


def test_the_cli_switch(app, client, tenant):
    runner = app.test_cli_runner()
    on = runner.invoke(args=["tenants", "update", tenant.name, "--faces", "on", "--json"])
    assert on.exit_code == 0, on.output
    assert json.loads(on.output)["faces_enabled"] is True
    image_id = upload_photo(client, tenant.headers(), "biden.jpg")
    analysed = runner.invoke(args=["faces", "analyze", "--tenant", tenant.name, "--json"])
    assert analysed.exit_code == 0, analysed.output
    assert json.loads(analysed.output) == {"images": 1, "faces": 1}
    assert len(_faces(client, tenant, image_id)) == 1
    shown = client.get(f"/images/{image_id}", headers=tenant.headers()).json["analyses"]
    assert next(a for a in shown if a["kind"] == "faces")["state"] == "done"
    off = runner.invoke(args=["tenants", "update", tenant.name, "--faces", "off", "--json"])
    assert off.exit_code == 0, off.output
    assert json.loads(off.output) | {} == json.loads(off.output)
    assert (json.loads(off.output)["faces_deleted"], json.loads(off.output)["people_deleted"]) == (
        1,
        1,
    )
    assert _faces(client, tenant, image_id) == []
    refused = runner.invoke(args=["faces", "analyze", "--tenant", tenant.name])
    assert refused.exit_code != 0 and "off" in refused.output


def test_rename_hide_move_and_merge(app, client, acme):
    obama = _faces(client, acme, _analysed(app, client, acme, "obama.jpg"))[0]
    biden = _faces(client, acme, _analysed(app, client, acme, "biden.jpg"))[0]
    p_obama, p_biden = obama["person_id"], biden["person_id"]
    assert p_obama != p_biden
    writer = acme.headers("contributor")

    renamed = client.patch(f"/people/{p_obama}", json={"name": " Barack "}, headers=writer)
    assert renamed.status_code == 200
    assert (renamed.json["name"], renamed.json["face_count"]) == ("Barack", 1)
    assert renamed.json["cover_face_id"] == obama["id"]
    assert (
        client.patch(
            f"/people/{p_obama}", json={"name": "x"}, headers=acme.headers("reader")
        ).status_code
        == 403
    )

    hidden = client.patch(f"/people/{p_biden}", json={"hidden": True}, headers=writer).json
    assert hidden["hidden"] is True
    listed = client.get("/people", headers=writer).json["items"]
    assert [p["id"] for p in listed] == [p_obama]
    everyone = client.get("/people?include_hidden=true", headers=writer).json["items"]
    assert sorted(p["id"] for p in everyone) == sorted([p_obama, p_biden])

    # Move Biden's face to Obama's person, and back.
    moved = client.patch(f"/faces/{biden['id']}", json={"person_id": p_obama}, headers=writer)
    assert moved.status_code == 200 and moved.json["person_id"] == p_obama
    assert client.get(f"/people/{p_obama}", headers=writer).json["face_count"] == 2
    assert client.get(f"/people/{p_biden}", headers=writer).json["face_count"] == 0
    client.patch(f"/faces/{biden['id']}", json={"person_id": p_biden}, headers=writer)
    assert client.get(f"/people/{p_biden}", headers=writer).json["face_count"] == 1
    unknown = client.patch(
        f"/faces/{biden['id']}", json={"person_id": "per_" + "a" * 20}, headers=writer
    )
    assert unknown.status_code == 422 and unknown.json["code"] == 422

    # Merge Biden into Obama: one person with both faces, the name kept.
    itself = client.post(f"/people/{p_obama}/merge", json={"people": [p_obama]}, headers=writer)
    assert itself.status_code == 422
    merged = client.post(f"/people/{p_obama}/merge", json={"people": [p_biden]}, headers=writer)
    assert merged.status_code == 200, merged.json
    assert (merged.json["name"], merged.json["face_count"]) == ("Barack", 2)
    assert client.get(f"/people/{p_biden}", headers=writer).status_code == 404
    assert {
        f["person_id"]
        for f in (_faces(client, acme, obama["image_id"]) + _faces(client, acme, biden["image_id"]))
    } == {p_obama}
    # New faces are grouped with what the people are now.
    two = _faces(client, acme, _analysed(app, client, acme, "two_people.jpg"))
    assert {face["person_id"] for face in two} == {p_obama}


def test_regroup_keeps_names(app, client, acme):
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg"):
        _analysed(app, client, acme, name)
    people = client.get("/people", headers=acme.headers()).json["items"]
    assert len(people) == 2
    named = people[0]["id"]
    client.patch(f"/people/{named}", json={"name": "First"}, headers=acme.headers())
    result = app.test_cli_runner().invoke(
        args=["faces", "regroup", "--tenant", acme.name, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"people": 2}
    after = client.get("/people", headers=acme.headers()).json["items"]
    assert sorted((p["name"] or "", p["face_count"]) for p in after) == sorted(
        (("First" if p["id"] == named else ""), p["face_count"]) for p in people
    )


def test_purging_an_image_deletes_its_faces(app, client, acme):
    image_id = _analysed(app, client, acme, "obama.jpg")
    [face] = _faces(client, acme, image_id)
    assert client.get(f"/faces/{face['id']}", headers=acme.headers()).status_code == 200
    assert client.delete(f"/images/{image_id}", headers=acme.headers()).status_code == 204
    # In the trash: gone from everything that finds images, people's counts too.
    assert client.get(f"/faces/{face['id']}", headers=acme.headers()).status_code == 404
    assert client.get("/people", headers=acme.headers()).json["items"] == []
    assert (
        client.get(f"/people/{face['person_id']}", headers=acme.headers()).json["face_count"] == 0
    )
    assert client.post(f"/trash/{image_id}/restore", headers=acme.headers()).status_code == 200
    assert (
        client.get(f"/people/{face['person_id']}", headers=acme.headers()).json["face_count"] == 1
    )
    assert client.delete(f"/images/{image_id}", headers=acme.headers()).status_code == 204
    assert client.delete(f"/trash/{image_id}", headers=acme.headers()).status_code == 204
    from image_repo.db.models import Face
    from image_repo.http.context import services_of

    session = services_of(app).sessions()
    try:
        assert session.get(Face, face["id"]) is None
    finally:
        session.close()
    assert client.get("/people", headers=acme.headers()).json["items"] == []


def test_tenants_never_see_each_others_faces_or_people(app, client, acme):
    image_id = _analysed(app, client, acme, "obama.jpg")
    [face] = _faces(client, acme, image_id)
    other = create_tenant(app, "globex")
    client.patch("/account/faces", json={"enabled": True}, headers=other.headers())
    theirs = _faces(client, other, _analysed(app, client, other, "obama2.jpg"))[0]
    h = other.headers()
    assert theirs["person_id"] != face["person_id"]  # the same man, but not their person
    assert client.get(f"/images/{image_id}/faces", headers=h).status_code == 404
    assert client.get(f"/faces/{face['id']}", headers=h).status_code == 404
    assert client.get(f"/faces/{face['id']}/thumbnail", headers=h).status_code == 404
    assert client.get(f"/people/{face['person_id']}", headers=h).status_code == 404
    assert (
        client.patch(f"/people/{face['person_id']}", json={"name": "x"}, headers=h).status_code
        == 404
    )
    assert [p["id"] for p in client.get("/people", headers=h).json["items"]] == [
        theirs["person_id"]
    ]
    assert client.get(f"/images?person={face['person_id']}", headers=h).json["items"] == []
    stolen = client.patch(
        f"/faces/{theirs['id']}", json={"person_id": face["person_id"]}, headers=h
    )
    assert stolen.status_code == 422
    merged = client.post(
        f"/people/{theirs['person_id']}/merge", json={"people": [face["person_id"]]}, headers=h
    )
    assert merged.status_code == 404
    # Their switch going off leaves ours alone.
    client.patch("/account/faces", json={"enabled": False}, headers=h)
    assert len(_faces(client, acme, image_id)) == 1


def test_a_face_thumbnail_is_a_square_around_the_face(app, client, acme):
    image_id = _analysed(app, client, acme, "two_people.jpg")
    for face in _faces(client, acme, image_id):
        response = client.get(
            f"/faces/{face['id']}/thumbnail?size=small&format=png", headers=acme.headers("reader")
        )
        assert response.status_code == 200, response.json
        assert response.headers["Content-Type"] == "image/png"
        with Image.open(io.BytesIO(response.data)) as picture:
            assert picture.size == (128, 128)
            picture = picture.convert("RGB")
            # The face fills it: the detector finds it again.
            found = face_finder.find_faces(picture.resize((256, 256)), (256, 256))
            assert len(found) == 1
    again = client.get(
        f"/faces/{face['id']}/thumbnail?size=small&format=png", headers=acme.headers()
    )
    assert again.headers["X-Rendition-Cache"] == "hit"
    bad = client.get(f"/faces/{face['id']}/thumbnail?size=huge", headers=acme.headers())
    assert bad.status_code == 422


def _detected(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as picture:
        return len(face_finder.find_faces(picture.convert("RGB"), picture.size))


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("obama.jpg", (800, 400)),
        ("obama2.jpg", (800, 400)),
        ("biden.jpg", (800, 400)),
        ("two_people.jpg", (600, 400)),
    ],
)
def test_gravity_face_keeps_every_face_in_view(app, client, acme, name, size):
    image_id = _analysed(app, client, acme, name)
    boxes = _faces(client, acme, image_id)
    width, height = size
    query = f"width={width}&height={height}&fit=cover&format=png"
    face = client.get(f"/images/{image_id}/render?{query}&gravity=face", headers=acme.headers())
    assert face.status_code == 200
    assert _detected(face.data) == len(boxes)
    thumb = client.get(
        f"/images/{image_id}/thumbnail?size=medium&format=png&gravity=face", headers=acme.headers()
    )
    assert thumb.status_code == 200
    with Image.open(io.BytesIO(thumb.data)) as picture:
        assert picture.size[0] == picture.size[1]


def test_gravity_face_without_faces_is_smart(app, client, tenant):
    # Analysis off: no faces recorded, so face crops like smart.
    image_id = upload_photo(client, tenant.headers(), "obama.jpg")
    query = "width=400&height=200&fit=cover&format=png"
    face = client.get(f"/images/{image_id}/render?{query}&gravity=face", headers=tenant.headers())
    smart = client.get(f"/images/{image_id}/render?{query}&gravity=smart", headers=tenant.headers())
    assert face.status_code == smart.status_code == 200
    assert face.data == smart.data


def _off_centre_subject() -> bytes:
    """A grey, flat picture with a colourful, detailed subject near its right edge."""
    rng = np.random.default_rng(7)
    pixels = np.full((300, 900, 3), 128, np.uint8)
    pixels[80:220, 700:860] = rng.integers(0, 256, (140, 160, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def _colourfulness(data: bytes) -> float:
    with Image.open(io.BytesIO(data)) as picture:
        rgb = np.asarray(picture.convert("RGB"), np.float32)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean())


def test_gravity_smart_finds_an_off_centre_subject(client, tenant):
    image_id = upload(client, tenant.headers(), _off_centre_subject(), "subject.png").json["id"]
    query = "width=300&height=300&fit=cover&format=png"
    centre = client.get(f"/images/{image_id}/render?{query}", headers=tenant.headers())
    smart = client.get(f"/images/{image_id}/render?{query}&gravity=smart", headers=tenant.headers())
    assert centre.status_code == smart.status_code == 200
    assert smart.data != centre.data
    assert _colourfulness(smart.data) > 10 * max(1.0, _colourfulness(centre.data))
    thumb = client.get(
        f"/images/{image_id}/thumbnail?size=small&format=png&gravity=smart",
        headers=tenant.headers(),
    )
    assert _colourfulness(thumb.data) > 10 * max(1.0, _colourfulness(centre.data))
    again = client.get(f"/images/{image_id}/render?{query}&gravity=smart", headers=tenant.headers())
    assert again.headers["X-Rendition-Cache"] == "hit" and again.data == smart.data
