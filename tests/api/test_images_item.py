"""One image: metadata, the original file (HTTP caching, ranges), update, delete."""

from __future__ import annotations

import hashlib

import pytest

from image_repo.domain import images
from image_repo.domain.errors import PreconditionFailed
from image_repo.http.context import services_of
from tests.support.images import jpeg_bytes, png_bytes, upload


def test_get_metadata_with_etag(client, tenant):
    created = upload(client, tenant.headers(), png_bytes(1)).json
    response = client.get(f"/images/{created['id']}", headers=tenant.headers("reader"))
    assert response.status_code == 200
    assert response.json == created
    assert response.headers["ETag"].startswith('"')


def test_unknown_image_is_404(client, tenant):
    assert client.get("/images/img_nothere", headers=tenant.headers()).status_code == 404


def test_file_download_headers(client, tenant):
    data = png_bytes(2)
    image = upload(client, tenant.headers(), data, "sunset.png").json
    response = client.get(f"/images/{image['id']}/file", headers=tenant.headers("reader"))
    assert response.status_code == 200
    assert response.data == data
    assert response.mimetype == "image/png"
    assert int(response.headers["Content-Length"]) == len(data)
    assert response.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert response.headers["Last-Modified"]
    assert "private" in response.headers["Cache-Control"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"] == "inline; filename=sunset.png"
    attachment = client.get(
        f"/images/{image['id']}/file", query_string={"download": "true"}, headers=tenant.headers()
    )
    assert attachment.headers["Content-Disposition"].startswith("attachment;")


def test_file_conditional_and_ranges(client, tenant):
    data = png_bytes(3)
    image = upload(client, tenant.headers(), data).json
    url = f"/images/{image['id']}/file"
    etag = client.get(url, headers=tenant.headers()).headers["ETag"]
    not_modified = client.get(url, headers={**tenant.headers(), "If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.data == b""
    part = client.get(url, headers={**tenant.headers(), "Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.data == data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    tail = client.get(url, headers={**tenant.headers(), "Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.data == data[-5:]
    beyond = client.get(url, headers={**tenant.headers(), "Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416
    head = client.head(url, headers=tenant.headers())
    assert head.status_code == 200 and head.data == b""
    assert int(head.headers["Content-Length"]) == len(data)


def test_unicode_filename_is_encoded_safely(client, tenant):
    image = upload(client, tenant.headers(), png_bytes(4), "été à Zürich.png").json
    disposition = client.get(f"/images/{image['id']}/file", headers=tenant.headers()).headers[
        "Content-Disposition"
    ]
    assert "filename*=UTF-8''" in disposition
    disposition.encode("latin-1")  # a header must be latin-1 safe


def test_patch_updates_fields_and_etag(client, tenant):
    image = upload(client, tenant.headers(), png_bytes(5), tags="a").json
    url = f"/images/{image['id']}"
    etag = client.get(url, headers=tenant.headers()).headers["ETag"]
    changes = {
        "title": "New",
        "description": "D",
        "tags": ["b", "c"],
        "taken_at": "2019-07-01T08:00:00-04:00",
    }
    response = client.patch(
        url, json=changes, headers={**tenant.headers("contributor"), "If-Match": etag}
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert body["title"] == "New" and body["tags"] == ["b", "c"]
    assert body["taken_at"] == "2019-07-01T08:00:00-04:00"
    assert response.headers["ETag"] != etag
    stale = client.patch(
        url, json={"title": "Lost"}, headers={**tenant.headers(), "If-Match": etag}
    )
    assert stale.status_code == 412
    assert client.get(url, headers=tenant.headers()).json["title"] == "New"
    # Without If-Match the update applies (last writer wins).
    assert client.patch(url, json={"title": None}, headers=tenant.headers()).json["title"] is None


def test_server_owned_fields_cannot_be_patched(client, tenant):
    image = upload(client, tenant.headers(), png_bytes(6)).json
    for field, value in (("sha256", "0" * 64), ("width", 1), ("id", "img_x"), ("bytes", 1)):
        response = client.patch(
            f"/images/{image['id']}", json={field: value}, headers=tenant.headers()
        )
        assert response.status_code == 422, field
    assert client.get(f"/images/{image['id']}", headers=tenant.headers()).json == image


def test_delete(client, tenant):
    image = upload(client, tenant.headers(), png_bytes(7)).json
    url = f"/images/{image['id']}"
    assert client.delete(url, headers=tenant.headers("contributor")).status_code == 403
    assert client.delete(url, headers=tenant.headers("editor")).status_code == 204
    assert client.get(url, headers=tenant.headers()).status_code == 404
    assert client.delete(url, headers=tenant.headers()).status_code == 404
    # It is in the trash: the same bytes again bring it back (tests/api/test_trash.py);
    # purged, the same bytes again make a new image.
    assert client.delete(f"/trash/{image['id']}", headers=tenant.headers()).status_code == 204
    again = upload(client, tenant.headers(), png_bytes(7))
    assert again.status_code == 201 and again.json["id"] != image["id"]


@pytest.mark.parametrize(
    "if_match",
    [
        "W/{stale}",  # weak: If-Match compares strongly, a weak tag never matches
        "W/{current}",
        ", , ,",  # no tag at all
        "",
        '"img_nothing-v1"',
    ],
)
def test_if_match_that_cannot_match_is_412_and_changes_nothing(client, tenant, if_match):
    image = upload(client, tenant.headers(), png_bytes(8)).json
    url = f"/images/{image['id']}"
    stale = client.get(url, headers=tenant.headers()).headers["ETag"]
    newer = client.patch(url, json={"title": "newer"}, headers=tenant.headers())
    current = newer.headers["ETag"]
    header = if_match.format(stale=stale, current=current)
    refused = client.patch(
        url, json={"title": "lost"}, headers={**tenant.headers(), "If-Match": header}
    )
    assert refused.status_code == 412, header
    assert refused.json["code"] == 412
    assert client.get(url, headers=tenant.headers()).json["title"] == "newer"
    # The current strong ETag, or a list holding it, or a star still applies.
    for good in ("{current}", '"other", {current}', "*"):
        good = good.format(current=current)
        applied = client.patch(
            url, json={"title": good}, headers={**tenant.headers(), "If-Match": good}
        )
        assert applied.status_code == 200, good
        current = applied.headers["ETag"]


def test_get_metadata_answers_if_none_match_with_304(client, tenant):
    image = upload(client, tenant.headers(), png_bytes(9)).json
    url = f"/images/{image['id']}"
    etag = client.get(url, headers=tenant.headers()).headers["ETag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = client.get(url, headers={**tenant.headers("reader"), "If-None-Match": header})
        assert cached.status_code == 304, header
        assert cached.data == b""
        assert cached.headers["ETag"] == etag
    head = client.head(url, headers={**tenant.headers(), "If-None-Match": etag})
    assert head.status_code == 304
    # Once changed, the old ETag gets the new representation.
    client.patch(url, json={"title": "changed"}, headers=tenant.headers())
    fresh = client.get(url, headers={**tenant.headers(), "If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.json["title"] == "changed"
    assert fresh.headers["ETag"] != etag


@pytest.mark.parametrize(
    ("data", "uploaded_as", "served_as"),
    [
        (png_bytes(10), "evil.html", "evil.png"),
        (png_bytes(11), "photo.jpg", "photo.png"),
        (png_bytes(12), "no-extension", "no-extension.png"),
        (png_bytes(13), "Holiday.PNG", "Holiday.PNG"),
        (jpeg_bytes(14), "scan.jpeg", "scan.jpeg"),
        (jpeg_bytes(15), "page.svg", "page.jpg"),
    ],
)
def test_original_is_served_under_the_extension_of_its_format(
    client, tenant, data, uploaded_as, served_as
):
    image = upload(client, tenant.headers(), data, uploaded_as).json
    assert image["filename"] == uploaded_as  # the client's name, as given
    url = f"/images/{image['id']}/file"
    inline = client.get(url, headers=tenant.headers())
    assert inline.headers["Content-Disposition"] == f"inline; filename={served_as}"
    saved = client.get(url, query_string={"download": "true"}, headers=tenant.headers())
    assert saved.headers["Content-Disposition"] == f"attachment; filename={served_as}"


BIDI_AND_CONTROLS = (
    "\u202e\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c\x85\x9b\x07"
)


def test_bidi_and_control_characters_leave_file_names(app, client, tenant):
    name = "invoice\u202egnp\u2066.\x85h\x9btml"
    image = upload(client, tenant.headers(), png_bytes(16), name).json
    assert image["filename"] == "invoicegnp.html"
    disposition = client.get(f"/images/{image['id']}/file", headers=tenant.headers()).headers[
        "Content-Disposition"
    ]
    assert disposition == "inline; filename=invoicegnp.png"

    # A name stored before this rule is cleaned on the way out too.
    from sqlalchemy import update

    from image_repo.db.models import Image

    with services_of(app).engine.begin() as connection:
        connection.execute(
            update(Image)
            .where(Image.id == image["id"])
            .values(filename=f"été{BIDI_AND_CONTROLS}gnp.exe")
        )
    disposition = client.get(
        f"/images/{image['id']}/file", query_string={"download": "true"}, headers=tenant.headers()
    ).headers["Content-Disposition"]
    assert disposition == "attachment; filename=etegnp.png; filename*=UTF-8''%C3%A9t%C3%A9gnp.png"


UNUSABLE_RANGES = ["bytes=abc", "bytes=5-2", "bytes=0-1,5-6", "items=0-5", "bytes", "bytes=-0"]


def test_a_range_that_cannot_be_used_is_ignored(client, tenant):
    """RFC 9110 14.2: an unparseable Range (or one we do not serve) is ignored: 200, whole."""
    data = png_bytes(17)
    image = upload(client, tenant.headers(), data).json
    for url in (f"/images/{image['id']}/file", f"/images/{image['id']}/thumbnail?size=small"):
        whole = client.get(url, headers=tenant.headers())
        for value in UNUSABLE_RANGES:
            response = client.get(url, headers={**tenant.headers(), "Range": value})
            assert response.status_code == 200, (url, value)
            assert response.data == whole.data
            assert "Content-Range" not in response.headers
    # A satisfiable single range is still served, an unsatisfiable one still 416.
    url = f"/images/{image['id']}/file"
    assert client.get(url, headers={**tenant.headers(), "Range": "bytes=0-3"}).status_code == 206
    beyond = client.get(url, headers={**tenant.headers(), "Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416


def test_two_updates_holding_the_same_etag_cannot_both_win(app, client, tenant):
    """The ETag check and the write are one: a writer that read the image
    before another's update committed gets 412, though what it holds in
    memory still matches the ETag it sends."""
    image_id = upload(client, tenant.headers(), png_bytes(31)).json["id"]
    etag = client.get(f"/images/{image_id}", headers=tenant.headers()).headers["ETag"]
    sessions = services_of(app).sessions
    with sessions() as slow, sessions() as fast:
        held = images.get_image(slow, tenant.tenant_id, image_id)  # read, not yet written
        assert images.etag_of(held) == etag.strip('"')
        images.update_image(
            fast,
            images.get_image(fast, tenant.tenant_id, image_id),
            {"title": "first"},
            if_match={etag.strip('"')},
        )
        fast.commit()
        with pytest.raises(PreconditionFailed):
            images.update_image(slow, held, {"title": "second"}, if_match={images.etag_of(held)})
        slow.rollback()
    body = client.get(f"/images/{image_id}", headers=tenant.headers()).json
    assert body["title"] == "first"
