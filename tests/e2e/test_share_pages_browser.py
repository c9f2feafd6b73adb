"""Share pages in a real browser, under their Content-Security-Policy.

Headless Debian Chromium (Playwright) against a real gunicorn, loopback only:
a password-protected album share is opened with no key, the password form
refuses a wrong password and takes the right one, the grid's thumbnails and
an image page's large rendition paint, nothing breaks the CSP (Chromium logs
every violation to the console), and once the share is deleted the same link
shows the not-available page.
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.support.browser import loopback_only_browser, require_browser
from tests.support.corpus import corpus_path
from tests.support.live_server import cli, gunicorn_server

PHOTOS = [corpus_path("valid/hopper.jpg"), corpus_path("valid/flower.jpg")]


@pytest.fixture
def live(tmp_path):
    require_browser()
    env = {"IMAGE_REPO_DATA_DIR": str(tmp_path / "data")}
    cli(env, "db", "upgrade")
    key = json.loads(cli(env, "tenants", "create", "acme", "--json"))["api_key"]
    with gunicorn_server(env, workers=2, log_path=tmp_path / "gunicorn.log") as base:
        yield base, {"X-API-Key": key}


def _painted(page, selector: str) -> list[int]:
    return page.eval_on_selector_all(
        selector, "els => els.map(e => e.complete ? e.naturalWidth : 0)"
    )


def test_a_protected_album_share_in_chromium(live, tmp_path):
    base, headers = live
    ids = []
    for path in PHOTOS:
        made = requests.post(
            f"{base}/images",
            files={"image": (path.name, path.read_bytes(), "image/jpeg")},
            headers=headers,
            timeout=60,
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    album = requests.post(f"{base}/collections", json={"name": "Walk"}, headers=headers).json()
    for image_id in ids:
        requests.put(f"{base}/collections/{album['id']}/images/{image_id}", headers=headers)
    share = requests.post(
        f"{base}/shares",
        json={"collection_id": album["id"], "password": "open sesame", "label": "Our walk"},
        headers=headers,
    ).json()
    link = share["url"]
    assert link.startswith(base + "/s/")

    with loopback_only_browser(tmp_path / "profile") as browser:
        page = browser.page
        console = []
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        answers = []
        page.on("response", lambda r: answers.append(r))
        sync_api = require_browser()
        expect = sync_api.expect

        first = page.goto(link)
        assert first.status == 401
        assert first.headers["referrer-policy"] == "no-referrer"
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Open").click()
        expect(page.get_by_role("alert")).to_contain_text("not the password")
        console.clear()  # the 401 and 403 documents themselves are logged as errors

        page.get_by_label("Password").fill("open sesame")
        page.get_by_role("button", name="Open").click()
        expect(page.get_by_role("heading", name="Our walk")).to_be_visible()
        thumbs = page.locator(".grid img")
        expect(thumbs).to_have_count(2)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.grid img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        page.screenshot(path=str(tmp_path / "share-grid.png"))

        thumbs.first.click()
        page.wait_for_function(
            "() => { const i = document.querySelector('.single img');"
            " return i && i.complete && i.naturalWidth > 0; }"
        )
        assert all(w > 0 for w in _painted(page, ".single img"))
        expect(page.get_by_role("link", name="Our walk")).to_be_visible()
        assert "Download the original" not in page.content()

        assert not console, console  # CSP violations are console errors
        assert not browser.blocked and not browser.page_errors
        assert all(r.url.startswith(base) for r in answers)

        deleted = requests.delete(f"{base}/shares/{share['id']}", headers=headers)
        assert deleted.status_code == 204
        gone = page.goto(link)
        assert gone.status == 404
        expect(page.get_by_role("heading", name="This link is not available")).to_be_visible()
