"""What decoding one file may cost: bounds checked before decoding, and a deadline.

A small file can cost a lot of work: a progressive JPEG may repeat its scans
thousands of times (libjpeg walks every block on every scan), a TIFF may
hold 200,000 pages (Pillow counts them in a time that grows with their
square), a GIF a million frames. So every decode is bounded twice:

- **Before** the expensive work, by ``DecodeLimits``: JPEG scans, frames or
  pages, and the pixels decoded across all the frames an operation touches.
  ``survey`` finds the numbers with a walk over the file's structure
  (markers, blocks, chunks), stopping as soon as a limit is passed. A bound
  that is passed raises ``LimitExceeded``.
- **While** decoding, by a ``Deadline``: Pillow feeds its decoders chunks it
  reads from the file object in Python, so a ``DeadlineReader`` around the
  file raises ``DecodeTimeout`` on the first read past the deadline, in any
  thread (unlike SIGALRM). JPEG data is fed by ``loading`` itself, which
  checks the deadline between chunks and scans. Formats decoded in one C call
  (HEIF and AVIF, WebP frames, compressed TIFF pages) are checked between
  frames, and bounded by their pixel and frame limits before decoding.

None of this needs Flask: ``DecodeLimits.from_config`` reads a plain mapping.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

LimitReason = Literal["too_many_frames", "too_many_scans", "too_many_decoded_pixels"]


@dataclass(frozen=True)
class DecodeLimits:
    """Bounds on one decoding operation (an upload's validation, one rendition)."""

    # Frames or pages a file may have (GIF, APNG, WebP, AVIF, TIFF, MPO, HEIF).
    max_frames: int = 1000
    # Scans of a JPEG (progressive JPEGs from real encoders have about 10).
    max_jpeg_scans: int = 100
    # Pixels one operation may decode, all frames together.
    max_decoded_pixels: int = 250_000_000
    # Wall-clock seconds one operation may spend decoding.
    decode_seconds: float = 5.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DecodeLimits:
        return cls(
            max_frames=config["MAX_FRAMES"],
            max_jpeg_scans=config["MAX_JPEG_SCANS"],
            max_decoded_pixels=config["MAX_DECODED_PIXELS"],
            decode_seconds=config["DECODE_TIMEOUT"],
        )


DEFAULT_LIMITS = DecodeLimits()


class LimitExceeded(Exception):
    """The file passes one of the DecodeLimits; ``message`` names the limit."""

    def __init__(self, reason: LimitReason, message: str) -> None:
        super().__init__(message)
        self.reason: LimitReason = reason
        self.message = message


class DecodeTimeout(Exception):
    """Decoding ran past its deadline. Not an OSError: no decoder may swallow it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.message = (
            f"Decoding the image took longer than the limit of {seconds:g} seconds;"
            " it is too costly to process."
        )
        super().__init__(self.message)


class Deadline:
    """A point in time past which ``check`` raises DecodeTimeout."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self._end:
            raise DecodeTimeout(self.seconds)


class DeadlineReader:
    """A read-only file whose reads raise DecodeTimeout past the deadline.

    Pillow's plugins read headers, frames and (most) image data through the
    file object in Python, so this bounds them between two reads. It has no
    ``fileno``: with one, Pillow would hand the descriptor to libtiff, which
    would read the file in C without coming back here.
    """

    def __init__(self, raw: BinaryIO, deadline: Deadline) -> None:
        self._raw = raw
        self.deadline = deadline

    def read(self, size: int | None = -1) -> bytes:
        self.deadline.check()
        return self._raw.read(-1 if size is None else size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return False

    def close(self) -> None:
        """The wrapped file belongs to the caller: closing the wrapper leaves it open."""


def too_many_frames(limit: int, what: str = "frames", count: int | None = None) -> LimitExceeded:
    """The refusal of a file with more than ``limit`` frames (or pages): ``count`` if known."""
    if count is None:
        message = f"The image has more {what} than the limit of {limit:,}."
    else:
        message = f"The image has {count:,} {what}, more than the limit of {limit:,}."
    return LimitExceeded("too_many_frames", message)
