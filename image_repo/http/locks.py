"""The app's named locks: Redis when configured (shared by instances), else files."""

from __future__ import annotations

from flask import current_app

from image_repo.domain.locks import FileLocks, RedisLocks


def locks():
    state = current_app.extensions["image_repo"]
    if state.get("locks") is None:
        url = current_app.config.get("REDIS_URL")
        state["locks"] = (
            RedisLocks(url) if url else FileLocks(current_app.config["DATA_DIR"] / "locks")
        )
    return state["locks"]
