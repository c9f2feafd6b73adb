"""How a trashed image is presented to clients (plain Python, no Flask)."""

from __future__ import annotations

from image_repo.db.models import Image
from image_repo.domain.trash import purge_at
from image_repo.http.images.models import ImageModel


class TrashedImageModel(ImageModel):
    """An image in the trash: the image as it was, and when it goes for good."""

    def __init__(self, image: Image, trash_days: int) -> None:
        super().__init__(image)
        self.purge_at = purge_at(image.trashed_at, trash_days)


class TrashPageModel:
    def __init__(self, images: list[Image], next_cursor: str | None, trash_days: int) -> None:
        self.items = [TrashedImageModel(image, trash_days) for image in images]
        self.next_cursor = next_cursor
