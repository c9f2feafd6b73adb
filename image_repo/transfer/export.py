"""Writing a tenant's archive (see ``archive_format``) as a stream.

Nothing is held whole in memory: the JSON documents are written to spooled
temporary files (memory while small, disk beyond), and each original goes
from the blob store into the tar in pieces, hashed on the way so that bytes
changed in the store stop the export instead of reaching the archive.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from image_repo.db.models import Collection, CollectionImage, Image, Tenant
from image_repo.db.types import utcnow
from image_repo.domain import tenancy
from image_repo.storage import BlobNotFound, BlobStore, StorageError, blob_key
from image_repo.storage.base import CHUNK_SIZE
from image_repo.transfer.archive_format import (
    ALBUMS,
    FORMAT,
    IMAGES,
    MANIFEST,
    VERSION,
    ArchiveError,
    original_name,
)

SPOOL_BYTES = 8 * 1024 * 1024
# Not exported: the tenant is the archive's, and ids are the target's to make.
_NOT_EXPORTED = frozenset({"tenant_id"})


@dataclass
class ExportSummary:
    tenant: str
    images: int
    trashed: int
    albums: int
    files: int
    bytes: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def image_document(image: Image) -> dict:
    data = {
        column.key: _jsonable(getattr(image, column.key))
        for column in Image.__table__.columns
        if column.key not in _NOT_EXPORTED
    }
    data["tags"] = [tag.tag for tag in image.tags]
    return data


class _HashingWriter:
    """A file that hashes and counts what is written to it."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        self.target.write(data)


class _HashingReader:
    """Reads ``stream``, hashing and counting what passes (tarfile reads in pieces)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data


def _json_array_document(key: str, items: Iterator[dict]) -> tuple[IO[bytes], str, int]:
    """``{key: [items...]}`` in a spooled file, one item at a time; with its hash and size."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    out = _HashingWriter(spool)
    out.write(f'{{"{key}": ['.encode())
    for number, item in enumerate(items):
        out.write((b",\n" if number else b"\n") + json.dumps(item, ensure_ascii=False).encode())
    out.write(b"\n]}\n")
    spool.seek(0)
    return spool, out.digest.hexdigest(), out.size


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(time.time())
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    return info


def _images(session: Session, tenant_id: str) -> Iterator[Image]:
    query = (
        select(Image)
        .where(Image.tenant_id == tenant_id)
        .order_by(Image.uploaded_at, Image.id)
        .execution_options(yield_per=500)
    )
    yield from session.scalars(query)


def _albums(session: Session, tenant_id: str) -> Iterator[dict]:
    collections = session.scalars(
        select(Collection)
        .where(Collection.tenant_id == tenant_id)
        .order_by(Collection.created_at, Collection.id)
    ).all()
    for collection in collections:
        members = session.execute(
            select(CollectionImage.image_id, CollectionImage.added_at)
            .where(CollectionImage.collection_id == collection.id)
            .order_by(CollectionImage.added_at, CollectionImage.image_id)
        ).all()
        yield {
            "id": collection.id,
            "name": collection.name,
            "description": collection.description,
            "created_at": _jsonable(collection.created_at),
            "updated_at": _jsonable(collection.updated_at),
            "members": [
                {"image_id": image_id, "added_at": _jsonable(added_at)}
                for image_id, added_at in members
            ],
        }


def _tenant_document(tenant: Tenant) -> dict:
    return {
        "name": tenant.name,
        "created_at": _jsonable(tenant.created_at),
        "max_images": tenant.max_images,
        "max_bytes": tenant.max_bytes,
    }


def export_tenant(
    session: Session,
    store: BlobStore,
    tenant_name: str,
    out: BinaryIO,
    *,
    on_file: Callable[[int], None] = lambda size: None,
    on_start: Callable[[int, int], None] = lambda files, size: None,
) -> ExportSummary:
    """Write the tenant's archive to ``out`` (any writable stream, never sought).

    ``on_start(files, bytes)`` is called once the originals are counted, and
    ``on_file(size)`` after each original: for a progress bar.
    """
    tenant = tenancy.get_tenant(session, name=tenant_name)
    files: dict[str, int] = {}  # sha256 -> bytes, in export order
    counts = {"images": 0, "trashed": 0}

    def images() -> Iterator[dict]:
        for image in _images(session, tenant.id):
            counts["images"] += 1
            counts["trashed"] += image.trashed_at is not None
            files.setdefault(image.sha256, image.bytes)
            yield image_document(image)

    images_doc, images_sha, images_size = _json_array_document("images", images())
    album_list = list(_albums(session, tenant.id))
    albums_doc, albums_sha, albums_size = _json_array_document("albums", iter(album_list))
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": utcnow().isoformat(),
        "tenant": _tenant_document(tenant),
        "members": [
            {"name": IMAGES, "sha256": images_sha, "bytes": images_size},
            {"name": ALBUMS, "sha256": albums_sha, "bytes": albums_size},
            *(
                {"name": original_name(sha), "sha256": sha, "bytes": size}
                for sha, size in files.items()
            ),
        ],
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
    total = sum(files.values())
    on_start(len(files), total)
    # "w|": a stream of blocks, never a seek (stdout or a pipe would do).
    with tarfile.open(
        fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, copybufsize=CHUNK_SIZE
    ) as tar:
        tar.addfile(_member(MANIFEST, len(manifest_bytes)), _BytesReader(manifest_bytes))
        for name, document, size in (
            (IMAGES, images_doc, images_size),
            (ALBUMS, albums_doc, albums_size),
        ):
            with document:
                tar.addfile(_member(name, size), document)
        for sha, size in files.items():
            _add_original(tar, store, sha, size)
            on_file(size)
    return ExportSummary(
        tenant=tenant.name,
        images=counts["images"],
        trashed=counts["trashed"],
        albums=len(album_list),
        files=len(files),
        bytes=total,
    )


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.position + size
        chunk = self.data[self.position : end]
        self.position += len(chunk)
        return chunk


def _add_original(tar: tarfile.TarFile, store: BlobStore, sha: str, size: int) -> None:
    try:
        with store.open(blob_key(sha)) as stream:
            reader = _HashingReader(stream)
            try:
                tar.addfile(_member(original_name(sha), size), reader)
            except OSError as exc:  # tarfile: "unexpected end of data"
                raise ArchiveError(
                    f"the stored original {sha} is shorter than its {size} bytes: "
                    "run `image-repo fsck`"
                ) from exc
            if reader.stream.read(1):
                raise ArchiveError(
                    f"the stored original {sha} is longer than its {size} bytes: "
                    "run `image-repo fsck`"
                )
    except BlobNotFound as exc:
        raise ArchiveError(
            f"the original {sha} is missing from the store: run `image-repo fsck`"
        ) from exc
    except StorageError as exc:
        raise ArchiveError(f"the blob store failed reading {sha}: {exc}") from exc
    if reader.digest.hexdigest() != sha:
        raise ArchiveError(
            f"the stored original {sha} no longer has that hash (corrupt): run `image-repo fsck`"
        )
