from image_repo.http.api import Blueprint

keys_bp = Blueprint(
    "keys",
    __name__,
    url_prefix="/",
    description="API keys of the caller's tenant, and who the caller is.",
)
