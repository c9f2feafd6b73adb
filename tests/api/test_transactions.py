"""Who commits: the caller. Domain functions write and flush, never commit; a write
refused as an expected answer is undone alone, in a savepoint (see image_repo.domain).

Run on SQLite and PostgreSQL (the ``app`` fixture): on SQLite a savepoint
taken before any write must still belong to the session's transaction.
"""

from __future__ import annotations

import io
import threading

import pytest
from sqlalchemy import func, select

from image_repo.db.models import Collection, Image
from image_repo.domain import albums
from image_repo.domain.errors import Conflict
from image_repo.domain.image_fields import ImageFields
from image_repo.domain.ingest import ingest
from image_repo.http.context import services_of
from tests.support.images import jpeg_bytes


def _names(app, tenant_id: str) -> list[str]:
    with services_of(app).sessions() as session:
        query = select(Collection.name).where(Collection.tenant_id == tenant_id)
        return sorted(session.scalars(query))


def test_nothing_is_kept_unless_the_caller_commits(app, tenant):
    with services_of(app).sessions() as session:
        albums.create_collection(session, tenant.tenant_id, "never committed")
        session.rollback()
    assert _names(app, tenant.tenant_id) == []


def test_a_refused_write_is_undone_alone(app, tenant):
    with services_of(app).sessions() as session:
        albums.create_collection(session, tenant.tenant_id, "first")
        with pytest.raises(Conflict):
            albums.create_collection(session, tenant.tenant_id, "first")
        albums.create_collection(session, tenant.tenant_id, "second")
        session.commit()
    assert _names(app, tenant.tenant_id) == ["first", "second"]


class HeldAfterHashing(io.BytesIO):
    """An upload's bytes that, once hashed, hold the next read (the decode, which comes
    after the check for an image with these bytes) until ``go`` is set."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.hashed = False
        self.held = threading.Event()
        self.go = threading.Event()

    def read(self, size: int | None = -1) -> bytes:
        if self.hashed and not self.held.is_set():
            self.held.set()
            assert self.go.wait(timeout=60), "never let go"
        chunk = super().read(size)
        if not chunk:
            self.hashed = True
        return chunk


def test_the_same_bytes_uploaded_at_once_make_one_image(app, tenant):
    """The loser's insert is undone alone and it answers with the winner's image."""
    services = services_of(app)
    data = jpeg_bytes(7, (64, 48))

    def upload(session, stream):
        return ingest(
            session,
            services.blob_store,
            tenant_id=tenant.tenant_id,
            stream=stream,
            filename="same.jpg",
            fields=ImageFields(),
            max_bytes=app.config["MAX_UPLOAD_BYTES"],
            max_pixels=app.config["MAX_PIXELS"],
        )

    held = HeldAfterHashing(data)
    results = {}

    def loser() -> None:
        with services.sessions() as session:
            results["loser"] = upload(session, held)
            session.commit()

    thread = threading.Thread(target=loser)
    thread.start()
    try:
        # The loser has looked for an image with these bytes and found none...
        assert held.held.wait(timeout=60)
        # ...when the winner stores its image and commits.
        with services.sessions() as session:
            winner = upload(session, io.BytesIO(data))
            session.commit()
    finally:
        held.go.set()
        thread.join(timeout=120)
    assert winner.created
    lost = results["loser"]
    assert not lost.created and lost.image.id == winner.image.id
    assert lost.decode_seconds > 0  # it decoded: it did not find the winner up front
    with services.sessions() as session:
        count = select(func.count()).where(Image.tenant_id == tenant.tenant_id)
        assert session.scalar(count) == 1
