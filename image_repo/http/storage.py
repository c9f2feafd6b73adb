"""The app's blob store (the data folder, or S3 when a bucket is configured),
built on first use in each worker: commands like ``openapi write`` never
touch it, and no S3 connection is shared across a fork."""

from __future__ import annotations

from flask import Flask, current_app

from image_repo.storage import BlobStore, LocalBlobStore


def init_storage(app: Flask) -> None:
    app.extensions["image_repo"]["blob_store"] = None


def make_blob_store(config) -> BlobStore:
    if config.get("S3_BUCKET"):
        from image_repo.storage import S3BlobStore

        return S3BlobStore(
            config["S3_BUCKET"],
            prefix=config.get("S3_PREFIX") or "",
            endpoint_url=config.get("S3_ENDPOINT_URL"),
            region=config.get("S3_REGION"),
            access_key_id=config.get("S3_ACCESS_KEY_ID"),
            secret_access_key=config.get("S3_SECRET_ACCESS_KEY"),
            addressing_style=config.get("S3_ADDRESSING_STYLE"),
        )
    return LocalBlobStore(config["DATA_DIR"] / "blobs")


def blob_store_of(app: Flask) -> BlobStore:
    state = app.extensions["image_repo"]
    if state["blob_store"] is None:
        state["blob_store"] = make_blob_store(app.config)
    return state["blob_store"]


def blob_store() -> BlobStore:
    return blob_store_of(current_app)
