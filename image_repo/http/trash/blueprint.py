from image_repo.http.api import Blueprint

trash_bp = Blueprint(
    "trash",
    __name__,
    url_prefix="/trash",
    description="Deleted images, kept for a while: list, restore, or purge them for good.",
)
