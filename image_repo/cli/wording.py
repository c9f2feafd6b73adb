"""Counts in the words people read: "1 file", "2 files"."""

from __future__ import annotations


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """``count`` and the noun in the number it takes (``plural`` for irregular ones)."""
    noun = singular if count == 1 else (plural or singular + "s")
    return f"{count} {noun}"
