"""What clients and caches are told about renditions: the rendition views and
the rendition front send the same headers from here."""

from __future__ import annotations

# A rendition never changes for its URL: caches may keep it for a year. Vary
# keeps shared caches from answering one key's request with another's copy.
CACHE_MAX_AGE = 31536000
CACHE_CONTROL = f"public, max-age={CACHE_MAX_AGE}, immutable"
VARY = ("Authorization", "X-API-Key")
# Whether a rendition was made for this request ("miss") or found made ("hit").
CACHE_RESULT_HEADER = "X-Rendition-Cache"


def signed_cache_control(max_age: int) -> str:
    """What a signed URL's answer says: anyone may keep it until the URL expires."""
    return f"public, max-age={max_age}"
