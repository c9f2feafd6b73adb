"""The blob store interface: content-addressed image bytes, framework-free.

Keys are made by the service (``blob_key``, ``rendition_key``), never taken
from a client, and every store checks them again (``validate_key``): a key is
a fixed shape of lower-case hex under a known prefix, so it can neither climb
out of a folder nor name anything the service did not create.

Layout::

    originals/ab/cd/<sha256>                     the uploaded bytes
    renditions/ab/cd/<sha256>/<params_digest>    derived from that original
    renditions/ab/cd/<sha256>/preview            its reduced copy made at upload

Renditions live under their original's hash so that deleting an original can
sweep its renditions with one prefix (``rendition_prefix``).
"""

from __future__ import annotations

import abc
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

# Streams are copied in pieces of this size: no blob is ever held whole in memory.
CHUNK_SIZE = 1024 * 1024

_SHA256 = r"[0-9a-f]{64}"
PREVIEW = "preview"
_DIGEST = r"[0-9a-f]{8,64}"
_SHA256_RE = re.compile(_SHA256)
_DIGEST_RE = re.compile(_DIGEST)
# The fan-out folders repeat the hash's first four digits (checked in validate_key).
_KEY_RE = re.compile(
    rf"(?P<kind>originals|renditions)/(?P<a>[0-9a-f]{{2}})/(?P<b>[0-9a-f]{{2}})/"
    rf"(?P<sha>{_SHA256})(?:/(?P<digest>{_DIGEST}|{PREVIEW}))?"
)
_PREFIX_RE = re.compile(r"(?:[0-9a-z]+/)*[0-9a-z]*")


class StorageError(Exception):
    """The backend failed (disk, network, permissions): the HTTP layer answers 503."""


class BlobNotFound(KeyError):
    """No blob under this key."""


class InvalidKey(ValueError):
    """A key (or prefix) that the service would never produce."""


class InvalidRange(ValueError):
    """A byte range that selects nothing in the blob (HTTP 416)."""


def blob_key(sha256_hex: str) -> str:
    """Key of an original, from the SHA-256 of its bytes."""
    sha = _check_sha(sha256_hex)
    return f"originals/{sha[:2]}/{sha[2:4]}/{sha}"


def rendition_prefix(sha256_hex: str) -> str:
    """Prefix under which every rendition of one original lives (ends in '/')."""
    sha = _check_sha(sha256_hex)
    return f"renditions/{sha[:2]}/{sha[2:4]}/{sha}/"


def rendition_key(sha256_hex: str, params_digest: str) -> str:
    """Key of one rendition: the original's hash plus the digest of its parameters."""
    if not isinstance(params_digest, str) or not _DIGEST_RE.fullmatch(params_digest):
        raise InvalidKey(f"not a parameters digest (8-64 lower-case hex): {params_digest!r}")
    return rendition_prefix(sha256_hex) + params_digest


def preview_key(sha256_hex: str) -> str:
    """Key of an original's preview: beside its renditions, swept with them."""
    return rendition_prefix(sha256_hex) + PREVIEW


def validate_key(key: str) -> str:
    """Return ``key`` if it has exactly one of the shapes above, else raise InvalidKey."""
    match = _KEY_RE.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        raise InvalidKey(f"invalid blob key: {key!r}")
    sha = match["sha"]
    if (match["a"], match["b"]) != (sha[:2], sha[2:4]):
        raise InvalidKey(f"invalid blob key (fan-out does not match hash): {key!r}")
    if (match["kind"] == "renditions") != (match["digest"] is not None):
        raise InvalidKey(f"invalid blob key: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: relative, lower-case letters, digits and single slashes."""
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
        raise InvalidKey(f"invalid key prefix: {prefix!r}")
    return prefix


def _check_sha(sha256_hex: str) -> str:
    if not isinstance(sha256_hex, str) or not _SHA256_RE.fullmatch(sha256_hex):
        raise InvalidKey(f"not a SHA-256 (64 lower-case hex digits): {sha256_hex!r}")
    return sha256_hex


class RangeReader(io.RawIOBase):
    """Reads at most ``length`` bytes from ``raw``'s current position, then EOF.

    Closing it closes ``raw``. Backends whose streams can seek use it to serve
    ``open_range`` without copying.
    """

    def __init__(self, raw: BinaryIO, length: int) -> None:
        super().__init__()
        self._raw = raw
        self._left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        view = memoryview(buffer).cast("B")[: self._left]
        data = self._raw.read(len(view))
        view[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def clamp_range(start: int, end: int, size: int) -> tuple[int, int]:
    """Check an inclusive range against a blob size; an end past the blob is cut.

    As in HTTP: ``end`` beyond the last byte means "to the end"; a range that
    starts at or after the end of the blob (or is reversed) is InvalidRange.
    """
    if start < 0 or end < start:
        raise InvalidRange(f"invalid byte range {start}-{end}")
    if start >= size:
        raise InvalidRange(f"byte range {start}-{end} starts beyond the blob ({size} bytes)")
    return start, min(end, size - 1)


class BlobStore(abc.ABC):
    """Where image bytes live. Implementations: LocalBlobStore, S3BlobStore.

    Every method validates its key first (InvalidKey). Backend failures are
    raised as StorageError; a missing blob as BlobNotFound.

    Optional features (local files, presigned URLs, clean-up of interrupted
    writes) are declared here with a default that says "not here"; a backend
    that has one overrides it. Callers use them as declared and never ask a
    store what it is.
    """

    # True when local_path() gives files (and None exactly for missing blobs).
    has_local_files = False
    # True when presigned_url() gives URLs.
    supports_presigned_urls = False

    @abc.abstractmethod
    def put(self, key: str, stream: BinaryIO, *, durable: bool = True) -> int:
        """Store everything ``stream`` yields under ``key``; return the byte count.

        ``durable=False`` allows skipping the flush to stable storage: for
        renditions, which are a cache that can always be made again.

        Atomic: readers see the previous blob or the complete new one, never a
        part. Putting an existing key again replaces it (harmless for
        content-addressed keys). If reading ``stream`` fails, its exception
        propagates and nothing is stored.
        """

    def put_file(self, key: str, path: str | Path) -> int:
        """Store the file at ``path`` under ``key``."""
        with open(path, "rb") as f:
            return self.put(key, f)

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the blob; the caller closes it."""

    @abc.abstractmethod
    def open_range(self, key: str, start: int, end: int) -> BinaryIO:
        """A stream of bytes ``start``..``end`` inclusive (HTTP Range semantics).

        ``end`` past the last byte is cut to the last byte; ``start`` at or past
        the end, negative, or after ``end`` raises InvalidRange.
        """

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Size of the blob in bytes."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the blob; a missing key is not an error."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a complete blob is stored under ``key``."""

    @abc.abstractmethod
    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys that start with ``prefix``, in lexicographic order."""

    @abc.abstractmethod
    def modified_at(self, key: str) -> datetime:
        """When the blob was last written (timezone-aware UTC)."""

    # -- optional features, with their defaults --------------------------------

    def local_path(self, key: str) -> Path | None:
        """A file holding the blob, for sendfile; None if there is none (no such
        blob, or a store without local files such as S3): then use open()."""
        validate_key(key)
        return None

    def presigned_url(
        self,
        key: str,
        *,
        expires_in: int = 300,
        response_content_type: str | None = None,
        response_content_disposition: str | None = None,
    ) -> str | None:
        """A URL that GETs the blob without credentials for ``expires_in`` seconds,
        answered with the given Content-Type and Content-Disposition; None from a
        store that cannot make one (see ``supports_presigned_urls``)."""
        validate_key(key)
        return None

    def cleanup_temp(self, older_than: timedelta) -> int:
        """Remove what writes interrupted ``older_than`` ago or earlier left behind
        (by a crash); return how many. Keep ``older_than`` well above the longest
        upload. A store whose writes leave nothing behind has nothing to do: 0."""
        return 0
