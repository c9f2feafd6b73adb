"""Headless Debian Chromium driven by Playwright, allowed to reach loopback only.

Playwright's own browser download does not work on the CI machines; Debian's
``chromium`` package does, launched with ``executable_path``. Tests call
``require_browser()`` first: it skips them, naming what is missing, when
either Playwright or ``/usr/bin/chromium`` is absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Long enough for a slow CI machine, short enough to fail well within a minute.
TIMEOUT_MS = 20_000


def require_browser():
    """Return ``playwright.sync_api``, or skip the test saying what is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install -y chromium)")
    return pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )


def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return True  # data:, blob:, about: never reach the network
    return parts.hostname in LOOPBACK_HOSTS


@dataclass
class Browser:
    """A page in a fresh profile, and what it tried to reach beyond loopback."""

    context: object
    page: object
    blocked: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


@contextmanager
def loopback_only_browser(profile_dir: Path) -> Iterator[Browser]:
    """A Chromium page whose every request off loopback is aborted and recorded."""
    sync_api = require_browser()
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            # Requests a service worker made would bypass the routes below.
            service_workers="block",
        )
        context.set_default_timeout(TIMEOUT_MS)
        sync_api.expect.set_options(timeout=TIMEOUT_MS)
        browser = Browser(context, context.pages[0] if context.pages else context.new_page())

        def guard(route):
            if is_loopback(route.request.url):
                route.continue_()
            else:
                browser.blocked.append(route.request.url)
                route.abort("blockedbyclient")

        def guard_web_socket(ws):
            if is_loopback(ws.url):
                ws.connect_to_server()
            else:
                browser.blocked.append(ws.url)
                ws.close()

        context.route("**/*", guard)
        context.route_web_socket(lambda _url: True, guard_web_socket)
        browser.page.on("pageerror", lambda error: browser.page_errors.append(str(error)))
        try:
            yield browser
        finally:
            context.close()
