from flask.views import MethodView

from image_repo.domain import tenancy
from image_repo.domain.permissions import TENANTS_MANAGE
from image_repo.http.auth import group_names
from image_repo.http.errors import invalid
from image_repo.http.sessions import db_session
from image_repo.http.tenants.blueprint import tenants_bp
from image_repo.http.tenants.schemas import (
    TENANT_CREATE_EXAMPLE,
    NewTenantSchema,
    TenantCreateSchema,
    TenantListSchema,
)


@tenants_bp.route("")
class Tenants(MethodView):
    @tenants_bp.operation("listTenants", permission=TENANTS_MANAGE)
    @tenants_bp.response(200, TenantListSchema)
    def get(self):
        """List tenants (operator)"""
        return {"items": tenancy.list_tenants(db_session())}

    @tenants_bp.operation(
        "createTenant",
        permission=TENANTS_MANAGE,
        errors={
            409: f"A tenant named {TENANT_CREATE_EXAMPLE['name']!r} exists already.",
            422: invalid(
                "json",
                "name",
                "Letters, digits, spaces, dots, dashes or underscores, "
                "starting with a letter or digit.",
            ),
        },
    )
    @tenants_bp.arguments(TenantCreateSchema, example=TENANT_CREATE_EXAMPLE)
    @tenants_bp.response(201, NewTenantSchema)
    def post(self, args):
        """Create a tenant and its first admin key (operator)

        The admin key's secret is in `admin_key.api_key`, shown this once only.
        """
        return tenancy.create_tenant_with_admin_key(db_session(), groups=group_names(), **args)
