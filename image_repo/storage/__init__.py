"""Blob storage for image bytes: the BlobStore interface and its backends."""

from .base import (
    BlobNotFound,
    BlobStore,
    InvalidKey,
    InvalidRange,
    StorageError,
    blob_key,
    rendition_key,
    rendition_prefix,
    validate_key,
)
from .local import LocalBlobStore

__all__ = [
    "BlobNotFound",
    "BlobStore",
    "InvalidKey",
    "InvalidRange",
    "LocalBlobStore",
    "StorageError",
    "blob_key",
    "rendition_key",
    "rendition_prefix",
    "validate_key",
]
