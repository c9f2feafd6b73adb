"""The app's blob store, built on first use (so that commands like
``openapi write`` never touch the data folder)."""

from __future__ import annotations

from flask import Flask, current_app

from ..storage import BlobStore, LocalBlobStore


def init_storage(app: Flask) -> None:
    app.extensions["image_repo"]["blob_store"] = None


def blob_store_of(app: Flask) -> BlobStore:
    state = app.extensions["image_repo"]
    if state["blob_store"] is None:
        state["blob_store"] = LocalBlobStore(app.config["DATA_DIR"] / "blobs")
    return state["blob_store"]


def blob_store() -> BlobStore:
    return blob_store_of(current_app)
