from flask import current_app, request
from flask.views import MethodView

from image_repo.db.types import utcnow
from image_repo.domain import shares
from image_repo.domain.permissions import SHARES_MANAGE
from image_repo.http.auth import current_principal
from image_repo.http.errors import ErrorExample, invalid
from image_repo.http.images.resources import BAD_CURSOR
from image_repo.http.paging import decode_cursor, encode_cursor
from image_repo.http.sessions import db_session
from image_repo.http.shares.blueprint import shares_bp
from image_repo.http.shares.schemas import (
    SHARE_CREATE_EXAMPLE,
    SHARE_ID,
    NewShareSchema,
    ShareCreateSchema,
    ShareListQuerySchema,
    SharePageSchema,
    ShareSchema,
)

CURSOR_CONTEXT = "shares"
NO_SHARE = f"No share {SHARE_ID!r}."


def _tenant_id() -> str:
    return current_principal().tenant_id


def _view(share) -> dict:
    data = {
        name: getattr(share, name)
        for name in (
            "id",
            "image_id",
            "collection_id",
            "label",
            "allow_original",
            "created_at",
            "expires_at",
            "view_count",
            "last_viewed_at",
        )
    }
    data["kind"] = "image" if share.image_id else "collection"
    data["has_password"] = share.password_hash is not None
    data["expired"] = share.expires_at <= utcnow()
    return data


def share_url(token: str) -> str:
    return f"{request.host_url.rstrip('/')}{request.script_root}/s/{token}"


@shares_bp.route("")
class Shares(MethodView):
    @shares_bp.operation("listShares", permission=SHARES_MANAGE, errors={422: BAD_CURSOR})
    @shares_bp.arguments(ShareListQuerySchema(), location="query")
    @shares_bp.response(200, SharePageSchema)
    def get(self, args):
        """List share links

        Oldest first, expired ones included until deleted; pass `next_cursor`
        back as `cursor` for the next page. The links themselves are not shown
        (only their hash is kept).
        """
        items, after = shares.list_shares(
            db_session(),
            _tenant_id(),
            after=decode_cursor(args.get("cursor"), CURSOR_CONTEXT),
            limit=args["limit"],
        )
        return {
            "items": [_view(s) for s in items],
            "next_cursor": encode_cursor(after, CURSOR_CONTEXT),
        }

    @shares_bp.operation(
        "createShare",
        permission=SHARES_MANAGE,
        errors={
            422: [
                ErrorExample(
                    "A share shows one image or one collection: give image_id or collection_id.",
                    summary="Nothing to share",
                ),
                invalid("json", "expires_in", "Must be greater than or equal to 1."),
                ErrorExample(
                    "image_id 'img_k3j5h6g7f2d4s5a6q2w3' is not one of the tenant's own.",
                    {"json": {"image_id": ["not found"]}},
                    summary="No such image",
                ),
            ],
        },
    )
    @shares_bp.arguments(ShareCreateSchema, example=SHARE_CREATE_EXAMPLE)
    @shares_bp.response(201, NewShareSchema)
    def post(self, args):
        """Create a share link

        For one image or one collection (`image_id` or `collection_id`). The
        answer's `url` opens a page anyone can see, with no key, until the link
        expires or is deleted (an id that is not the tenant's own: 422): the image (or the collection as a grid) with
        renditions only, unless `allow_original`. With a `password`, visitors
        give it first. The link is shown only in this answer.
        """
        config = current_app.config
        new = shares.create_share(
            db_session(),
            _tenant_id(),
            image_id=args.get("image_id"),
            collection_id=args.get("collection_id"),
            expires_in=args.get("expires_in", config["SHARE_DEFAULT_TTL"]),
            max_expires_in=config["SHARE_MAX_TTL"],
            allow_original=args["allow_original"],
            password=args.get("password"),
            label=args.get("label"),
            created_by_key_id=current_principal().key_id,
        )
        view = {**_view(new.share), "url": share_url(new.token)}
        return view, 201, {"Location": f"{request.script_root}/shares/{new.id}"}


@shares_bp.route("/<share_id:share_id>")
class ShareById(MethodView):
    @shares_bp.operation("getShare", permission=SHARES_MANAGE, errors={404: NO_SHARE})
    @shares_bp.response(200, ShareSchema)
    def get(self, share_id):
        """Show a share link (its views and expiry; not the link itself)"""
        return _view(shares.get_share(db_session(), _tenant_id(), share_id))

    @shares_bp.operation("deleteShare", permission=SHARES_MANAGE, errors={404: NO_SHARE})
    @shares_bp.response(204)
    def delete(self, share_id):
        """Delete (revoke) a share link

        The link stops working at once, for pages and images alike.
        """
        shares.delete_share(db_session(), _tenant_id(), share_id)
