"""Where the shared test corpus lives, and what its manifest says."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

CORPUS_DIR = Path(
    os.environ.get(
        "IMAGE_REPO_CORPUS_DIR",
        Path(__file__).resolve().parents[2] / "shared" / "corpus",
    )
)


@cache
def manifest() -> dict[str, dict]:
    """The manifest: relative path -> expectations (read at test time)."""
    return json.loads((CORPUS_DIR / "manifest.json").read_text())


def corpus_files(expect: str | None = None) -> list[str]:
    return sorted(name for name, entry in manifest().items() if expect in (None, entry["expect"]))


def corpus_path(name: str) -> Path:
    return CORPUS_DIR / name
