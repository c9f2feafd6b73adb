"""Similar images by perceptual hash: the tenant's images within a Hamming distance."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from image_repo.db.models import Image
from image_repo.domain.trash import NOT_TRASHED
from image_repo.imaging.hashes import hamming


def similar_images(
    session: Session, image: Image, *, max_distance: int, limit: int
) -> list[tuple[int, Image]]:
    """Nearest first (ties by id); the image itself is not included."""
    if image.phash is None:
        return []
    candidates = session.execute(
        select(Image.id, Image.phash).where(
            Image.tenant_id == image.tenant_id,
            Image.id != image.id,
            Image.phash.is_not(None),
            NOT_TRASHED,
        )
    )
    near = sorted(
        (distance, image_id)
        for image_id, phash in candidates
        if (distance := hamming(image.phash, phash)) <= max_distance
    )[:limit]
    if not near:
        return []
    rows = {
        i.id: i for i in session.scalars(select(Image).where(Image.id.in_([i for _, i in near])))
    }
    return [(distance, rows[image_id]) for distance, image_id in near]
