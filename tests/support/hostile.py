"""Hostile files built on the fly: small files that cost a decoder a lot, or lie about their data."""

from __future__ import annotations

import io
import re
import struct

from PIL import Image

_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment; an SOS segment includes its scan's data."""
    pos, found = 2, []
    while pos < len(data):
        marker = data[pos + 1]
        if marker == 0xD9:
            found.append((marker, pos, pos + 2))
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if marker == 0xDA:
            end = _MARKER.search(data, end).start()
        found.append((marker, pos, end))
        pos = end
    return found


def progressive_jpeg(size: tuple[int, int], mode: str = "L") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, 128).save(out, "JPEG", progressive=True, quality=90)
    return out.getvalue()


def many_scan_jpeg(size: tuple[int, int], repeats: int) -> bytes:
    """A progressive JPEG whose last Huffman table + scan pair is repeated ``repeats`` times."""
    data = progressive_jpeg(size)
    segments = jpeg_segments(data)
    last_scan = max(i for i, (marker, _, _) in enumerate(segments) if marker == 0xDA)
    start = segments[last_scan - 1][1] if segments[last_scan - 1][0] == 0xC4 else None
    start = segments[last_scan][1] if start is None else start
    end = segments[last_scan][2]
    return data[:end] + data[start:end] * repeats + data[end:]


def jpeg_scan_count(data: bytes) -> int:
    return sum(marker == 0xDA for marker, _, _ in jpeg_segments(data))


def many_page_tiff(pages: int) -> bytes:
    """A little-endian TIFF of ``pages`` 1x1 grey pages sharing one strip."""
    entries = [
        (256, 3, 1, 1),  # width
        (257, 3, 1, 1),  # height
        (258, 3, 1, 8),  # bits per sample
        (259, 3, 1, 1),  # no compression
        (262, 3, 1, 1),  # black is zero
        (273, 4, 1, 8),  # strip offset
        (277, 3, 1, 1),  # samples per pixel
        (278, 3, 1, 1),  # rows per strip
        (279, 4, 1, 1),  # strip byte count
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", 12) + b"\x80\x00\x00\x00")
    for page in range(pages):
        following = len(out) + ifd_size if page + 1 < pages else 0
        out += struct.pack("<H", len(entries))
        for tag, kind, count, value in entries:
            packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
            out += struct.pack("<HHI", tag, kind, count) + packed
        out += struct.pack("<I", following)
    return bytes(out)


# One 1x1 frame: image descriptor, LZW code size 2, the codes clear, 0, end.
_GIF_FRAME = b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00" + b"\x02\x02\x44\x01\x00"


def many_frame_gif(frames: int, size: tuple[int, int] = (1, 1)) -> bytes:
    """A GIF of ``frames`` frames of one pixel each, on a canvas of ``size``."""
    screen = struct.pack("<HHBBB", *size, 0x80, 0, 0)  # a global table of 2 colours
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    return b"GIF89a" + screen + b"\x00\x00\x00\xff\xff\xff" + loop + _GIF_FRAME * frames + b";"


def animation(fmt: str, frames: int, size: tuple[int, int] = (8, 8), **params) -> bytes:
    """``frames`` distinct frames saved with Pillow (``fmt``: WEBP, PNG, AVIF, HEIF, MPO, TIFF...)."""
    images = [
        Image.new("RGB", size, (i * 37 % 256, i * 91 % 256, i * 13 % 256)) for i in range(frames)
    ]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], **params)
    return out.getvalue()


def tiny_jpeg_claiming(size: tuple[int, int]) -> bytes:
    """An 8x8 baseline JPEG whose frame header claims ``size``: a few hundred bytes."""
    out = io.BytesIO()
    Image.new("L", (8, 8), 100).save(out, "JPEG", quality=50)
    data = bytearray(out.getvalue())
    sof = next(start for marker, start, _ in jpeg_segments(bytes(data)) if marker == 0xC0)
    data[sof + 5 : sof + 9] = struct.pack(">HH", size[1], size[0])
    return bytes(data)
