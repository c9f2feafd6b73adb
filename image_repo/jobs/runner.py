"""One job, start to end: claim the analysis, run it, record how it went.

The job is the unit of work, as a request is: it commits. First the claim
(so other workers see the lease), then the analysis' own writes together
with its ``done``. A failure gives the row back pending with its error and
raises, so that Huey retries later; the last attempt, or an error that no
retry can mend (a ``DomainError``: an image refused by a decode limit),
marks it failed. A job for an image deleted or purged meanwhile ends quietly.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from image_repo.db.models import Image
from image_repo.domain import analyses
from image_repo.domain.errors import DomainError

if TYPE_CHECKING:
    from image_repo.services import Services

log = logging.getLogger(__name__)

DONE, FAILED, RETRY = "done", "failed", "retry"


def run(services: Services, image_id: str, kind: str, *, final: bool = True) -> str:
    """Run analysis ``kind`` of ``image_id``; return the outcome (``done``, ``duplicate``, ...).

    Raises the analysis' error when it should be retried (not ``final``).
    """
    started = time.perf_counter()
    outcome = RETRY
    try:
        outcome = _run(services, image_id, kind, final)
    finally:
        metrics = services.metrics
        metrics.jobs.labels(kind, outcome).inc()
        metrics.job_seconds.labels(kind).observe(time.perf_counter() - started)
    return outcome


def _run(services: Services, image_id: str, kind: str, final: bool) -> str:
    lease = timedelta(seconds=services.config["JOB_LEASE"])
    session = services.sessions()
    try:
        claimed = analyses.claim(session, image_id, kind, lease=lease)
        session.commit()
        if isinstance(claimed, str):
            log.debug("analysis %s of %s: %s", kind, image_id, claimed)
            return claimed
        try:
            claimed.analysis.run(services, session, claimed.image)
            analyses.finish(session, image_id, kind)
            session.commit()
            return DONE
        except Exception as exc:
            session.rollback()
            if not _still_there(session, image_id):
                return analyses.GONE  # purged while it ran
            error = str(exc) if isinstance(exc, DomainError) else f"{type(exc).__name__}: {exc}"
            if final or isinstance(exc, DomainError):
                log.warning("analysis %s of %s failed: %s", kind, image_id, error)
                analyses.fail(session, image_id, kind, error)
                session.commit()
                return FAILED
            log.info("analysis %s of %s failed, will retry: %s", kind, image_id, error)
            analyses.release(session, image_id, kind, error)
            session.commit()
            raise
    finally:
        session.close()


def _still_there(session, image_id: str) -> bool:
    return session.scalar(select(Image.trashed_at.is_(None)).where(Image.id == image_id)) is True
