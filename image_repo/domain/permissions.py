"""Permissions, and the groups that grant them.

Operations declare one permission each; an API key's group decides which
permissions it holds. The map can be replaced by configuration
(``IMAGE_REPO_GROUP_PERMISSIONS``); unknown groups hold nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

ACCOUNT_READ = "account:read"
IMAGES_READ = "images:read"
IMAGES_WRITE = "images:write"
IMAGES_DELETE = "images:delete"
# Deleting for good what is in the trash (restoring needs only images:write).
TRASH_PURGE = "trash:purge"
KEYS_MANAGE = "keys:manage"
# Held only by the operator credential, never by a tenant's key.
TENANTS_MANAGE = "tenants:manage"
# Reading /metrics when it is not public: the operator, or groups given it.
METRICS_READ = "metrics:read"
# Faces and people: seeing them; naming, hiding, merging, moving faces; the
# tenant's face-analysis switch (turning it off deletes every face and person).
PEOPLE_READ = "people:read"
PEOPLE_WRITE = "people:write"
FACES_MANAGE = "faces:manage"
# Creating, listing and revoking share links (public links to images or albums).
SHARES_MANAGE = "shares:manage"

ALL_PERMISSIONS = frozenset(
    {
        ACCOUNT_READ,
        IMAGES_READ,
        IMAGES_WRITE,
        IMAGES_DELETE,
        TRASH_PURGE,
        KEYS_MANAGE,
        TENANTS_MANAGE,
        METRICS_READ,
        PEOPLE_READ,
        PEOPLE_WRITE,
        FACES_MANAGE,
        SHARES_MANAGE,
    }
)

_READER = [ACCOUNT_READ, IMAGES_READ, PEOPLE_READ]
_CONTRIBUTOR = [*_READER, IMAGES_WRITE, SHARES_MANAGE, PEOPLE_WRITE]
_EDITOR = [*_CONTRIBUTOR, IMAGES_DELETE, TRASH_PURGE]
_ADMIN = [*_EDITOR, KEYS_MANAGE, FACES_MANAGE]

DEFAULT_GROUP_PERMISSIONS: dict[str, list[str]] = {
    "reader": _READER,
    "contributor": _CONTRIBUTOR,
    "editor": _EDITOR,
    "admin": _ADMIN,
}


def group_map(configured: Mapping[str, list[str]] | None) -> dict[str, frozenset[str]]:
    """The effective group map; raises ValueError on an unknown permission."""
    source = configured if configured is not None else DEFAULT_GROUP_PERMISSIONS
    result: dict[str, frozenset[str]] = {}
    for group, permissions in source.items():
        unknown = set(permissions) - ALL_PERMISSIONS
        if unknown:
            raise ValueError(f"group {group!r} names unknown permissions: {sorted(unknown)}")
        if TENANTS_MANAGE in permissions:
            raise ValueError(f"group {group!r}: {TENANTS_MANAGE} belongs to the operator only")
        result[group] = frozenset(permissions)
    return result
