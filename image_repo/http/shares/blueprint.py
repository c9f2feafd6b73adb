from image_repo.http.api import Blueprint

shares_bp = Blueprint(
    "shares",
    __name__,
    url_prefix="/shares",
    description="Share links: public, expiring links to one image or one collection.",
)
