"""Opaque, unguessable identifiers: a short type prefix and 100 random bits."""

from __future__ import annotations

import base64
import secrets


def new_id(prefix: str) -> str:
    """``prefix_`` plus 20 lower-case base32 characters (100 bits from the OS CSPRNG)."""
    body = base64.b32encode(secrets.token_bytes(15)).decode().lower()[:20]
    return f"{prefix}_{body}"
