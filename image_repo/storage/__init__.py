"""Blob storage for image bytes: the BlobStore interface and its backends."""

from image_repo.storage.base import (
    BlobNotFound,
    BlobStore,
    InvalidKey,
    InvalidRange,
    StorageError,
    blob_key,
    preview_key,
    rendition_key,
    rendition_prefix,
    validate_key,
)
from image_repo.storage.local import LocalBlobStore

__all__ = [
    "BlobNotFound",
    "BlobStore",
    "InvalidKey",
    "InvalidRange",
    "LocalBlobStore",
    "S3BlobStore",
    "StorageError",
    "blob_key",
    "preview_key",
    "rendition_key",
    "rendition_prefix",
    "validate_key",
]


def __getattr__(name: str):
    # The S3 backend imports boto3, slow to load and useless to a one-box
    # install: it is loaded on first use of the name only.
    if name == "S3BlobStore":
        from image_repo.storage.s3 import S3BlobStore

        return S3BlobStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
