from image_repo.http.api import Blueprint

operations_bp = Blueprint(
    "operations",
    __name__,
    url_prefix="/",
    description="For operators and load balancers: health and metrics.",
)
