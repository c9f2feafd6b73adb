"""The tenant archive (``image-repo export``): one tar, read and written as a stream.

Members, in this order::

    manifest.json          format, version, the tenant, and the SHA-256 and size
                           of every other member
    images.json            {"images": [...]}: each image's fields as the API shows
                           them (plus its history: uploaded, updated, trashed)
    albums.json            {"albums": [...]}: name, description, times, members
    originals/<sha256>     the original bytes, named by their hash

The manifest comes first so that an importer knows every hash before it reads
any bytes. Originals are content-addressed, so their hash is known before they
are read; the exporter checks the bytes against it as it writes them.

Images in the trash are exported too, with their ``trashed_at``: an import
puts them in the target tenant's trash with the same date (so they go for
good when they would have). Keys and secrets are never in an archive.
"""

from __future__ import annotations

import re

FORMAT = "image-repo-tenant-export"
VERSION = 1

MANIFEST = "manifest.json"
IMAGES = "images.json"
ALBUMS = "albums.json"
DOCUMENTS = (IMAGES, ALBUMS)
ORIGINALS = "originals/"

ORIGINAL_NAME = re.compile(r"originals/(?P<sha>[0-9a-f]{64})")
SHA256 = re.compile(r"[0-9a-f]{64}")


def original_name(sha256: str) -> str:
    return ORIGINALS + sha256


class ArchiveError(Exception):
    """The archive cannot be read or written as a whole (the message says why)."""
