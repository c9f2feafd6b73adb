from image_repo.http.api import Blueprint

landing_bp = Blueprint(
    "landing",
    __name__,
    url_prefix="/",
    description="Who this service is; a first call to check that it answers.",
)
