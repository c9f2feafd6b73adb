"""Renditions on demand, computed once and kept in the blob store.

The cache key is the original's hash plus the digest of the normalised
parameters, so equal requests share one rendition whatever their spelling,
and a cached rendition is served without decoding anything. A named lock
makes concurrent requests for the same missing rendition compute it once.
Renditions live under their original's hash: ``gc`` removes them with it.
"""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from image_repo.domain.errors import BackendUnavailable, InvalidInput
from image_repo.imaging.formats import OUTPUT_FORMATS
from image_repo.imaging.limits import (
    DEFAULT_LIMITS,
    DecodeLimits,
    DecodeTimeout,
    LimitExceeded,
)
from image_repo.imaging.render import (
    RenderError,
    RenderParams,
    preview_may_serve,
    render,
    render_preview,
)
from image_repo.storage import (
    BlobNotFound,
    BlobStore,
    StorageError,
    blob_key,
    preview_key,
    rendition_key,
)

log = logging.getLogger(__name__)


class Locks(Protocol):
    def hold(self, name: str, timeout_s: float = ...): ...


@dataclass(frozen=True)
class Rendition:
    key: str
    mime_type: str
    etag: str
    computed: bool  # False when it came from the cache


@dataclass(frozen=True)
class RenditionRef:
    """Where the rendition of (original, params) lives and how it is named."""

    key: str
    etag: str
    mime_type: str
    digest: str  # of the normalised parameters

    @classmethod
    def of(cls, sha256: str, params: RenderParams) -> RenditionRef:
        digest = params.digest()  # hashing JSON: done once per request
        return cls(
            key=rendition_key(sha256, digest),
            etag=cls.etag_for(sha256, digest),
            mime_type=OUTPUT_FORMATS[params.format].mime_type,
            digest=digest,
        )

    @staticmethod
    def etag_for(sha256: str, digest: str) -> str:
        return f"{sha256[:24]}-{digest}"


def _stored(store: BlobStore, key: str) -> bool:
    if store.has_local_files:
        return store.local_path(key) is not None  # one path lookup, no extra stat
    return store.exists(key)


def get_or_create(
    store: BlobStore,
    locks: Locks,
    sha256: str,
    params: RenderParams,
    *,
    max_pixels: int,
    ref: RenditionRef | None = None,
    full_size: tuple[int, int] | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> Rendition:
    """The rendition of original ``sha256`` for normalised ``params``.

    ``full_size``, the original's stored size, lets a small rendition start
    from the original's preview when there is one. An original that passes
    ``limits``, or takes longer to render than they allow, is InvalidInput.
    """
    ref = ref or RenditionRef.of(sha256, params)
    try:
        if _stored(store, ref.key):
            return Rendition(ref.key, ref.mime_type, ref.etag, computed=False)
        with locks.hold(ref.key):
            if _stored(store, ref.key):  # made by whoever held the lock before us
                return Rendition(ref.key, ref.mime_type, ref.etag, computed=False)
            _compute(store, sha256, params, ref.key, max_pixels, full_size, limits)
    except StorageError as exc:
        raise BackendUnavailable("The image store is not available.") from exc
    return Rendition(ref.key, ref.mime_type, ref.etag, computed=True)


def _compute(
    store: BlobStore,
    sha256: str,
    params: RenderParams,
    key: str,
    max_pixels: int,
    full_size: tuple[int, int] | None,
    limits: DecodeLimits,
) -> None:
    with tempfile.TemporaryFile() as out:
        try:
            made = (
                full_size is not None
                and preview_may_serve(full_size, params)
                and _from_preview(store, sha256, full_size, params, out, max_pixels, limits)
            )
            if not made:
                with _source(store, blob_key(sha256)) as source:
                    render(source, params, out, max_pixels=max_pixels, limits=limits)
        except RenderError as exc:
            raise InvalidInput(
                "This rendition cannot be made from this image.", **exc.errors
            ) from exc
        except LimitExceeded as exc:
            raise InvalidInput(exc.message, image=[exc.reason]) from exc
        except DecodeTimeout as exc:
            raise InvalidInput(exc.message, image=["decode_timeout"]) from exc
        out.seek(0)
        # A rendition can always be made again: no fsync wait for it.
        store.put(key, out, durable=False)


def _from_preview(
    store: BlobStore,
    sha256: str,
    full_size: tuple[int, int],
    params: RenderParams,
    out: BinaryIO,
    max_pixels: int,
    limits: DecodeLimits,
) -> bool:
    """Render from the original's preview when it has one with enough pixels."""
    try:
        with _source(store, preview_key(sha256)) as source:
            made = render_preview(
                source, full_size, params, out, max_pixels=max_pixels, limits=limits
            )
    except BlobNotFound:
        return False  # not a large JPEG, or uploaded with previews off
    except RenderError:
        raise  # about the parameters: the original would refuse them too
    except (OSError, SyntaxError, ValueError) as exc:
        # A damaged preview costs speed, not the rendition. Removed, so that
        # later renditions skip it and `image-repo previews` makes it again.
        log.warning("unusable preview of %s (%s); decoding the original", sha256, exc)
        _discard(store, preview_key(sha256))
        made = None
    if made is None:
        out.seek(0)
        out.truncate()
    return made is not None


def put_preview(store: BlobStore, sha256: str, data: bytes) -> None:
    """Keep an original's preview (see imaging.preview) beside its renditions."""
    # Like a rendition it can always be made again: no fsync wait for it.
    store.put(preview_key(sha256), io.BytesIO(data), durable=False)


def _discard(store: BlobStore, key: str) -> None:
    # A failing store: the next request tries again. (A missing key is no error.)
    with suppress(StorageError):
        store.delete(key)


@contextmanager
def _source(store: BlobStore, key: str) -> Iterator[str | BinaryIO]:
    """A blob as a local path when the store has one, else as a stream."""
    local = store.local_path(key)
    if local is not None:
        yield local
        return
    with store.open(key) as stream:
        yield stream
