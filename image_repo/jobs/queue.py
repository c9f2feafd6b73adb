"""The queue: a Huey instance per process, made from the config, and what goes on it.

Huey (https://huey.readthedocs.io) keeps its messages in a SQLite file in the
data folder on the embedded default (``queue.db``: no server) and in Redis
when ``IMAGE_REPO_QUEUE_URL`` or ``IMAGE_REPO_REDIS_URL`` names one; workers on
any machine then share it. One task, ``analyse(image_id, kind)``, runs every
analysis (``jobs.runner``); Huey retries it with exponential backoff.

Huey takes a message off the queue when a worker starts it: a worker killed
mid-job takes the message with it. So the ``image_analyses`` row is the
truth and the queue only a way to wake workers: ``sweep`` (every minute in
each consumer, and when one starts) queues again what lost its worker or its
message (see ``domain.analyses.lost``). A job run twice does nothing the
second time (its row is done, or leased by the other).

Messages are queued after the transaction that asked for them commits
(``install``: a SQLAlchemy ``after_commit`` listener on the session factory),
so a job never looks for rows that are not there yet, an upload answers
before any job can run, and a rolled-back request queues nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from huey import Huey, RedisHuey, SqliteHuey, crontab
from sqlalchemy import event

from image_repo.domain import analyses
from image_repo.jobs import kinds as _kinds  # noqa: F401  (registers the analysis kinds)
from image_repo.jobs import runner

if TYPE_CHECKING:
    from image_repo.services import Services

log = logging.getLogger(__name__)

FILE_NAME = "queue.db"
TASK_NAME = "analyse"
# Retry delays: RETRY_DELAY, then twice as long each time.
RETRY_BACKOFF = 2.0


def queue_url(config) -> str:
    """Where the queue lives: the setting, else Redis when set, else the data folder."""
    return (
        config.get("QUEUE_URL")
        or config.get("REDIS_URL")
        or f"sqlite:///{config['DATA_DIR'] / FILE_NAME}"
    )


def is_embedded(config) -> bool:
    return queue_url(config).startswith("sqlite:")


def make_queue(services: Services) -> Huey:
    """The process's Huey, with the ``analyse`` task and the periodic sweep on it."""
    config = services.config
    url = queue_url(config)
    name = config["QUEUE_NAME"]
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        config["DATA_DIR"].mkdir(parents=True, exist_ok=True)
        # Results are not kept: the image_analyses rows say how each job went.
        huey: Huey = SqliteHuey(name, filename=path, results=False, timeout=30)
    elif url.startswith(("redis://", "rediss://", "unix://")):
        huey = RedisHuey(name, url=url, results=False)
    else:
        raise ValueError(f"IMAGE_REPO_QUEUE_URL: a sqlite:/// path or a redis:// URL, not {url!r}")

    @huey.task(
        name=TASK_NAME,
        retries=config["JOB_RETRIES"],
        retry_delay=config["JOB_RETRY_DELAY"],
        retry_backoff=RETRY_BACKOFF,
        context=True,
    )
    def analyse(image_id: str, kind: str, task=None) -> str:
        final = task is None or task.retries == 0
        return runner.run(services, image_id, kind, final=final)

    @huey.periodic_task(crontab(minute="*"), name="sweep")
    def periodic_sweep() -> int:
        return sweep(services)

    huey.analyse = analyse  # type: ignore[attr-defined]
    return huey


def enqueue(services: Services, work: list[tuple[str, str]]) -> int:
    """Queue (image_id, kind) pairs; a queue that is down loses nothing (see sweep)."""
    if not work:
        return 0
    try:
        task = services.queue.analyse
        for image_id, kind in work:
            task(image_id, kind)
    except Exception as exc:  # the queue's backend: Redis or SQLite, any error
        log.warning("could not queue %d analyses (%s); `sweep` queues them later", len(work), exc)
        return 0
    return len(work)


def install(services: Services) -> None:
    """Queue what a transaction asked for once it commits; forget it if it rolls back."""

    @event.listens_for(services.sessions, "after_commit")
    def _committed(session) -> None:
        enqueue(services, analyses.take_queued(session))

    @event.listens_for(services.sessions, "after_soft_rollback")
    def _rolled_back(session, previous_transaction) -> None:
        if previous_transaction.parent is None:  # the outermost transaction only
            analyses.drop_queued(session)


def pending_count(services: Services) -> int | None:
    try:
        return services.queue.pending_count()
    except Exception as exc:
        log.warning("cannot read the queue's length: %s", exc)
        return None


def sweep(services: Services) -> int:
    """Queue again the analyses that lost their job (see domain.analyses.lost)."""
    config = services.config
    idle = pending_count(services) == 0
    unheld = timedelta(seconds=config["JOB_LEASE"]) if idle else None
    session = services.sessions()
    try:
        found = analyses.lost(session, unheld_older_than=unheld)
        session.commit()  # queued by the after-commit hook
    finally:
        session.close()
    if found:
        log.info("queued %d analyses again (their job was lost)", len(found))
    return len(found)


def observe(services: Services, metrics: Any) -> None:
    """Set the queue-depth gauge (when /metrics is read)."""
    depth = pending_count(services)
    if depth is not None:
        metrics.queue_depth.set(depth)
