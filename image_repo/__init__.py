"""Image Repo: a self-hostable image repository served as a REST microservice."""

from .app_factory import create_app

__all__ = ["create_app"]
