"""Consumers: the threads ``image-repo serve`` runs, and the ``image-repo worker`` process.

Both sweep once when they start (work lost while nothing ran is queued again
at once), then every minute (Huey's periodic task).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from huey.consumer import Consumer

from image_repo.jobs.queue import sweep

if TYPE_CHECKING:
    from image_repo.services import Services

log = logging.getLogger(__name__)


class EmbeddedConsumer(Consumer):
    """Huey's consumer as threads beside a server that owns the signals.

    ``start`` starts the scheduler and worker threads (daemons: they end
    with the server) without taking SIGINT and SIGTERM from it.
    """

    def _set_signal_handlers(self) -> None:
        return None


def _sweep_now(services: Services) -> None:
    try:
        sweep(services)
    except Exception as exc:  # a database that is not there yet: the minute's sweep retries
        log.warning("could not look for lost jobs: %s", exc)


def start_embedded(services: Services, threads: int) -> EmbeddedConsumer | None:
    """Run ``threads`` worker threads in this process (None when 0)."""
    if threads <= 0:
        return None
    _sweep_now(services)
    consumer = EmbeddedConsumer(services.queue, workers=threads, worker_type="thread")
    consumer.start()
    return consumer


def run_worker(services: Services, threads: int) -> None:
    """Consume until SIGINT (finish the jobs in hand) or SIGTERM (stop now)."""
    _sweep_now(services)
    consumer = services.queue.create_consumer(workers=threads, worker_type="thread")
    consumer.run()
