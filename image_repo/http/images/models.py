"""How an image row is presented to clients (plain Python, no Flask)."""

from __future__ import annotations

from image_repo.db.models import Image
from image_repo.domain.image_fields import local_taken_at


class ImageModel:
    """An image as the API shows it: tag names, and capture time in its own offset."""

    def __init__(self, image: Image) -> None:
        self._image = image
        self.tags = [t.tag for t in image.tags]
        self.taken_at = local_taken_at(image)
        self.taken_at_offset_known = image.taken_at_offset is not None

    def __getattr__(self, name: str):
        return getattr(self._image, name)


class ImagePageModel:
    def __init__(self, images: list[Image], next_cursor: str | None) -> None:
        self.items = [ImageModel(image) for image in images]
        self.next_cursor = next_cursor
