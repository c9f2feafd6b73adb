from flask.views import MethodView

from image_repo.domain import tenancy
from image_repo.domain.permissions import ACCOUNT_READ, KEYS_MANAGE
from image_repo.http.auth import current_principal, group_names
from image_repo.http.errors import ErrorExample
from image_repo.http.keys.blueprint import keys_bp
from image_repo.http.keys.schemas import (
    KEY_CREATE_EXAMPLE,
    KEY_ID,
    KeyCreateSchema,
    KeyListSchema,
    KeySchema,
    NewKeySchema,
    WhoAmISchema,
)
from image_repo.http.sessions import db_session

NO_KEY = f"No key {KEY_ID['example']!r}."


@keys_bp.route("/keys")
class Keys(MethodView):
    @keys_bp.operation("listKeys", permission=KEYS_MANAGE)
    @keys_bp.response(200, KeyListSchema)
    def get(self):
        """List the tenant's API keys

        Revoked and expired keys are listed too; secrets never are.
        """
        return {"items": tenancy.list_keys(db_session(), current_principal().tenant_id)}

    @keys_bp.operation(
        "createKey",
        permission=KEYS_MANAGE,
        errors={
            422: [
                ErrorExample(
                    "Unknown group 'owner'; known groups: admin, contributor, editor, reader.",
                    summary="Unknown group",
                ),
                ErrorExample("expires_at must be in the future.", summary="Expiry in the past"),
            ]
        },
    )
    @keys_bp.arguments(KeyCreateSchema, example=KEY_CREATE_EXAMPLE)
    @keys_bp.response(201, NewKeySchema)
    def post(self, args):
        """Create an API key

        The answer carries the secret in `api_key`, shown this once only.
        """
        session = db_session()
        tenant = tenancy.get_tenant(session, tenant_id=current_principal().tenant_id)
        return tenancy.create_key(session, tenant, groups=group_names(), **args)


@keys_bp.route("/keys/<key_id:key_id>")
class KeyById(MethodView):
    @keys_bp.operation("getKey", permission=KEYS_MANAGE, errors={404: NO_KEY})
    @keys_bp.response(200, KeySchema)
    def get(self, key_id):
        """Show one API key"""
        return tenancy.get_key(db_session(), key_id, tenant_id=current_principal().tenant_id)

    @keys_bp.operation("revokeKey", permission=KEYS_MANAGE, errors={404: NO_KEY})
    @keys_bp.response(200, KeySchema)
    def delete(self, key_id):
        """Revoke an API key

        The key stops working at once, on every instance. Revoking twice is harmless.
        """
        return tenancy.revoke_key(db_session(), key_id, tenant_id=current_principal().tenant_id)


@keys_bp.route("/me")
class WhoAmI(MethodView):
    @keys_bp.operation("getCurrentKey", permission=ACCOUNT_READ)
    @keys_bp.response(200, WhoAmISchema)
    def get(self):
        """Show who the caller is

        The caller's tenant, key id, group and the permissions the group grants.
        """
        principal = current_principal()
        tenant = tenancy.get_tenant(db_session(), tenant_id=principal.tenant_id)
        return {
            "tenant_id": tenant.id,
            "tenant_name": tenant.name,
            "key_id": principal.key_id,
            "group": principal.group,
            "permissions": sorted(principal.permissions),
        }
