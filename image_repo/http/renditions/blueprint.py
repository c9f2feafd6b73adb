from image_repo.http.api import Blueprint

renditions_bp = Blueprint(
    "renditions",
    __name__,
    url_prefix="/images",
    description="Thumbnails, resized or converted copies, and similar images.",
)
