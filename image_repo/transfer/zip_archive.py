"""ZIP downloads of an album or a selection of images, streamed as they are built.

The stdlib ``zipfile`` writes into a sink that is drained after every piece,
so the response starts at once and holds one chunk of one original at a time,
whatever the album's size. The output cannot seek, so each member is followed
by a data descriptor (its CRC); sizes are known up front (from the database),
which lets zipfile choose ZIP64 for members over 4 GiB. Images are stored,
not deflated: they are compressed already.

The rows are read before the first byte is sent (the request's database
session is gone by the time the body streams); the bytes are read from the
store as they are sent.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from image_repo.db.models import CollectionImage, Image
from image_repo.domain.albums import get_collection
from image_repo.domain.errors import InvalidInput
from image_repo.domain.image_fields import safe_filename, served_filename
from image_repo.domain.trash import NOT_TRASHED
from image_repo.storage import BlobStore, blob_key
from image_repo.storage.base import CHUNK_SIZE

# A ZIP's timestamps start in 1980.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ZipMember:
    name: str
    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class ZipPlan:
    download_name: str
    members: list[ZipMember]


def _members(images: list[Image]) -> list[ZipMember]:
    """One member per image, under its served file name, made unique ("a.jpg", "a (2).jpg")."""
    taken: set[str] = set()
    members = []
    for image in images:
        name = served_filename(image.filename, image.format)
        stem, dot, extension = name.rpartition(".")
        number = 1
        while name.casefold() in taken:
            number += 1
            name = f"{stem} ({number}){dot}{extension}" if dot else f"{extension} ({number})"
        taken.add(name.casefold())
        members.append(ZipMember(name, blob_key(image.sha256), image.bytes, image.uploaded_at))
    return members


def collection_plan(session: Session, tenant_id: str, collection_id: str) -> ZipPlan:
    """The album's images in the library (not its trashed members), oldest addition first."""
    collection = get_collection(session, tenant_id, collection_id)
    images = session.scalars(
        select(Image)
        .join(CollectionImage, CollectionImage.image_id == Image.id)
        .where(
            CollectionImage.collection_id == collection.id,
            Image.tenant_id == tenant_id,
            NOT_TRASHED,
        )
        .order_by(CollectionImage.added_at, Image.id)
    ).all()
    return ZipPlan(safe_filename(f"{collection.name}.zip", "zip"), _members(list(images)))


def selection_plan(session: Session, tenant_id: str, image_ids: list[str]) -> ZipPlan:
    """The images named, in the order given (repeats once); every one must be the tenant's
    and in the library."""
    wanted = list(dict.fromkeys(image_ids))
    found = {
        image.id: image
        for image in session.scalars(
            select(Image).where(Image.tenant_id == tenant_id, Image.id.in_(wanted), NOT_TRASHED)
        )
    }
    unknown = [image_id for image_id in wanted if image_id not in found]
    if unknown:
        raise InvalidInput(
            f"The selection names an image you do not have: {unknown[0]!r}.",
            query={"ids": [f"no image {i!r}" for i in unknown]},
        )
    return ZipPlan("images.zip", _members([found[image_id] for image_id in wanted]))


class _Sink:
    """What zipfile writes, kept until drained (zipfile adds its own position count)."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def write(self, data) -> int:
        self.pieces.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> Iterator[bytes]:
        if self.pieces:
            data = b"".join(self.pieces)
            self.pieces.clear()
            yield data


def zip_stream(store: BlobStore, members: list[ZipMember]) -> Iterator[bytes]:
    """The ZIP of ``members``' bytes, piece by piece."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=_zip_time(member.modified))
            info.compress_type = zipfile.ZIP_STORED
            info.file_size = member.size
            info.external_attr = 0o644 << 16
            with store.open(member.key) as source, archive.open(info, "w") as target:
                while chunk := source.read(CHUNK_SIZE):
                    target.write(chunk)
                    yield from sink.drain()
            yield from sink.drain()
    yield from sink.drain()


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    value = moment.timetuple()[:6]
    return max(value, ZIP_EPOCH)  # type: ignore[return-value]
