"""The formats the service accepts, and how Pillow names them.

Only these formats are ever handed to Pillow (``Image.open(fp, formats=...)``):
anything else, SVG, EPS, PDF and HTML included, is refused before a decoder
runs. HEIF comes from pillow-heif, registered here once.
"""

from __future__ import annotations

from dataclasses import dataclass

import pillow_heif
from PIL import Image

# AVIF is decoded by Pillow's own plugin; pillow-heif only adds HEIF.
pillow_heif.register_heif_opener()


@dataclass(frozen=True)
class ImageFormat:
    name: str  # Pillow's format name
    mime_type: str
    extension: str
    # Other extensions files of this format commonly carry (lower case).
    aliases: tuple[str, ...] = ()

    def has_extension(self, extension: str) -> bool:
        extension = extension.lower()
        return extension == self.extension or extension in self.aliases


ACCEPTED_FORMATS: dict[str, ImageFormat] = {
    f.name: f
    for f in (
        ImageFormat("JPEG", "image/jpeg", "jpg", ("jpeg", "jpe", "jfif")),
        ImageFormat("MPO", "image/jpeg", "jpg", ("jpeg", "mpo")),
        ImageFormat("PNG", "image/png", "png"),
        ImageFormat("GIF", "image/gif", "gif"),
        ImageFormat("WEBP", "image/webp", "webp"),
        ImageFormat("AVIF", "image/avif", "avif"),
        ImageFormat("HEIF", "image/heic", "heic", ("heif", "hif")),
        ImageFormat("TIFF", "image/tiff", "tiff", ("tif",)),
        ImageFormat("BMP", "image/bmp", "bmp", ("dib",)),
    )
}

# What Image.open may be asked for (``formats=``): the accepted formats Pillow
# has an opener for. MPO has none of its own (the JPEG opener returns MPO
# files), and a name missing from Image.OPEN makes Image.open raise KeyError.
Image.init()
OPENABLE_FORMATS: tuple[str, ...] = tuple(name for name in ACCEPTED_FORMATS if name in Image.OPEN)

# Output formats for renditions: name -> (Pillow format, mime type).
OUTPUT_FORMATS: dict[str, ImageFormat] = {
    "jpeg": ImageFormat("JPEG", "image/jpeg", "jpg"),
    "png": ImageFormat("PNG", "image/png", "png"),
    "webp": ImageFormat("WEBP", "image/webp", "webp"),
    "avif": ImageFormat("AVIF", "image/avif", "avif"),
}
