"""Why an upload is refused: the reasons probe gives, worded for the person who sent it.

Each refusal carries a machine-readable ``reason`` (the API maps it to a
status and an error code) and a sentence that says what is wrong with the
file as precisely as its bytes tell: the first bytes name the format it is
(see ``sniff``), a decoder's error tells damage from truncation.
"""

from __future__ import annotations

import re
from typing import Literal

from image_repo.imaging import sniff
from image_repo.imaging.formats import ACCEPTED_FORMATS

RejectReason = Literal[
    "not_an_image",
    "unsupported_format",
    "corrupt",
    "too_many_pixels",
    # The DecodeLimits (see limits):
    "too_many_frames",
    "too_many_scans",
    "too_many_decoded_pixels",
    "decode_timeout",
]


class ImageRejected(Exception):
    """The upload is not an image this service accepts; ``message`` says why."""

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(message)
        self.reason: RejectReason = reason
        self.message = message


_DISPLAY_NAMES = {"WEBP": "WebP", "HEIF": "HEIC/HEIF", "MPO": "JPEG (MPO)"}


def display_name(pillow_format: str) -> str:
    return _DISPLAY_NAMES.get(pillow_format, pillow_format)


ACCEPTED_LIST = ", ".join(display_name(f) for f in ACCEPTED_FORMATS if f != "MPO")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels" if pixels >= 1e6 else f"{pixels:,} pixels"


def too_many_pixels(
    max_pixels: int, size: tuple[int, int] | None = None, frame: int | None = None
) -> ImageRejected:
    what = f"Frame {frame + 1} of the image" if frame else "The image"
    limit = _megapixels(max_pixels)
    if size is None:  # Pillow refused it before we saw the size
        message = f"{what} has more pixels than the limit of {limit} allows."
    else:
        width, height = size
        message = (
            f"{what} is {width} x {height} pixels ({_megapixels(width * height)}),"
            f" more than the limit of {limit}."
        )
    return ImageRejected("too_many_pixels", message)


_UNSUPPORTED_VARIANT = re.compile(r"unsupported|not supported|not available", re.IGNORECASE)


def corrupt(pillow_format: str | None, exc: BaseException) -> ImageRejected:
    """A decoder took the file, then failed: damaged, cut short, or a variant it cannot decode."""
    what = f"The {display_name(pillow_format)} image" if pillow_format else "The image"
    detail = str(exc)
    if isinstance(exc, OSError) and _UNSUPPORTED_VARIANT.search(detail):
        # e.g. "Unsupported BMP compression (4)": a valid file we can't decode.
        return ImageRejected(
            "unsupported_format",
            f"{what} uses a variant that cannot be decoded ({detail[:200]}).",
        )
    if "truncated" in detail.lower() or isinstance(exc, EOFError):
        return ImageRejected(
            "corrupt", f"{what} is incomplete: the file ends before its image data."
        )
    return ImageRejected("corrupt", f"{what} is damaged and cannot be decoded.")


def corrupt_header(head: bytes, exc: BaseException) -> ImageRejected:
    """A decoder took the file by its signature, then failed on its header."""
    return corrupt(sniff.accepted_format(head), exc)


def unsupported(description: str) -> ImageRejected:
    return ImageRejected("unsupported_format", _unsupported_message(description))


def _unsupported_message(description: str) -> str:
    return (
        f"The file is {description}, which is not an accepted image format"
        f" (accepted: {ACCEPTED_LIST})."
    )


def unidentified(head: bytes) -> ImageRejected:
    """Why no accepted decoder took the file, as precisely as its first bytes tell."""
    if not head:
        return ImageRejected("not_an_image", "The file is empty.")
    # Accepted signatures first: they are exact, the weaker checks below are not.
    accepted = sniff.accepted_format(head)
    if accepted:
        return ImageRejected(
            "not_an_image",
            f"The file starts like a {display_name(accepted)} image, but its header is"
            " not valid, so it cannot be read as an image.",
        )
    unsupported_kind = sniff.unsupported_format(head)
    if unsupported_kind:
        return unsupported(unsupported_kind)
    other = sniff.other_kind(head)
    if other:
        return ImageRejected(
            "not_an_image",
            f"The file is {other}, not an image (accepted formats: {ACCEPTED_LIST}).",
        )
    return ImageRejected(
        "not_an_image",
        f"The file is not an image in any recognised format (accepted: {ACCEPTED_LIST}).",
    )
