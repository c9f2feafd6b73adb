"""A picture given as a path or a stream, as the seekable binary file decoders need.

Probe and render both take either; Pillow and ``survey`` both seek. A path
is opened here, not by Pillow, so a missing file is the caller's
FileNotFoundError and never mistaken for a bad picture. A stream that cannot
seek (a pipe, an S3 body) is spooled first: in memory while it is small, in
a temporary file beyond.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

# A stream that cannot seek keeps this much in memory; the rest goes to disk.
SPOOL_IN_MEMORY = 16 * 1024 * 1024
_COPY_CHUNK = 1024 * 1024


@contextmanager
def seekable(src: BinaryIO | str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """``src`` as a seekable binary file; a stream is left at the position it had."""
    if isinstance(src, str | os.PathLike):
        with open(src, "rb") as file:
            yield file
        return
    try:
        position = src.tell()
        src.seek(0)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            shutil.copyfileobj(src, spool, _COPY_CHUNK)
            spool.seek(0)
            yield spool  # type: ignore[misc]
        return
    try:
        yield src
    finally:
        src.seek(position)
