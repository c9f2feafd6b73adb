from image_repo.http.api import Blueprint

tenants_bp = Blueprint(
    "tenants",
    __name__,
    url_prefix="/tenants",
    description="Tenant management, for the operator credential only.",
)
