from image_repo.http.api import Blueprint

collections_bp = Blueprint(
    "collections",
    __name__,
    url_prefix="/collections",
    description="Collections (albums): named sets of the tenant's images.",
)
