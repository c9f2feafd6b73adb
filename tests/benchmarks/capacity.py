"""Storage figures for the README's capacity section: bytes and S3 requests per image.

    python -m tests.benchmarks.capacity [--json FILE]

Runs the service (test client, SQLite) on moto's S3 server and uploads
typical photos: camera-like JPEGs of 12 and 24 MP (the benchmark maker,
``image_fixtures.photo_like_jpeg``) and a phone-sized JPEG and PNG of the
corpus. For each it reports the bytes stored (original, preview, each
thumbnail preset) and the S3 requests the service made, counted by
operation with botocore's ``before-call`` event on the store's own client:
for the upload, for each thumbnail when it is not stored yet, and again
when it is (the first is a miss, the second a hit), with the time of each
request (moto answers on loopback: S3's own latency comes on top).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

PRESETS = ("small", "thumb", "medium", "large")


def _photos(folder: Path) -> list[tuple[str, Path]]:
    from tests.benchmarks.image_fixtures import photo_like_jpeg
    from tests.support.corpus import corpus_path

    return [
        ("24 MP camera JPEG", photo_like_jpeg(folder / "24mp.jpg", (6000, 4000), noise=16)),
        ("12 MP camera JPEG", photo_like_jpeg(folder / "12mp.jpg", (4000, 3000), noise=16)),
        ("corpus JPEG (Landscape_1)", corpus_path("orientation/Landscape_1.jpg")),
        ("corpus PNG (hopper)", corpus_path("valid/hopper.png")),
    ]


def measure() -> dict:
    from image_repo.http.context import services_of
    from tests.conftest import create_tenant, make_app
    from tests.support.s3_server import CREDENTIALS, REGION, moto_server, new_bucket, raw_client

    results = []
    with tempfile.TemporaryDirectory() as tmp, moto_server() as endpoint:
        folder = Path(tmp)
        raw = raw_client(endpoint)
        bucket = new_bucket(raw)
        app = make_app(
            {
                "TESTING": True,
                "ENV": "development",
                "DATA_DIR": folder / "data",
                "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite'}",
                "REDIS_URL": None,
                "RATELIMIT_ENABLED": False,
                "MAX_UPLOAD_BYTES": 256 * 2**20,
                "S3_BUCKET": bucket,
                "S3_ENDPOINT_URL": endpoint,
                "S3_REGION": REGION,
                "S3_ACCESS_KEY_ID": CREDENTIALS["access_key_id"],
                "S3_SECRET_ACCESS_KEY": CREDENTIALS["secret_access_key"],
            }
        )
        calls: Counter[str] = Counter()

        def count(model, **_kwargs):
            calls[model.name] += 1

        services_of(app).blob_store.client.meta.events.register("before-call.s3", count)
        tenant = create_tenant(app, "capacity")
        headers = tenant.headers()
        client = app.test_client()

        def objects() -> dict[str, int]:
            found, token = {}, None
            while True:
                extra = {"ContinuationToken": token} if token else {}
                page = raw.list_objects_v2(Bucket=bucket, **extra)
                found.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
                if not page.get("IsTruncated"):
                    return found
                token = page["NextContinuationToken"]

        def taken(run) -> tuple[dict[str, int], dict[str, int]]:
            """(S3 calls by operation, new objects and their sizes) of ``run()``."""
            before = objects()
            calls.clear()
            started = time.perf_counter()
            run()
            taken.ms = round((time.perf_counter() - started) * 1000, 1)
            after = objects()
            return dict(calls), {k: v for k, v in after.items() if k not in before}

        for label, path in _photos(folder):
            data = path.read_bytes()

            def upload(data=data, name=path.name):
                response = client.post(
                    "/images",
                    data={"image": (io.BytesIO(data), name)},
                    headers=headers,
                    content_type="multipart/form-data",
                )
                assert response.status_code == 201, response.get_data(as_text=True)[:300]
                upload.image = response.get_json()

            upload_calls, upload_objects = taken(upload)
            image = upload.image
            entry = {
                "photo": label,
                "size": f"{image['width']}x{image['height']}",
                "original_bytes": len(data),
                "upload_s3_calls": upload_calls,
                "upload_ms": taken.ms,
                "upload_objects": upload_objects,
                "preview_bytes": sum(v for k, v in upload_objects.items() if k.endswith("preview")),
                "renditions": {},
            }
            for preset in PRESETS:
                url = f"/images/{image['id']}/thumbnail?size={preset}"

                def get(url=url):
                    response = client.get(url, headers=headers)
                    assert response.status_code == 200, response.get_data(as_text=True)[:300]
                    get.cache = response.headers.get("X-Rendition-Cache")

                miss_calls, made = taken(get)
                miss, miss_ms = get.cache, taken.ms
                hit_calls, _ = taken(get)
                entry["renditions"][preset] = {
                    "bytes": sum(made.values()),
                    "miss_s3_calls": miss_calls,
                    "hit_s3_calls": hit_calls,
                    "cache": [miss, get.cache],
                    "ms": [miss_ms, taken.ms],
                }
            results.append(entry)
        services_of(app).engine.dispose()
    return {"photos": results}


def _total(calls: dict[str, int]) -> int:
    return sum(calls.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.capacity")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    # The app's access log goes to stdout, one line a request: keep it out of the report.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        found = measure()
    for entry in found["photos"]:
        print(
            f"{entry['photo']} ({entry['size']}): original {entry['original_bytes']:,} B, "
            f"preview {entry['preview_bytes']:,} B; upload {entry['upload_ms']} ms, S3 calls "
            f"{_total(entry['upload_s3_calls'])} {entry['upload_s3_calls']}"
        )
        for preset, r in entry["renditions"].items():
            print(
                f"  {preset:<6} {r['bytes']:>9,} B  uncached S3 calls {_total(r['miss_s3_calls'])} "
                f"{r['miss_s3_calls']}  cached {_total(r['hit_s3_calls'])} {r['hit_s3_calls']}  "
                f"{r['cache']} {r['ms']} ms"
            )
    if args.json:
        args.json.write_text(json.dumps(found, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
