from image_repo.http.api import Blueprint

images_bp = Blueprint(
    "images",
    __name__,
    url_prefix="/images",
    description="Upload, list, fetch, update and delete the tenant's images.",
)
