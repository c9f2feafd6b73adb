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


@dataclass
class WatchedPage:
    """A page in a context of its own, with everything it asked for and complained about."""

    context: object
    page: object
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)


# Reports Content-Security-Policy violations to the test (an init script runs
# through the DevTools protocol: the page's policy does not apply to it).
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
});
"""


class LoopbackChromium:
    """One headless Chromium; every page it opens lives in a fresh context (no shared storage)."""

    def __init__(self, browser) -> None:
        self.browser = browser
        self.pages: list[WatchedPage] = []

    def new_page(self, *, intercept: bool = True, **context_options) -> WatchedPage:
        """A page in a new context. ``intercept=False`` only records requests
        (off-loopback ones in ``blocked``, though not stopped): Chromium turns its
        HTTP cache off while requests are intercepted, so benchmarks of a warm
        cache cannot intercept."""
        context = self.browser.new_context(service_workers="block", **context_options)
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(_CSP_LISTENER)
        watched = WatchedPage(context, context.new_page())

        def guard(route):
            watched.requests.append(route.request.url)
            if is_loopback(route.request.url):
                route.continue_()
            else:
                watched.blocked.append(route.request.url)
                route.abort("blockedbyclient")

        def on_console(message):
            if message.type == "error":
                text = message.text
                target = watched.csp_violations if text.startswith("CSP violation") else None
                if target is None and "Content Security Policy" in text:
                    target = watched.csp_violations
                (target if target is not None else watched.console_errors).append(text)

        def refuse_web_socket(ws):
            watched.blocked.append(ws.url)  # the gallery opens none
            ws.close()

        def record(request):
            watched.requests.append(request.url)
            if not is_loopback(request.url):
                watched.blocked.append(request.url)

        if intercept:
            context.route("**/*", guard)
            context.route_web_socket(lambda _url: True, refuse_web_socket)
        else:
            context.on("request", record)
        watched.page.on("console", on_console)
        watched.page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
        self.pages.append(watched)
        return watched


@contextmanager
def loopback_only_chromium() -> Iterator[LoopbackChromium]:
    """A Chromium whose pages may reach loopback only, each in a context of its own."""
    sync_api = require_browser()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        sync_api.expect.set_options(timeout=TIMEOUT_MS)
        try:
            yield LoopbackChromium(browser)
        finally:
            browser.close()
