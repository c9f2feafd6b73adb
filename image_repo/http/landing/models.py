"""The landing page's content, free of any web framework."""

from __future__ import annotations

SERVICE_INFO = (
    "Image Repo: a self-hostable image repository. Upload images, list and "
    "search them, fetch originals and renditions. API docs at /docs."
)


class LandingPageModel:
    """A greeting for ``name`` and a sentence on what this service is."""

    def __init__(self, name: str = "guest", info: str = SERVICE_INFO) -> None:
        self.hello = name
        self.info = info
