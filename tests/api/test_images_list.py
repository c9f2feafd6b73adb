"""GET /images: keyset paging, filters, sorting; GET /images/timeline."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.support.corpus import corpus_path
from tests.support.images import png_bytes, upload


def upload_many(client, headers, count, **fields):
    return [
        upload(client, headers, png_bytes(1000 + i), f"p{i}.png", **fields).json
        for i in range(count)
    ]


def all_pages(client, headers, **params):
    ids, cursor, pages = [], None, 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/images", query_string=query, headers=headers)
        assert response.status_code == 200, response.json
        ids += [item["id"] for item in response.json["items"]]
        cursor = response.json["next_cursor"]
        pages += 1
        if cursor is None:
            return ids, pages


def test_pages_cover_everything_once_in_order(client, tenant):
    created = upload_many(client, tenant.headers(), 7)
    ids, pages = all_pages(client, tenant.headers(), limit=3)
    assert pages == 3
    assert ids == [c["id"] for c in reversed(created)]  # newest first
    oldest_first, _ = all_pages(client, tenant.headers(), limit=2, sort="uploaded_at")
    assert oldest_first == [c["id"] for c in created]


def test_page_size_is_bounded(client, tenant):
    for limit in (0, 201, -1):
        assert (
            client.get(
                "/images", query_string={"limit": limit}, headers=tenant.headers()
            ).status_code
            == 422
        )


def test_forged_or_foreign_cursors_are_422(client, tenant):
    upload_many(client, tenant.headers(), 3)
    first = client.get("/images", query_string={"limit": 1}, headers=tenant.headers()).json
    bad = client.get(
        "/images", query_string={"cursor": first["next_cursor"] + "x"}, headers=tenant.headers()
    )
    assert bad.status_code == 422
    other_query = client.get(
        "/images",
        query_string={"cursor": first["next_cursor"], "tag": "x"},
        headers=tenant.headers(),
    )
    assert other_query.status_code == 422


def test_filters(client, tenant):
    headers = tenant.headers()
    beach = upload(
        client, headers, png_bytes(1), "beach.png", title="Sunny Beach", tags="sea,holiday"
    ).json
    city = upload(
        client, headers, png_bytes(2), "city.png", tags="town", taken_at="2020-01-01T12:00:00+00:00"
    ).json
    gps = upload(client, headers, corpus_path("valid/exif_gps.jpg").read_bytes(), "gps.jpg").json

    def ids(**params):
        response = client.get("/images", query_string=params, headers=headers)
        assert response.status_code == 200, response.json
        return {item["id"] for item in response.json["items"]}

    assert ids(tag="sea") == {beach["id"]}
    assert ids(tag="nothing") == set()
    assert ids(format="PNG") == {beach["id"], city["id"]}
    assert ids(format="JPEG") == {gps["id"]}
    assert ids(q="beach") == {beach["id"]}  # title, case-insensitive
    assert ids(q="city") == {city["id"]}  # file name
    assert ids(q="%") == set()  # LIKE wildcards are literal
    assert ids(sha256=city["sha256"]) == {city["id"]}
    assert ids(taken_before="2021-01-01T00:00:00+00:00") == {city["id"]}
    assert ids(taken_after="2021-01-01T00:00:00+00:00") == (
        {gps["id"]} if gps["taken_at"] and gps["taken_at"] >= "2021" else set()
    )
    assert ids(uploaded_after="2000-01-01T00:00:00+00:00") == {beach["id"], city["id"], gps["id"]}
    assert ids(uploaded_before="2000-01-01T00:00:00+00:00") == set()
    assert gps["has_gps"] is True
    assert ids(has_gps="true") == {gps["id"]}
    assert ids(has_gps="false") == {beach["id"], city["id"]}
    for bad in (
        {"format": "SVG"},
        {"sha256": "abc"},
        {"taken_after": "2020-13-01"},
        {"taken_after": "yesterday"},
        {"sort": "size"},
    ):
        assert client.get("/images", query_string=bad, headers=headers).status_code == 422, bad


def test_sort_by_taken_at_uses_upload_time_when_unknown(client, tenant):
    headers = tenant.headers()
    old = upload(client, headers, png_bytes(1), taken_at="2001-01-01T00:00:00+00:00").json
    new = upload(client, headers, png_bytes(2)).json  # no capture time: its upload time
    mid = upload(client, headers, png_bytes(3), taken_at="2010-06-01T00:00:00+00:00").json
    ids, _ = all_pages(client, headers, sort="taken_at", limit=2)
    assert ids == [old["id"], mid["id"], new["id"]]


def test_timeline_counts(client, tenant):
    headers = tenant.headers()
    upload(client, headers, png_bytes(1), taken_at="2020-01-05T00:00:00+00:00")
    upload(client, headers, png_bytes(2), taken_at="2020-01-20T00:00:00+00:00")
    upload(client, headers, png_bytes(3), taken_at="2020-03-01T00:00:00+00:00")
    upload(client, headers, png_bytes(4), taken_at="2019-12-31T23:00:00-02:00")  # 2020-01-01 UTC
    months = client.get("/images/timeline", headers=headers).json
    assert months["buckets"] == [
        {"period": "2020-03", "count": 1},
        {"period": "2020-01", "count": 3},
    ]
    years = client.get(
        "/images/timeline", query_string={"granularity": "year"}, headers=headers
    ).json
    assert years["buckets"] == [{"period": "2020", "count": 4}]
    days = client.get("/images/timeline", query_string={"granularity": "day"}, headers=headers).json
    assert {"period": "2020-01-01", "count": 1} in days["buckets"]
    assert (
        client.get(
            "/images/timeline", query_string={"granularity": "week"}, headers=headers
        ).status_code
        == 422
    )


def gif_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("P", (8, 8), 3).save(out, "GIF")
    return out.getvalue()


def test_format_filter_takes_either_case(client, tenant):
    headers = tenant.headers()
    png = upload(client, headers, png_bytes(1)).json
    gif = upload(client, headers, gif_bytes(), "a.gif").json
    assert gif["format"] == "GIF"  # the metadata keeps Pillow's name
    for value, expected in (("gif", gif), ("GIF", gif), ("Gif", gif), ("png", png)):
        response = client.get("/images", query_string={"format": value}, headers=headers)
        assert response.status_code == 200, (value, response.json)
        assert [i["id"] for i in response.json["items"]] == [expected["id"]], value
    # One spelling published for every format parameter: lower case.
    spec = client.get("/openapi.json").json
    for path, name in (
        ("/images", "format"),
        ("/images/{image_id}/render", "format"),
        ("/images/{image_id}/thumbnail", "format"),
        ("/collections/{collection_id}/images", "format"),
    ):
        (parameter,) = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == name]
        enum = parameter["schema"]["enum"]
        assert enum == [value.lower() for value in enum] and "avif" in enum, path


@pytest.mark.parametrize("endpoint", ["render", "thumbnail"])
def test_output_format_takes_either_case(client, tenant, endpoint):
    image = upload(client, tenant.headers(), png_bytes(2, (64, 48))).json
    for value, mime_type in (("WEBP", "image/webp"), ("Png", "image/png"), ("JPG", "image/jpeg")):
        response = client.get(
            f"/images/{image['id']}/{endpoint}",
            query_string={"format": value, **({"width": 32} if endpoint == "render" else {})},
            headers=tenant.headers(),
        )
        assert response.status_code == 200, (value, response.json)
        assert response.mimetype == mime_type


def test_time_filters_take_dates_and_times_without_offset(client, tenant):
    """A date means midnight UTC at its start; a time without offset is UTC; the
    `_after` bound is included, the `_before` bound is not (so a day is after=D&before=D+1)."""
    headers = tenant.headers()
    taken = {
        "april": "2024-04-30T23:59:59+00:00",
        "may_first": "2024-05-01T00:00:00+00:00",
        "may_last": "2024-05-31T23:59:59+00:00",
        "june": "2024-06-01T00:00:00+00:00",
        # 2024-05-01 01:00 in Paris is still April in UTC.
        "paris": "2024-05-01T01:00:00+02:00",
    }
    ids = {
        name: upload(client, headers, png_bytes(10 + i), taken_at=moment).json["id"]
        for i, (name, moment) in enumerate(taken.items())
    }

    def found(**params):
        response = client.get("/images", query_string=params, headers=headers)
        assert response.status_code == 200, (params, response.json)
        return {
            name
            for name, image_id in ids.items()
            if image_id in {item["id"] for item in response.json["items"]}
        }

    may = {"may_first", "may_last"}
    assert found(taken_after="2024-05-01", taken_before="2024-06-01") == may
    assert found(taken_after="2024-05-01T00:00:00", taken_before="2024-06-01T00:00") == may
    assert found(taken_after="2024-05-01T02:00:00+02:00", taken_before="2024-06-01") == may
    assert found(taken_before="2024-05-01") == {"april", "paris"}
    assert found(taken_after="2024-06-01") == {"june"}
    everything = set(taken)
    assert found(uploaded_after="2000-01-01", uploaded_before="9999-12-31") == everything
    assert found(uploaded_before="2000-01-01T00:00:00") == set()
    spec = client.get("/openapi.json").json
    (parameter,) = [
        p for p in spec["paths"]["/images"]["get"]["parameters"] if p["name"] == "taken_before"
    ]
    assert "midnight UTC" in parameter["description"]
