"""Running queued jobs in the test's own process, as a worker thread would."""

from __future__ import annotations

import datetime as dt

from image_repo.http.context import services_of


def run_queued(app, limit: int = 1000) -> list[str | None]:
    """Run every job waiting in the app's queue, in order; their outcomes ("done", ...).

    A job that raised (to be retried) gives None. Jobs a run queues are run
    too; retries scheduled for later are not (see run_scheduled).
    """
    huey = services_of(app).queue
    outcomes = []
    for _ in range(limit):
        task = huey.dequeue()
        if task is None:
            return outcomes
        outcomes.append(huey.execute(task))
    raise AssertionError(f"more than {limit} jobs: a job that queues itself?")


def run_scheduled(app) -> list[str | None]:
    """Run the retries scheduled for later as if their time had come, then the queue."""
    huey = services_of(app).queue
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=1)
    outcomes = [huey.execute(task, later) for task in huey.read_schedule(later)]
    return outcomes + run_queued(app)


def queued_count(app) -> int:
    return services_of(app).queue.pending_count()


def queued_analyses(app) -> list[tuple]:
    """The (image_id, kind) of every ``analyse`` message waiting in the queue."""
    return [task.args for task in services_of(app).queue.pending() if task.name == "analyse"]
