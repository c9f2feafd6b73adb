"""The gallery's page and files as the service serves them (no browser)."""

from __future__ import annotations

import re

from image_repo.web.views import STATIC, assets_version


def test_the_page_is_public_and_sent_under_a_strict_policy(client):
    answer = client.get("/app/")
    assert answer.status_code == 200
    assert answer.mimetype == "text/html"
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "default-src 'self'" in policy
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    page = answer.get_data(as_text=True)
    # Nothing inline that the policy would block, nothing from elsewhere.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert "<style" not in page and not re.search(r"\s(style|on\w+)=", page)
    assert "http://" not in page and "https://" not in page
    assert f"static/{assets_version()}/app.js" in page


def test_assets_are_cached_for_long_under_their_digest(client):
    answer = client.get(f"/app/static/{assets_version()}/app.js")
    assert answer.status_code == 200
    assert answer.mimetype in ("text/javascript", "application/javascript")
    assert "immutable" in answer.headers["Cache-Control"]
    assert "max-age=31536000" in answer.headers["Cache-Control"]


def test_an_old_digest_or_unknown_file_is_a_json_404(client):
    for path in ("/app/static/0000000000000000/app.js", f"/app/static/{assets_version()}/nope.js"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert answer.is_json and answer.json["code"] == 404


def test_no_asset_reaches_another_host():
    for path in STATIC.rglob("*"):
        if path.suffix in (".js", ".css", ".html"):
            text = path.read_text()
            # Links to openstreetmap.org are for people to follow; nothing loads from there.
            hosts = set(re.findall(r"https?://([\w.-]+)", text)) - {
                "www.openstreetmap.org",
                "blurha.sh",
            }
            assert not hosts, f"{path.name} names {hosts}"
            assert "@import" not in text and "url(http" not in text


def test_the_page_preloads_every_module(client):
    """All modules load at once (modulepreload), not one import level at a time."""
    page = client.get("/app/").get_data(as_text=True)
    modules = {path.name for path in STATIC.glob("*.js")}
    preloaded = set(re.findall(r'rel="modulepreload" href="[^"]*/([\w.-]+\.js)"', page))
    assert preloaded | {"app.js"} == modules
