"""Fixtures in the flaskr style: ``app``, ``client``, ``runner``."""

from __future__ import annotations

import pytest

from image_repo import create_app


@pytest.fixture
def app_config(tmp_path) -> dict:
    """Settings for a test app: its own data folder, nothing from the host."""
    return {"TESTING": True, "DATA_DIR": tmp_path / "data", "ENV": "development"}


@pytest.fixture
def app(app_config):
    return create_app(app_config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
