"""The docs pages work with no internet: every asset comes from the service."""

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest


class AssetCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.assets: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.assets.append(("script", attrs["src"]))
        if tag == "link" and attrs.get("href"):
            self.assets.append(("stylesheet", attrs["href"]))


EXPECTED_TYPES = {
    "script": ("text/javascript", "application/javascript"),
    "stylesheet": ("text/css",),
}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_every_asset_is_served_by_the_app_itself(client, page):
    response = client.get(page)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    parser = AssetCollector()
    parser.feed(html)
    assert parser.assets, "the page loads no assets?"
    for kind, url in parser.assets:
        absolute = urljoin("http://localhost" + page, url)
        parts = urlsplit(absolute)
        assert parts.netloc == "localhost", f"{page} loads {url} from another host"
        asset = client.get(parts.path)
        assert asset.status_code == 200, url
        assert asset.mimetype in EXPECTED_TYPES[kind], (url, asset.mimetype)
        assert len(asset.data) > 1000


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_no_page_references_another_host(client, page):
    html = client.get(page).get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    assert 'src="//' not in html and 'href="//' not in html


def test_swagger_ui_is_version_5():
    # Swagger UI 4.x cannot render OpenAPI 3.1 specs.
    from image_repo.http.docs import SWAGGER_UI_DIST

    assert (SWAGGER_UI_DIST / "VERSION").read_text().strip().lstrip("v").startswith("5.")
