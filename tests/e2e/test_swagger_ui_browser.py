"""Swagger UI in a real browser: authorize, upload a file with Try it out, list it.

Drives headless Debian Chromium (Playwright) against a real gunicorn. The page
may reach loopback only: the docs must work with no internet.

Try it out fills the form from the spec (examples, defaults, or a sample per
type: `string`, the current time) and sends what it filled in; a person who
only picks a file must not store those placeholders.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
import requests
from PIL import ExifTags, Image

from tests.support.browser import loopback_only_browser, require_browser
from tests.support.corpus import corpus_path
from tests.support.live_server import cli, gunicorn_server

PHOTO = corpus_path("valid/hopper.jpg")
# A photo whose EXIF says when it was taken (DateTimeOriginal, no offset).
DATED_PHOTO = corpus_path("valid/flower.jpg")
TITLE = "Uploaded from Swagger UI"


@pytest.fixture
def live(tmp_path):
    """A gunicorn on a migrated SQLite database, and an editor key of its tenant."""
    require_browser()  # skip before starting anything
    env = {"IMAGE_REPO_DATA_DIR": str(tmp_path / "data")}
    cli(env, "db", "upgrade")
    cli(env, "tenants", "create", "acme")
    key = json.loads(cli(env, "keys", "create", "--tenant", "acme", "--group", "editor", "--json"))[
        "api_key"
    ]
    with gunicorn_server(env, workers=2, log_path=tmp_path / "gunicorn.log") as base:
        yield base, key


def _open_operation(page, expect, operation_id: str):
    """Expand an operation and switch it to Try it out (unless the docs start there)."""
    op = page.locator(f"[id$='-{operation_id}'].opblock")
    op.locator(".opblock-summary-control").click()
    expect(op.locator(".try-out__btn").first).to_be_visible()
    try_it_out = op.get_by_role("button", name="Try it out")
    if try_it_out.count():
        try_it_out.click()
    expect(op.get_by_role("button", name="Execute")).to_be_visible()
    return op


def _execute(op, expect, status: str) -> dict:
    """Click Execute; return the JSON body the page shows once it shows ``status``."""
    op.get_by_role("button", name="Execute").click()
    live = op.locator(".live-responses-table")
    shown = live.locator("tbody tr.response .response-col_status")
    expect(shown).to_have_text(re.compile(r"\d{3}"))
    body = live.locator(".highlight-code pre").first.inner_text()
    assert shown.inner_text().strip() == status, f"Swagger UI got {shown.inner_text()}: {body}"
    return json.loads(body)


def _authorize(page, expect, key: str) -> None:
    """Authorize with the API-key scheme (X-API-Key)."""
    page.locator("button.authorize").first.click()
    scheme = page.locator(".auth-container").filter(has_text="ApiKeyHeader")
    scheme.locator("input[type=text]").fill(key)
    scheme.get_by_role("button", name="Apply credentials").click()
    expect(scheme.get_by_role("button", name="Remove authorization")).to_be_visible()
    page.locator(".modal-ux .close-modal").click()
    expect(page.locator(".modal-ux")).to_have_count(0)


def _check_page(browser) -> None:
    assert browser.blocked == [], f"the docs tried to reach beyond loopback: {browser.blocked}"
    assert browser.page_errors == [], f"JavaScript errors on the docs page: {browser.page_errors}"


def _exif_taken_at(path) -> datetime:
    """DateTimeOriginal as the file says it (a camera's local time, no offset)."""
    with Image.open(path) as picture:
        exif = picture.getexif().get_ifd(ExifTags.IFD.Exif)
    assert ExifTags.Base.OffsetTimeOriginal not in exif, "the photo should carry no offset"
    return datetime.strptime(exif[ExifTags.Base.DateTimeOriginal], "%Y:%m:%d %H:%M:%S")


def test_authorize_upload_and_list_from_swagger_ui(live, tmp_path):
    base, key = live
    sync_api = require_browser()
    expect = sync_api.expect
    screenshot = tmp_path / "swagger-ui.png"

    with loopback_only_browser(tmp_path / "chromium-profile") as browser:
        page = browser.page
        try:
            page.goto(f"{base}/docs")
            _authorize(page, expect, key)

            # POST /images: a corpus file in the `image` input, a title.
            upload = _open_operation(page, expect, "uploadImage")
            upload.locator("tr[data-property-name=image] input[type=file]").set_input_files(PHOTO)
            upload.locator("tr[data-property-name=title] input[type=text]").fill(TITLE)
            created = _execute(upload, expect, "201")
            assert created["title"] == TITLE
            assert created["filename"] == PHOTO.name
            assert created["bytes"] == PHOTO.stat().st_size

            # GET /images lists it.
            listing = _open_operation(page, expect, "listImages")
            listed = _execute(listing, expect, "200")
            assert created["id"] in [item["id"] for item in listed["items"]]
        finally:
            page.screenshot(path=screenshot, full_page=True)
            print(f"Swagger UI screenshot: {screenshot}")

        _check_page(browser)


def test_try_it_out_sends_only_what_the_person_filled_in(live, tmp_path):
    """Upload with only a file, then PATCH with the body Swagger UI offers."""
    base, key = live
    sync_api = require_browser()
    expect = sync_api.expect
    screenshot = tmp_path / "swagger-ui.png"
    api = requests.Session()
    api.headers["X-API-Key"] = key

    with loopback_only_browser(tmp_path / "chromium-profile") as browser:
        page = browser.page
        try:
            page.goto(f"{base}/docs")
            _authorize(page, expect, key)

            # POST /images with a file chosen and every other field as the form starts.
            upload = _open_operation(page, expect, "uploadImage")
            upload.locator("tr[data-property-name=image] input[type=file]").set_input_files(
                DATED_PHOTO
            )
            image_id = _execute(upload, expect, "201")["id"]

            stored = api.get(f"{base}/images/{image_id}", timeout=30)
            assert stored.status_code == 200, stored.text
            image = stored.json()
            assert (image["title"], image["description"], image["tags"]) == (None, None, [])
            # The capture time is the photo's own (no offset in EXIF: read as UTC).
            assert image["taken_at"] is not None, image
            taken_at = datetime.fromisoformat(image["taken_at"])
            assert taken_at.replace(tzinfo=None) == _exif_taken_at(DATED_PHOTO), image
            assert image["taken_at_offset_known"] is False

            # PATCH /images/{id} with the body the editor starts with: it changes
            # what its example says and nothing else.
            update = _open_operation(page, expect, "updateImage")
            update.locator("tr[data-param-name=image_id] input").fill(image_id)
            update.locator("tr[data-param-name=If-Match] input").fill(stored.headers["ETag"])
            offered = json.loads(update.locator("textarea.body-param__text").input_value())
            updated = _execute(update, expect, "200")
            assert {name: updated[name] for name in offered} == offered
            unchanged = {**image, **offered}
            changed = {k for k in unchanged if k != "updated_at" and updated[k] != unchanged[k]}
            assert not changed, (
                f"the PATCH body Swagger UI offers {offered} also changed {sorted(changed)}"
            )
        finally:
            page.screenshot(path=screenshot, full_page=True)
            print(f"Swagger UI screenshot: {screenshot}")

        _check_page(browser)
