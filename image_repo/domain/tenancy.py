"""Tenants and their API keys: creation, listing, revocation, authentication.

A key looks like ``key_<20 base32>.<secret>``: the part before the dot is its
public id (shown in listings, used to revoke), the whole string is the
secret, shown once at creation. Only its SHA-256 is stored; random 256-bit
secrets need no slow hash. Authentication looks the row up by id and
compares hashes in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from image_repo.db.models import ApiKey, Tenant
from image_repo.db.types import utcnow
from image_repo.domain.errors import Conflict, InvalidInput, NotFound
from image_repo.domain.ids import new_id

KEY_PATTERN = re.compile(r"^(key_[a-z2-7]{20})\.([A-Za-z0-9_-]{43})$")
TENANT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
# What the quota columns hold (INTEGER and BIGINT).
MAX_IMAGES_QUOTA = 2**31 - 1
MAX_BYTES_QUOTA = 2**63 - 1
# last_used_at is refreshed at most this often, so reads stay reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewKey:
    """A key just created: the only time its secret is known."""

    key: ApiKey
    api_key: str

    def __getattr__(self, name: str):
        # Reads like the key itself, plus the secret, for serialising.
        return getattr(self.key, name)


@dataclass(frozen=True)
class NewTenant:
    """A tenant just created, with its first admin key."""

    tenant: Tenant
    admin_key: NewKey

    def __getattr__(self, name: str):
        return getattr(self.tenant, name)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant's key, or the operator."""

    tenant_id: str | None
    key_id: str | None
    group: str | None
    permissions: frozenset[str]
    # Authenticating it wrote the key's last_used_at (for the caller to commit).
    recorded_use: bool = field(default=False, compare=False)

    @property
    def is_operator(self) -> bool:
        return self.tenant_id is None


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _check_tenant_name(name: str) -> str:
    name = name.strip()
    if not TENANT_NAME_PATTERN.match(name):
        raise InvalidInput(
            "A tenant name is 1 to 100 letters, digits, spaces, dots, dashes or underscores, "
            "starting with a letter or digit."
        )
    return name


def create_tenant(
    session: Session,
    name: str,
    *,
    max_images: int | None = None,
    max_bytes: int | None = None,
) -> Tenant:
    tenant = Tenant(
        id=new_id("ten"),
        name=_check_tenant_name(name),
        status="active",
        created_at=utcnow(),
        max_images=max_images,
        max_bytes=max_bytes,
    )
    try:
        with session.begin_nested():
            session.add(tenant)
    except IntegrityError as exc:
        raise Conflict(f"A tenant named {tenant.name!r} exists already.") from exc
    return tenant


def create_tenant_with_admin_key(
    session: Session, name: str, *, groups: frozenset[str] | set[str], **quotas: int | None
) -> NewTenant:
    tenant = create_tenant(session, name, **quotas)
    admin_key = create_key(session, tenant, group="admin", groups=groups, name="admin key")
    return NewTenant(tenant=tenant, admin_key=admin_key)


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.created_at, Tenant.id)))


def get_tenant(
    session: Session, *, name: str | None = None, tenant_id: str | None = None
) -> Tenant:
    query = select(Tenant)
    query = (
        query.where(Tenant.name == name)
        if name is not None
        else query.where(Tenant.id == tenant_id)
    )
    tenant = session.scalar(query)
    if tenant is None:
        raise NotFound(f"No tenant {name or tenant_id!r}.")
    return tenant


def create_key(
    session: Session,
    tenant: Tenant,
    *,
    group: str,
    groups: frozenset[str] | set[str],
    name: str | None = None,
    expires_at: datetime | None = None,
) -> NewKey:
    if group not in groups:
        raise InvalidInput(f"Unknown group {group!r}; known groups: {', '.join(sorted(groups))}.")
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at must be in the future.")
    key_id = new_id("key")
    api_key = f"{key_id}.{secrets.token_urlsafe(32)}"
    key = ApiKey(
        id=key_id,
        tenant_id=tenant.id,
        name=(name or f"{group} key").strip()[:100],
        group=group,
        secret_sha256=hash_key(api_key),
        created_at=now,
        expires_at=expires_at,
    )
    session.add(key)
    session.flush()
    return NewKey(key=key, api_key=api_key)


def list_keys(session: Session, tenant_id: str) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.tenant_id == tenant_id)
    return list(session.scalars(query.order_by(ApiKey.created_at, ApiKey.id)))


def get_key(session: Session, key_id: str, *, tenant_id: str | None = None) -> ApiKey:
    """A key by id; with ``tenant_id``, only that tenant's (others look absent)."""
    key = session.get(ApiKey, key_id)
    if key is None or (tenant_id is not None and key.tenant_id != tenant_id):
        raise NotFound(f"No key {key_id!r}.")
    return key


def revoke_key(session: Session, key_id: str, *, tenant_id: str | None = None) -> ApiKey:
    key = get_key(session, key_id, tenant_id=tenant_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
    return key


# What authentication reads: the key's row and its tenant's status, no ORM objects.
KEY_COLUMNS = (
    ApiKey.id,
    ApiKey.tenant_id,
    ApiKey.group,
    ApiKey.secret_sha256,
    ApiKey.expires_at,
    ApiKey.revoked_at,
    ApiKey.last_used_at,
    Tenant.status.label("tenant_status"),
)


def key_row_query():
    """SELECT of KEY_COLUMNS; add ``.where(ApiKey.id == ...)`` (and more joins)."""
    return select(*KEY_COLUMNS).join(Tenant, Tenant.id == ApiKey.tenant_id)


def key_row_is_valid(row, api_key: str, now: datetime) -> bool:
    """Whether a KEY_COLUMNS row authenticates ``api_key`` at ``now``."""
    return hmac.compare_digest(row.secret_sha256, hash_key(api_key)) and key_row_is_active(row, now)


def key_row_is_active(row, now: datetime) -> bool:
    """Whether a KEY_COLUMNS row's key works at ``now`` (not revoked, not expired, its
    tenant active): what a URL signed for the key needs (it carries no secret)."""
    return (
        row.revoked_at is None
        and (row.expires_at is None or row.expires_at > now)
        and row.tenant_status == "active"
    )


def last_used_is_stale(row, now: datetime) -> bool:
    return row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION


def authenticate(
    session: Session,
    api_key: str,
    group_permissions: dict[str, frozenset[str]],
) -> Principal | None:
    """The principal for a presented key, or None when it is not a valid key now.

    A ``last_used_at`` older than LAST_USED_RESOLUTION is set to now in the
    session's transaction (``recorded_use``): the caller commits it.
    """
    match = KEY_PATTERN.match(api_key)
    if match is None:
        return None
    key = session.execute(key_row_query().where(ApiKey.id == match.group(1))).first()
    now = utcnow()
    if key is None or not key_row_is_valid(key, api_key, now):
        return None
    recorded = last_used_is_stale(key, now)
    if recorded:
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    return Principal(
        tenant_id=key.tenant_id,
        key_id=key.id,
        group=key.group,
        permissions=group_permissions.get(key.group, frozenset()),
        recorded_use=recorded,
    )
