"""The services everything else is built on, made in one place, without Flask.

``build_services(config)`` turns a loaded configuration (``config.load_config``)
into a ``Services``: the database engine and its session factory, the blob
store, the named locks, the rate-limit budgets and their counters, the
metrics, the group permissions, and the job queue when there is one.
``create_app`` builds one and attaches it to the app (``http.context``); the
CLI's commands and the rendition front take it from there; the gunicorn
config builds one in the master to migrate.

Building connects to nothing: the engine connects on first use, and what
holds a connection of its own (the blob store's S3 client, the Redis lock
client) is made on first use in each process, so nothing made before
gunicorn forks its workers is shared with them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from image_repo.config import ConfigError
from image_repo.db.engine import make_engine, make_session_factory
from image_repo.domain.locks import FileLocks, RedisLocks
from image_repo.domain.permissions import group_map
from image_repo.jobs.queue import install as install_queue_hooks
from image_repo.jobs.queue import make_queue
from image_repo.services.metrics import Metrics
from image_repo.services.ratelimits import Budgets
from image_repo.storage import BlobStore, LocalBlobStore

if TYPE_CHECKING:
    from huey import Huey

Locks = FileLocks | RedisLocks


@dataclass(eq=False)
class Services:
    config: Mapping[str, Any]
    engine: Engine
    sessions: sessionmaker[Session]
    group_permissions: dict[str, frozenset[str]]
    budgets: Budgets
    # Share links' own budgets: READ for what they serve, WRITE for password attempts.
    share_budgets: Budgets | None = None
    _per_process: dict[str, tuple[int, Any]] = field(default_factory=dict, repr=False)
    _metrics: Metrics | None = field(default=None, repr=False)

    @property
    def blob_store(self) -> BlobStore:
        """The data folder, or S3 when a bucket is configured (one per process)."""
        return self._in_this_process("blob_store", make_blob_store)

    @property
    def locks(self) -> Locks:
        """Redis locks when Redis is configured (shared by instances), else file locks."""
        return self._in_this_process("locks", make_locks)

    @property
    def queue(self) -> Huey:
        """The job queue (jobs.queue), made on first use in each process."""
        return self._in_this_process("queue", lambda _config: make_queue(self))

    @property
    def metrics(self) -> Metrics:
        # Made on first use: a gunicorn master that only migrates writes no metric files.
        if self._metrics is None:
            self._metrics = Metrics.for_process()
        return self._metrics

    def close(self) -> None:
        """Give back the database connections (the services stay usable)."""
        self.engine.dispose()

    def _in_this_process(self, name: str, make):
        pid = os.getpid()
        made = self._per_process.get(name)
        if made is None or made[0] != pid:
            made = self._per_process[name] = (pid, make(self.config))
        return made[1]


def build_services(config: Mapping[str, Any]) -> Services:
    """The services for ``config`` (as ``load_config`` returns it); raises ConfigError."""
    try:
        groups = group_map(config.get("GROUP_PERMISSIONS"))
    except ValueError as exc:
        raise ConfigError(f"IMAGE_REPO_GROUP_PERMISSIONS is invalid: {exc}") from exc
    try:
        budgets = Budgets.from_config(config)
    except ValueError as exc:
        raise ConfigError(
            f"IMAGE_REPO_RATELIMIT_READ or IMAGE_REPO_RATELIMIT_WRITE is invalid: {exc}"
        ) from exc
    try:
        share_budgets = Budgets(
            budgets.storage,
            read=config["SHARE_RATELIMIT"],
            write=config["SHARE_PASSWORD_RATELIMIT"],
            enabled=budgets.enabled,
        )
    except ValueError as exc:
        raise ConfigError(
            f"IMAGE_REPO_SHARE_RATELIMIT or IMAGE_REPO_SHARE_PASSWORD_RATELIMIT is invalid: {exc}"
        ) from exc
    engine = make_engine(config["DATABASE_URL"])
    services = Services(
        config=config,
        engine=engine,
        sessions=make_session_factory(engine),
        group_permissions=groups,
        budgets=budgets,
        share_budgets=share_budgets,
    )
    install_queue_hooks(services)
    return services


def make_blob_store(config: Mapping[str, Any]) -> BlobStore:
    if config.get("S3_BUCKET"):
        from image_repo.storage import S3BlobStore

        return S3BlobStore(
            config["S3_BUCKET"],
            prefix=config.get("S3_PREFIX") or "",
            endpoint_url=config.get("S3_ENDPOINT_URL"),
            region=config.get("S3_REGION"),
            access_key_id=config.get("S3_ACCESS_KEY_ID"),
            secret_access_key=config.get("S3_SECRET_ACCESS_KEY"),
            addressing_style=config.get("S3_ADDRESSING_STYLE"),
        )
    return LocalBlobStore(config["DATA_DIR"] / "blobs")


def make_locks(config: Mapping[str, Any]) -> Locks:
    url = config.get("REDIS_URL")
    return RedisLocks(url) if url else FileLocks(config["DATA_DIR"] / "locks")
