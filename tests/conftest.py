"""Fixtures in the flaskr style (``app``, ``client``, ``runner``), on a real database.

Every test that uses ``app`` runs on SQLite, and on PostgreSQL too when
``IMAGE_REPO_TEST_DATABASE_URL`` names a PostgreSQL database (each test gets
a schema of its own there). ``IMAGE_REPO_TEST_REDIS_URL`` likewise enables
the tests that need Redis.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from image_repo import create_app
from image_repo.db import migrate
from image_repo.http.context import services_of

# Hypothesis (under schemathesis) keeps its files out of the checkout.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "image-repo-hypothesis")
)

TEST_DATABASE_URL = os.environ.get("IMAGE_REPO_TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("IMAGE_REPO_TEST_REDIS_URL")

needs_postgres = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="IMAGE_REPO_TEST_DATABASE_URL is not set"
)
needs_redis = pytest.mark.skipif(not TEST_REDIS_URL, reason="IMAGE_REPO_TEST_REDIS_URL is not set")


def postgres_schema_url(schema: str) -> str:
    url = make_url(TEST_DATABASE_URL)
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@contextmanager
def postgres_schema(prefix: str = "t"):
    """The URL of a fresh PostgreSQL schema, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(TEST_DATABASE_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield postgres_schema_url(schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def database_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def app_config(tmp_path, database_url) -> dict:
    """Settings for a test app: its own data folder and database, nothing from the host."""
    return {
        "TESTING": True,
        "ENV": "development",
        "DATA_DIR": tmp_path / "data",
        "DATABASE_URL": database_url,
        "REDIS_URL": None,
    }


def make_app(config: dict):
    """An app with its database migrated, as `image-repo db upgrade` leaves it."""
    app = create_app(config)
    migrate.upgrade(services_of(app).engine)
    return app


@pytest.fixture
def app(app_config):
    app = make_app(app_config)
    yield app
    services_of(app).engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@dataclass
class TenantHandle:
    """A tenant made for a test, with a way to mint keys of any group."""

    app: object
    name: str
    tenant_id: str
    admin_key: str
    admin_key_id: str

    def key(self, group: str, **options) -> str:
        return self.new_key(group, **options)["api_key"]

    def new_key(self, group: str, *, expires: str | None = None) -> dict:
        args = ["keys", "create", "--tenant", self.name, "--group", group, "--json"]
        if expires:
            args += ["--expires", expires]
        result = self.app.test_cli_runner().invoke(args=args)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    def headers(self, group: str = "admin") -> dict:
        key = self.admin_key if group == "admin" else self.key(group)
        return {"Authorization": f"Bearer {key}"}


def create_tenant(app, name: str | None = None) -> TenantHandle:
    name = name or f"tenant-{uuid.uuid4().hex[:8]}"
    result = app.test_cli_runner().invoke(args=["tenants", "create", name, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    return TenantHandle(app, name, data["tenant_id"], data["api_key"], data["key_id"])


@pytest.fixture
def tenant(app) -> TenantHandle:
    return create_tenant(app, "acme")


@pytest.fixture
def other_tenant(app) -> TenantHandle:
    return create_tenant(app, "globex")


@pytest.fixture(scope="module")
def s3_endpoint():
    """URL of a moto S3 server of the test module's own (each test makes its own bucket).

    Skips the test when boto3 or moto is missing.
    """
    from tests.support.s3_server import moto_server, s3_unavailable

    missing = s3_unavailable()
    if missing:
        pytest.skip(missing)
    with moto_server() as url:
        yield url
