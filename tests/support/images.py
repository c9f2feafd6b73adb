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
