"""What an app made by ``create_app`` carries, and how the HTTP layer reaches it.

``attach`` is the one place that puts the services on an app (Flask's
``app.extensions``, under ``image_repo``), with the HTTP layer's own state
beside them; everything else reads them through the functions here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import Flask, current_app

from image_repo.services import Locks, Services
from image_repo.storage import BlobStore

if TYPE_CHECKING:
    from image_repo.http.front import RenditionFront

SERVICES = "image_repo"
HTTP_STATE = "image_repo.http"


@dataclass(eq=False)
class HttpState:
    """Per-app state of the HTTP layer (never shared between two apps)."""

    rendition_front: RenditionFront | None = None
    # (endpoint, method) -> operationId, filled as requests come
    operation_names: dict[tuple[str, str], str] = field(default_factory=dict)


def attach(app: Flask, services: Services) -> None:
    app.extensions[SERVICES] = services
    app.extensions[HTTP_STATE] = HttpState()


def services_of(app: Flask) -> Services:
    return app.extensions[SERVICES]


def http_state(app: Flask) -> HttpState:
    return app.extensions[HTTP_STATE]


def current_services() -> Services:
    """The services of the app handling the current request (or command)."""
    return current_app.extensions[SERVICES]


def blob_store() -> BlobStore:
    return current_services().blob_store


def locks() -> Locks:
    return current_services().locks
