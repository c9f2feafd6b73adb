"""Where the test corpus lives (``tests/data/corpus``), and what its manifest says."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parents[1] / "data" / "corpus"


@cache
def manifest() -> dict[str, dict]:
    """The manifest: relative path -> expectations (read at test time)."""
    return json.loads((CORPUS_DIR / "manifest.json").read_text())


def corpus_files(expect: str | None = None) -> list[str]:
    return sorted(name for name, entry in manifest().items() if expect in (None, entry["expect"]))


def corpus_path(name: str) -> Path:
    return CORPUS_DIR / name
