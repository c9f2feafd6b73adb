"""Reading a tenant's archive (``archive_format``) into this instance.

One pass over the tar as a stream. The three JSON documents come first and
are checked whole (hash, then shape) before anything is written: an archive
that fails there changes nothing. Then each original is hashed on the way
into a spooled file and, if it is the file the manifest names, taken in as
an upload would be (``domain.ingest``: decoded, bounded, deduplicated), with
its archived fields put back, and committed on its own. So an interrupted
import keeps every image it finished, and a re-run skips them (the tenant
has their bytes already) and does the rest.

What the archive may not do, whoever made it: name a member anything but the
format's names (no paths, so no ``../``), hold links, devices or folders,
repeat a member, or carry bytes other than the manifest says. Any of these
stops the import with a message; a single original that fails its hash or
its validation is left out (nothing of it is written) and reported, and the
import goes on with the others.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import marshmallow as ma
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from image_repo.db.models import Collection, CollectionImage, Image
from image_repo.domain import albums, tenancy
from image_repo.domain.errors import DomainError, NotFound
from image_repo.domain.image_fields import ImageFields, safe_filename
from image_repo.domain.ingest import ingest
from image_repo.imaging.formats import ACCEPTED_FORMATS
from image_repo.imaging.limits import DEFAULT_LIMITS, DecodeLimits
from image_repo.storage import BlobStore
from image_repo.storage.base import CHUNK_SIZE
from image_repo.transfer.archive_format import (
    ALBUMS,
    IMAGES,
    MANIFEST,
    ORIGINAL_NAME,
    ArchiveError,
)
from image_repo.transfer.documents import (
    AlbumsDocument,
    ImagesDocument,
    ManifestDocument,
    first_error,
)

# The JSON documents are read whole to be parsed: this bounds what that may cost.
MAX_DOCUMENT_BYTES = 512 * 1024 * 1024
SPOOL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class UploadRules:
    """What an upload to this instance must pass (the instance's settings)."""

    max_bytes: int
    max_pixels: int
    make_preview: bool = True
    limits: DecodeLimits = DEFAULT_LIMITS


@dataclass
class ImportSummary:
    tenant: str = ""
    tenant_id: str = ""
    tenant_created: bool = False
    images_in_archive: int = 0
    images_imported: int = 0
    images_skipped: int = 0
    albums_created: int = 0
    memberships_added: int = 0
    failed: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict:
        return {**self.__dict__, "ok": self.ok}


def _damaged(exc: BaseException) -> ArchiveError:
    return ArchiveError(
        f"the archive is damaged or cut short ({exc}); what was imported so far is kept: "
        "run the import again with the complete archive to finish"
    )


class _Members:
    """The tar's members in order, with tarfile's errors turned into ArchiveError."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self._iter = iter(tar)

    def next(self) -> tarfile.TarInfo | None:
        try:
            return next(self._iter)
        except StopIteration:
            return None
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise _damaged(exc) from exc

    def chunks(self, member: tarfile.TarInfo) -> Iterator[bytes]:
        try:
            stream = self.tar.extractfile(member)
            assert stream is not None  # a regular file, checked by the caller
            while chunk := stream.read(CHUNK_SIZE):
                yield chunk
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise _damaged(exc) from exc


def _check_member(member: tarfile.TarInfo | None, expected: str | None) -> tarfile.TarInfo:
    if member is None:
        raise ArchiveError(f"the archive ends before {expected or 'its originals'}")
    if expected is not None and member.name != expected:
        raise ArchiveError(
            f"expected the member {expected!r} here, found {member.name[:200]!r}: "
            "not an archive made by `image-repo export`"
        )
    if not member.isreg():
        raise ArchiveError(f"the member {member.name[:200]!r} is not a regular file (a link?)")
    return member


def _read_document(members: _Members, name: str, sha256: str | None) -> Any:
    member = _check_member(members.next(), name)
    if member.size > MAX_DOCUMENT_BYTES:
        raise ArchiveError(f"{name} is {member.size} bytes, more than {MAX_DOCUMENT_BYTES}")
    data = b"".join(members.chunks(member))
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ArchiveError(f"{name} does not match its SHA-256 in the manifest")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{name} is not valid JSON: {exc}") from exc


def _load(schema: ma.Schema, document: Any, name: str) -> dict:
    try:
        return schema.load(document)
    except ma.ValidationError as exc:
        raise ArchiveError(f"{name} is invalid: {first_error(exc.messages)}") from exc


@dataclass
class _Plan:
    """The documents, checked against each other."""

    manifest: dict
    images_by_sha: dict[str, dict]
    sha_of_image: dict[str, str]
    sizes: dict[str, int]  # original sha256 -> bytes, as the manifest says
    albums: list[dict]


def _read_documents(members: _Members) -> _Plan:
    manifest = _load(ManifestDocument(), _read_document(members, MANIFEST, None), MANIFEST)
    listed: dict[str, dict] = {}
    for entry in manifest["members"]:
        if entry["name"] in listed:
            raise ArchiveError(f"{MANIFEST} lists {entry['name']} twice")
        listed[entry["name"]] = entry
    for name in (IMAGES, ALBUMS):
        if name not in listed:
            raise ArchiveError(f"{MANIFEST} does not list {name}")
    images = _load(
        ImagesDocument(), _read_document(members, IMAGES, listed[IMAGES]["sha256"]), IMAGES
    )
    album_doc = _load(
        AlbumsDocument(), _read_document(members, ALBUMS, listed[ALBUMS]["sha256"]), ALBUMS
    )
    sizes = {}
    for name, entry in listed.items():
        match = ORIGINAL_NAME.fullmatch(name)
        if match is None:
            continue
        if match["sha"] != entry["sha256"]:
            raise ArchiveError(f"{MANIFEST}: {name} is listed with another SHA-256")
        sizes[entry["sha256"]] = entry["bytes"]
    images_by_sha: dict[str, dict] = {}
    sha_of_image: dict[str, str] = {}
    for image in images["images"]:
        sha = image["sha256"]
        if sha in images_by_sha or image["id"] in sha_of_image:
            raise ArchiveError(f"{IMAGES} holds the image {image['id']} ({sha}) twice")
        if sha not in sizes:
            raise ArchiveError(f"{IMAGES}: the original of {image['id']} is not in the manifest")
        images_by_sha[sha] = image
        sha_of_image[image["id"]] = sha
    for album in album_doc["albums"]:
        for member in album["members"]:
            if member["image_id"] not in sha_of_image:
                raise ArchiveError(
                    f"{ALBUMS}: album {album['name']!r} holds {member['image_id']!r}, "
                    f"which is not in {IMAGES}"
                )
    return _Plan(manifest, images_by_sha, sha_of_image, sizes, album_doc["albums"])


def _tenant(sessions: sessionmaker[Session], name: str, manifest: dict, summary: ImportSummary):
    with sessions() as session:
        try:
            tenant = tenancy.get_tenant(session, name=name)
        except NotFound:
            quotas = manifest["tenant"]
            tenant = tenancy.create_tenant(
                session, name, max_images=quotas["max_images"], max_bytes=quotas["max_bytes"]
            )
            session.commit()
            summary.tenant_created = True
        summary.tenant, summary.tenant_id = tenant.name, tenant.id


def _image_of(session: Session, tenant_id: str, sha: str) -> Image | None:
    return session.scalar(select(Image).where(Image.tenant_id == tenant_id, Image.sha256 == sha))


def _spool(members: _Members, member: tarfile.TarInfo) -> tuple[IO[bytes], str, int]:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    digest, size = hashlib.sha256(), 0
    try:
        for chunk in members.chunks(member):
            digest.update(chunk)
            size += len(chunk)
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, digest.hexdigest(), size


def _put_back(image: Image, entry: dict) -> None:
    """The archived image's own fields, over what an upload today would set."""
    image.filename = safe_filename(entry["filename"], ACCEPTED_FORMATS[image.format].extension)
    image.uploaded_at = entry["uploaded_at"]
    image.updated_at = entry["updated_at"]
    image.taken_at = entry["taken_at"]
    image.taken_at_offset = entry["taken_at_offset"] if entry["taken_at"] else None
    image.sort_time = entry["taken_at"] or entry["uploaded_at"]
    image.trashed_at = entry["trashed_at"]
    image.version = entry["version"]


def _import_original(
    sessions: sessionmaker[Session],
    store: BlobStore,
    members: _Members,
    member: tarfile.TarInfo,
    sha: str,
    plan: _Plan,
    rules: UploadRules,
    summary: ImportSummary,
) -> None:
    def fail(reason: str) -> None:
        summary.failed.append({"member": member.name, "reason": reason})

    entry = plan.images_by_sha[sha]
    with sessions() as session:
        if _image_of(session, summary.tenant_id, sha) is not None:
            summary.images_skipped += 1  # imported before, or the tenant had these bytes
            return
        if member.size != plan.sizes[sha]:
            return fail(f"{member.size} bytes, the manifest says {plan.sizes[sha]}")
        if member.size > rules.max_bytes:
            return fail(f"{member.size} bytes, more than this instance accepts")
        spool, digest, size = _spool(members, member)
        with spool:
            if digest != sha or size != member.size:
                return fail(f"its bytes do not match its SHA-256 {sha} (damaged)")
            fields = ImageFields(
                title=entry["title"], description=entry["description"], tags=entry["tags"]
            )
            try:
                result = ingest(
                    session,
                    store,
                    tenant_id=summary.tenant_id,
                    stream=spool,
                    filename=entry["filename"],
                    fields=fields,
                    max_bytes=rules.max_bytes,
                    max_pixels=rules.max_pixels,
                    make_preview=rules.make_preview,
                    limits=rules.limits,
                )
                if result.created:
                    _put_back(result.image, entry)
                session.commit()
            except DomainError as exc:
                session.rollback()
                return fail(exc.message)
        if result.created:
            summary.images_imported += 1
        else:
            summary.images_skipped += 1


def _import_albums(sessions: sessionmaker[Session], plan: _Plan, summary: ImportSummary) -> None:
    for album in plan.albums:
        with sessions() as session:
            collection = session.scalar(
                select(Collection).where(
                    Collection.tenant_id == summary.tenant_id,
                    Collection.name == album["name"].strip(),
                )
            )
            if collection is None:
                collection = albums.create_collection(
                    session, summary.tenant_id, album["name"], album["description"]
                )
                collection.created_at = album["created_at"]
                collection.updated_at = album["updated_at"]
                summary.albums_created += 1
            for member in album["members"]:
                image = _image_of(session, summary.tenant_id, plan.sha_of_image[member["image_id"]])
                if image is None:
                    continue  # failed above, and reported there
                if session.get(CollectionImage, (collection.id, image.id)) is None:
                    session.add(
                        CollectionImage(
                            collection_id=collection.id,
                            image_id=image.id,
                            added_at=member["added_at"],
                        )
                    )
                    summary.memberships_added += 1
            session.commit()


def import_archive(
    sessions: sessionmaker[Session],
    store: BlobStore,
    archive: IO[bytes],
    *,
    rules: UploadRules,
    tenant_name: str | None = None,
    on_start: Callable[[int, int], None] = lambda files, size: None,
    on_file: Callable[[int], None] = lambda size: None,
) -> ImportSummary:
    """Import ``archive`` (a readable stream; never sought) into ``tenant_name``,
    or the archived tenant's name; the tenant is created when missing.

    Raises ArchiveError when the archive as a whole is unusable; files that
    fail alone are in the summary's ``failed``.
    """
    summary = ImportSummary()
    try:
        tar = tarfile.open(fileobj=archive, mode="r|*")  # noqa: SIM115 (closed below)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveError(f"not a tar archive: {exc}") from exc
    with tar:
        members = _Members(tar)
        plan = _read_documents(members)
        summary.images_in_archive = len(plan.images_by_sha)
        _tenant(sessions, tenant_name or plan.manifest["tenant"]["name"], plan.manifest, summary)
        on_start(len(plan.sizes), sum(plan.sizes.values()))
        seen: set[str] = set()
        while (member := members.next()) is not None:
            match = ORIGINAL_NAME.fullmatch(member.name)
            if match is None:
                raise ArchiveError(f"unexpected member {member.name[:200]!r} in the archive")
            _check_member(member, None)
            sha = match["sha"]
            if sha in seen:
                raise ArchiveError(f"the archive holds {member.name} twice")
            if sha not in plan.images_by_sha:
                raise ArchiveError(f"{member.name} is not in {MANIFEST} and {IMAGES}")
            seen.add(sha)
            _import_original(sessions, store, members, member, sha, plan, rules, summary)
            on_file(member.size)
    for sha in plan.sizes.keys() - seen:
        summary.failed.append({"member": f"originals/{sha}", "reason": "missing from the archive"})
    _import_albums(sessions, plan, summary)
    return summary
