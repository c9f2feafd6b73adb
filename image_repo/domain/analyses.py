"""Background analyses of images: the registry of kinds and the state of each.

An *analysis* is work on one image that need not delay the answer to its
upload: its preview, later its faces. Each kind is registered once
(``register``) with the function that does it, whether it is on for a
tenant (``enabled``: an operator setting, a tenant's switch) and whether it
applies to an image at all (``applies``: a preview only for large images).

Each image has one ``image_analyses`` row per kind it needs: ``pending``,
``done`` or ``failed``, with its attempts and last error. The row is the
truth, not the queue: ``request`` writes the rows and notes what to queue
once the session commits (``jobs.queue`` listens for the commit, so no job
can start before the rows it reads exist, and the upload answers before any
job runs); a worker ``claim``\\s a row with a lease before working, so that
a duplicate message does nothing twice, and marks it done in the same
transaction as the analysis' own writes. A job whose message was lost (a
worker killed mid-job, a queue down at commit time) is found again by
``lost``: a pending row whose lease ran out, or, when the queue is empty, one
that nobody holds.

No Flask here and no commits: the job runner (``jobs``) and the request or
command scope commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from image_repo.db.models import Image, ImageAnalysis, Tenant
from image_repo.db.types import utcnow

PENDING, DONE, FAILED = "pending", "done", "failed"
STATES = (PENDING, DONE, FAILED)
MAX_ERROR = 500
# Where request() notes, on the session, what to queue after its commit.
TO_QUEUE = "image_repo.analyses.to_queue"

# (services, session, image) -> None; raise to fail (the job is retried).
Run = Callable[[Any, Session, Image], None]


def _always(*_args) -> bool:
    return True


@dataclass(frozen=True)
class Analysis:
    kind: str
    run: Run
    # (services, tenant) -> whether this kind is on for the tenant.
    enabled: Callable[[Any, Tenant], bool] = _always
    # (services, image) -> whether the image needs it at all.
    applies: Callable[[Any, Image], bool] = _always


ANALYSES: dict[str, Analysis] = {}


def register(
    kind: str,
    run: Run,
    *,
    enabled: Callable[[Any, Tenant], bool] = _always,
    applies: Callable[[Any, Image], bool] = _always,
) -> Analysis:
    """Add (or replace) the analysis ``kind``; new uploads get it from now on."""
    if not kind or len(kind) > 32:
        raise ValueError(f"an analysis kind is 1 to 32 characters: {kind!r}")
    analysis = ANALYSES[kind] = Analysis(kind, run, enabled, applies)
    return analysis


def wanted(services: Any, tenant: Tenant, image: Image) -> list[str]:
    """The kinds ``image`` of ``tenant`` should have."""
    return [
        a.kind
        for a in ANALYSES.values()
        if a.enabled(services, tenant) and a.applies(services, image)
    ]


# --- asking for analyses ---------------------------------------------------------


def request(
    session: Session,
    image: Image,
    kinds: Iterable[str],
    *,
    done: Iterable[str] = (),
    again: bool = False,
) -> list[str]:
    """Mark ``kinds`` of ``image`` pending and queue them when ``session`` commits.

    Kinds in ``done`` are recorded as done at once (a preview made during
    the upload). A kind that already has a row keeps it, unless ``again``
    (then a done or failed one becomes pending, its attempts reset).
    Returns the kinds queued.
    """
    now = utcnow()
    existing = {a.kind: a for a in image.analyses}
    queued = []
    finished = set(done)
    for kind in dict.fromkeys([*kinds, *finished]):
        row = existing.get(kind)
        if row is None:
            state = DONE if kind in finished else PENDING
            row = ImageAnalysis(
                image_id=image.id,
                kind=kind,
                tenant_id=image.tenant_id,
                state=state,
                attempts=0,
                updated_at=now,
            )
            image.analyses.append(row)
        elif again or row.state == PENDING:
            if row.state != PENDING:
                row.state, row.attempts, row.error = PENDING, 0, None
            row.lease_until, row.updated_at = None, now
        else:
            continue
        if row.state == PENDING:
            queued.append(kind)
    session.flush()
    session.info.setdefault(TO_QUEUE, []).extend((image.id, kind) for kind in queued)
    return queued


def request_new(
    session: Session, services: Any, image: Image, *, done: Iterable[str] = ()
) -> list[str]:
    """What a new image needs, for its tenant; see request()."""
    tenant = session.get(Tenant, image.tenant_id)
    kinds = wanted(services, tenant, image) if tenant is not None else []
    return request(session, image, kinds, done=[k for k in done if k in kinds])


def take_queued(session: Session) -> list[tuple[str, str]]:
    """What request() noted on ``session`` to queue, emptied (called once it committed)."""
    return session.info.pop(TO_QUEUE, None) or []


def drop_queued(session: Session) -> None:
    """Forget what to queue: the transaction that wrote the rows was rolled back."""
    session.info.pop(TO_QUEUE, None)


# --- running one ---------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    image: Image
    analysis: Analysis
    attempt: int


# Why a job did nothing (besides "done"): metrics and logs use these words.
GONE, DUPLICATE, BUSY, TRASHED, UNKNOWN = "gone", "duplicate", "busy", "trashed", "unknown"


def claim(
    session: Session, image_id: str, kind: str, *, lease: timedelta, now: datetime | None = None
) -> Claim | str:
    """Take the pending analysis for ``lease``; else say why not (GONE, DUPLICATE, ...).

    One conditional UPDATE: of two workers holding the same message, one wins.
    """
    now = now or utcnow()
    analysis = ANALYSES.get(kind)
    if analysis is None:
        return UNKNOWN
    taken = session.execute(
        update(ImageAnalysis)
        .where(
            ImageAnalysis.image_id == image_id,
            ImageAnalysis.kind == kind,
            ImageAnalysis.state == PENDING,
            or_(ImageAnalysis.lease_until.is_(None), ImageAnalysis.lease_until < now),
        )
        .values(
            lease_until=now + lease,
            attempts=ImageAnalysis.attempts + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        row = session.get(ImageAnalysis, (image_id, kind))
        if row is None:
            return GONE  # the image was purged (its rows went with it)
        return BUSY if row.state == PENDING else DUPLICATE
    image = session.get(Image, image_id)
    if image is None:
        return GONE
    if image.trashed_at is not None:
        # Kept pending, unleased: restored, it is queued again (see lost()).
        release(session, image_id, kind)
        return TRASHED
    row = session.get(ImageAnalysis, (image_id, kind))
    session.refresh(row)
    return Claim(image, analysis, row.attempts)


def release(session: Session, image_id: str, kind: str, error: str | None = None) -> None:
    """Give a claimed analysis back, still pending (it will be retried)."""
    values: dict = {"lease_until": None, "updated_at": utcnow()}
    if error is not None:
        values["error"] = error[:MAX_ERROR]
    _set(session, image_id, kind, values)


def finish(session: Session, image_id: str, kind: str) -> None:
    _set(
        session,
        image_id,
        kind,
        {"state": DONE, "error": None, "lease_until": None, "updated_at": utcnow()},
    )


def fail(session: Session, image_id: str, kind: str, error: str) -> None:
    _set(
        session,
        image_id,
        kind,
        {"state": FAILED, "error": error[:MAX_ERROR], "lease_until": None, "updated_at": utcnow()},
    )


def _set(session: Session, image_id: str, kind: str, values: dict) -> None:
    session.execute(
        update(ImageAnalysis)
        .where(ImageAnalysis.image_id == image_id, ImageAnalysis.kind == kind)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


# --- finding lost work and work to do ------------------------------------------


def lost(
    session: Session,
    *,
    unheld_older_than: timedelta | None,
    now: datetime | None = None,
    limit: int = 1000,
) -> list[tuple[str, str]]:
    """Pending analyses whose job is gone, marked as queued again now.

    A lease that ran out means its worker died (kill -9, a machine lost). A
    row nobody holds and nobody touched for ``unheld_older_than`` lost its
    message (the queue was down when it was asked for); pass that only when
    the queue is empty, or every row still waiting in a long queue would be
    queued twice. Images in the trash wait until they are restored.
    """
    now = now or utcnow()
    expired = ImageAnalysis.lease_until < now
    condition = expired
    if unheld_older_than is not None:
        condition = or_(
            expired,
            and_(
                ImageAnalysis.lease_until.is_(None),
                ImageAnalysis.updated_at < now - unheld_older_than,
            ),
        )
    rows = session.execute(
        select(ImageAnalysis.image_id, ImageAnalysis.kind)
        .join(Image, Image.id == ImageAnalysis.image_id)
        .where(ImageAnalysis.state == PENDING, Image.trashed_at.is_(None), condition)
        .order_by(ImageAnalysis.updated_at)
        .limit(limit)
    ).all()
    found = [(image_id, kind) for image_id, kind in rows]
    for image_id, kind in found:
        _set(session, image_id, kind, {"lease_until": None, "updated_at": now})
    session.info.setdefault(TO_QUEUE, []).extend(found)
    return found


def library_ids(
    session: Session, *, after: str | None = None, limit: int | None = 500
) -> list[str]:
    """Ids of images in the library (not the trash), in id order, a page at a time."""
    query = select(Image.id).where(Image.trashed_at.is_(None)).order_by(Image.id).limit(limit)
    if after is not None:
        query = query.where(Image.id > after)
    return list(session.scalars(query))


def reanalyse(session: Session, services: Any, image: Image, *, everything: bool) -> list[str]:
    """Queue what ``image`` needs: every kind (``everything``), else the kinds it lacks
    or that failed. Returns the kinds queued."""
    tenant = session.get(Tenant, image.tenant_id)
    kinds = wanted(services, tenant, image) if tenant is not None else []
    if not everything:
        states = {a.kind: a.state for a in image.analyses}
        kinds = [k for k in kinds if states.get(k) in (None, FAILED)]
    return request(session, image, kinds, again=True)


def counts(session: Session) -> dict[tuple[str, str], int]:
    """(kind, state) -> rows: what the metrics show."""
    rows = session.execute(
        select(ImageAnalysis.kind, ImageAnalysis.state, func.count()).group_by(
            ImageAnalysis.kind, ImageAnalysis.state
        )
    )
    return {(kind, state): n for kind, state, n in rows}


def forget(session: Session, kind: str, tenant_id: str | None = None) -> int:
    """Remove every row of ``kind`` (of one tenant): when its data is deleted."""
    query = delete(ImageAnalysis).where(ImageAnalysis.kind == kind)
    if tenant_id is not None:
        query = query.where(ImageAnalysis.tenant_id == tenant_id)
    return session.execute(query.execution_options(synchronize_session=False)).rowcount
