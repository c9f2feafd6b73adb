"""Renditions on demand, computed once and kept in the blob store.

The cache key is the original's hash plus the digest of the normalised
parameters, so equal requests share one rendition whatever their spelling,
and a cached rendition is served without decoding anything. A named lock
makes concurrent requests for the same missing rendition compute it once.
Renditions live under their original's hash: ``gc`` removes them with it.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Protocol

from .errors import BackendUnavailable, InvalidInput
from .imaging.formats import OUTPUT_FORMATS
from .imaging.render import RenderError, RenderParams, render
from .storage import BlobNotFound, BlobStore, StorageError, blob_key, rendition_key


class Locks(Protocol):
    def hold(self, name: str, timeout_s: float = ...): ...


@dataclass(frozen=True)
class Rendition:
    key: str
    mime_type: str
    etag: str
    computed: bool  # False when it came from the cache
    render_seconds: float = 0.0


def cache_key(sha256: str, params: RenderParams) -> str:
    return rendition_key(sha256, params.digest())


def etag_for(sha256: str, params: RenderParams) -> str:
    return f"{sha256[:24]}-{params.digest()}"


def get_or_create(
    store: BlobStore, locks: Locks, sha256: str, params: RenderParams, *, max_pixels: int
) -> Rendition:
    """The rendition of original ``sha256`` for normalised ``params``."""
    key = cache_key(sha256, params)
    mime = OUTPUT_FORMATS[params.format].mime_type
    etag = etag_for(sha256, params)
    try:
        if store.exists(key):
            return Rendition(key, mime, etag, computed=False)
        with locks.hold(key):
            if store.exists(key):  # made by whoever held the lock before us
                return Rendition(key, mime, etag, computed=False)
            started = time.perf_counter()
            _compute(store, sha256, params, key, max_pixels)
            seconds = time.perf_counter() - started
    except StorageError as exc:
        raise BackendUnavailable("The image store is not available.") from exc
    return Rendition(key, mime, etag, computed=True, render_seconds=seconds)


def _compute(
    store: BlobStore, sha256: str, params: RenderParams, key: str, max_pixels: int
) -> None:
    source_key = blob_key(sha256)
    local = store.local_path(source_key)
    with tempfile.TemporaryFile() as out:
        try:
            if local is not None:
                render(local, params, out, max_pixels=max_pixels)
            else:
                with store.open(source_key) as source:
                    render(source, params, out, max_pixels=max_pixels)
        except BlobNotFound:
            raise
        except RenderError as exc:
            raise InvalidInput(
                "This rendition cannot be made from this image.", **exc.errors
            ) from exc
        out.seek(0)
        store.put(key, out)
