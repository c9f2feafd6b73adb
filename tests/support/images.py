"""Test images made on the fly, and upload helpers."""

from __future__ import annotations

import io
import random

from PIL import Image


def png_bytes(seed: int = 0, size: tuple[int, int] = (16, 12)) -> bytes:
    """A small PNG whose bytes differ for every seed."""
    rng = random.Random(seed)
    image = Image.new("RGB", size)
    image.putdata(
        [
            (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            for _ in range(size[0] * size[1])
        ]
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def jpeg_bytes(seed: int = 0, size: tuple[int, int] = (32, 24), exif=None) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **({"exif": exif} if exif is not None else {}))
    return out.getvalue()


def upload(client, headers, data: bytes, filename: str = "photo.png", **fields):
    form = {"image": (io.BytesIO(data), filename), **fields}
    return client.post("/images", data=form, headers=headers, content_type="multipart/form-data")


def png16_bytes(pixels) -> bytes:
    """A 16-bit PNG (grey, RGB or RGBA) from a numpy uint16 array of H x W (x 1, 3 or 4).

    Pillow reads such files but cannot write RGB or RGBA at 16 bits: the
    file is put together here, chunk by chunk (PNG spec, section 11).
    """
    import struct
    import zlib

    import numpy as np

    array = np.asarray(pixels, dtype=np.uint16)
    if array.ndim == 2:
        array = array[:, :, None]
    height, width, channels = array.shape
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    rows = array.astype(">u2").reshape(height, width * channels)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)  # filter 0 on every row

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )
