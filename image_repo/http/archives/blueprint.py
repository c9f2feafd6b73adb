from image_repo.http.api import Blueprint

archives_bp = Blueprint(
    "archives",
    __name__,
    url_prefix="",
    description="ZIP downloads of an album or a selection of images, streamed as built.",
)
