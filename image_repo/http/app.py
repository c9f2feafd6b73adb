"""create_app(config): the one place that wires the application."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from inspect import iscoroutinefunction
from typing import Any

from flask import Flask
from flask.sessions import SessionInterface
from flask_cors import CORS

from image_repo.cli import register_commands
from image_repo.cli.transfer import register_transfer_commands
from image_repo.config import load_config
from image_repo.http.access import init_access
from image_repo.http.api import Api
from image_repo.http.auth import authorize, init_auth
from image_repo.http.context import attach
from image_repo.http.converters import register_converters
from image_repo.http.docs import docs_assets_bp
from image_repo.http.errors import register_error_handlers
from image_repo.http.front import install_rendition_front
from image_repo.http.observability import init_observability
from image_repo.http.sessions import commit_view, init_database
from image_repo.services import build_services

# Headers a browser client needs to read from cross-origin responses.
CORS_EXPOSED_HEADERS = [
    "ETag",
    "Last-Modified",
    "Link",
    "X-Pagination",
    "X-Next-Cursor",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Content-Disposition",
    "X-Request-ID",
]


class NoSessions(SessionInterface):
    def open_session(self, app, request):
        return self.make_null_session(app)

    def save_session(self, app, session, response) -> None:
        return None


class ImageRepoFlask(Flask):
    """Flask, with the sync check of hooks and views remembered per function.

    Flask asks ``inspect.iscoroutinefunction`` of every hook and view on
    every request; on the cheapest endpoints that was several percent of
    the time. The answer never changes for a function. Keyed on the plain
    function (views arrive as methods bound to a new instance per request),
    so the memo holds one entry per function, however many requests come.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._is_async: dict = {}

    def ensure_sync(self, func):
        target = getattr(func, "__func__", func)
        try:
            is_async = self._is_async[target]
        except KeyError:
            is_async = self._is_async[target] = iscoroutinefunction(func)
        except TypeError:  # unhashable: ask Flask every time
            return super().ensure_sync(func)
        return super().ensure_sync(func) if is_async else func

    def dispatch_request(self):
        """The view's answer, once its unit of work is committed (``http.sessions``)."""
        answer = super().dispatch_request()
        commit_view()
        return answer


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build an application; ``config`` overrides settings read from the environment.

    Two apps built here share no state: everything mutable hangs off the app.
    """
    app = ImageRepoFlask("image_repo", static_folder=None)
    app.config.update(load_config(config))
    app.json.sort_keys = False  # keep the schemas' field order
    app.session_interface = NoSessions()  # an API of keys: no cookies, no session work
    attach(app, build_services(app.config))
    logging.getLogger("image_repo").setLevel(logging.INFO)

    api = Api(app)
    register_converters(app, api)
    register_error_handlers(app, api)
    init_database(app)
    # Observability first: its hooks time and log requests the access check refuses.
    init_observability(app)
    # Access (authentication) must run before the rate limiter: budgets are per key.
    init_access(app, authorize)
    init_auth(app)
    app.register_blueprint(docs_assets_bp)
    _register_pages(app)
    _register_endpoints(api)
    register_commands(app)
    register_transfer_commands(app)

    @app.after_request
    def _no_sniffing(response):
        # Browsers must take our Content-Type as given (uploads are user content).
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    if app.config["CORS_ORIGINS"]:
        CORS(
            app,
            origins=app.config["CORS_ORIGINS"],
            expose_headers=CORS_EXPOSED_HEADERS,
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "If-Match",
                "If-None-Match",
            ],
        )
    # Last: it wraps the finished app and hands it whatever it does not answer.
    install_rendition_front(app)
    return app


def _register_endpoints(api: Api) -> None:
    # Importing resources registers their routes on the blueprints.
    from image_repo.http.archives import resources as _archives  # noqa: F401
    from image_repo.http.archives.blueprint import archives_bp
    from image_repo.http.collections import resources as _collections  # noqa: F401
    from image_repo.http.collections.blueprint import collections_bp
    from image_repo.http.faces import resources as _faces  # noqa: F401
    from image_repo.http.faces.blueprint import faces_bp
    from image_repo.http.images import resources as _images  # noqa: F401
    from image_repo.http.images.blueprint import images_bp
    from image_repo.http.keys import resources as _keys  # noqa: F401
    from image_repo.http.keys.blueprint import keys_bp
    from image_repo.http.landing import resources as _landing  # noqa: F401
    from image_repo.http.landing.blueprint import landing_bp
    from image_repo.http.operations import resources as _operations  # noqa: F401
    from image_repo.http.operations.blueprint import operations_bp
    from image_repo.http.renditions import resources as _renditions  # noqa: F401
    from image_repo.http.renditions.blueprint import renditions_bp
    from image_repo.http.shares import resources as _shares  # noqa: F401
    from image_repo.http.shares.blueprint import shares_bp
    from image_repo.http.tenants import resources as _tenants  # noqa: F401
    from image_repo.http.tenants.blueprint import tenants_bp
    from image_repo.http.trash import resources as _trash  # noqa: F401
    from image_repo.http.trash.blueprint import trash_bp

    blueprints = (
        landing_bp,
        images_bp,
        renditions_bp,
        collections_bp,
        trash_bp,
        shares_bp,
        keys_bp,
        tenants_bp,
        operations_bp,
        faces_bp,
        archives_bp,
    )
    for blueprint in blueprints:
        api.register_blueprint(blueprint)


def _register_pages(app: Flask) -> None:
    """Plain Flask blueprints of HTML pages (not operations of the API spec)."""
    from image_repo.http.shared import resources as _shared  # noqa: F401
    from image_repo.http.shared.blueprint import shared_bp

    app.register_blueprint(shared_bp)
