"""Signed rendition URLs through the fast path vs the same bytes as a static file.

A signed URL (``POST /images/{id}/signed-url``) of a stored 256 px JPEG
rendition, fetched with no key, is answered by the rendition front
(http/front.py: one query for the signing key, the image and the URL secret,
the HMAC, then the file), against its bytes served by a bare Flask app with
``send_file`` under the same gunicorn config module and worker count: the
same baseline as benchmark 4 of bench_renditions.py, with its harness
(``alternate``, best run per side, server CPU per request). Target: at least
0.9. Rate limits are off on both sides, as in bench_renditions.py (the front
charges the signing key's read budget when they are on).

Run (``-n 0``)::

    BENCH_ROUNDS=2 .venv/bin/python -m pytest tests/benchmarks/bench_signed_urls.py \
        -o python_files='bench_*.py' -s -n 0
"""

from __future__ import annotations

import os
import time

import pytest
import requests

from tests.support.live_server import gunicorn_server

from .harness import (
    alternate,
    best_rps,
    best_server_cpu_us,
    describe,
    environment_info,
    write_results,
)
from .image_fixtures import photo_like_jpeg
from .renditions_support import STATIC_DIR_ENV, prepare_service, wait_idle

TARGET = 0.9  # signed via the front / static file >= 0.9
THUMB = 256
SERVICE_APP = "image_repo.wsgi:app"
STATIC_APP = "tests.benchmarks.renditions_support:create_static_app()"


@pytest.fixture(scope="module", autouse=True)
def _alone():
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("run benchmarks alone: add -n 0 (pytest-xdist would run them side by side)")


def test_signed_rendition_vs_static_file(bench_settings, run_load, service_env, tmp_path):
    settings = bench_settings
    workers = settings.workers
    env = {**service_env, "IMAGE_REPO_RATELIMIT_ENABLED": "false"}
    key = prepare_service(env)
    headers = {"X-API-Key": key}
    photo = photo_like_jpeg(tmp_path / "bench.jpg", (2400, 1600), noise=16)
    static_dir = tmp_path / "static"
    static_dir.mkdir()
    static_env = {**env, STATIC_DIR_ENV: str(static_dir)}

    with (
        gunicorn_server(env, workers=workers, app=SERVICE_APP) as ours,
        gunicorn_server(static_env, workers=workers, app=STATIC_APP) as static,
    ):
        uploaded = requests.post(
            f"{ours}/images",
            files={"image": (photo.name, photo.read_bytes(), "image/jpeg")},
            headers=headers,
            timeout=120,
        )
        assert uploaded.status_code == 201, uploaded.text[:500]
        image_id = uploaded.json()["id"]
        signed = requests.post(
            f"{ours}/images/{image_id}/signed-url",
            json={"width": THUMB, "height": THUMB, "format": "jpeg", "expires_in": 86400},
            headers=headers,
            timeout=30,
        )
        assert signed.status_code == 200, signed.text[:500]
        signed_url = signed.json()["url"]
        static_url = f"{static}/static-files/thumb-{THUMB}.jpg"

        # Made once by the full stack (which teaches the front the query), then
        # every worker's front has it: a few requests per worker reach them all.
        first = requests.get(signed_url, timeout=60)
        assert first.status_code == 200 and first.headers["X-Rendition-Cache"] == "miss"
        for _ in range(4 * workers):
            again = requests.get(signed_url, timeout=60)
            assert again.status_code == 200 and again.content == first.content
        assert again.headers["Cache-Control"].startswith("public, max-age=")
        (static_dir / f"thumb-{THUMB}.jpg").write_bytes(first.content)
        served = requests.get(static_url, timeout=10)
        assert served.status_code == 200 and served.content == first.content

        def fixed(url: str):
            def run(seconds: float | None = None):
                result = run_load(url, seconds)  # no key: the signature is the credential
                result.raw["idle_wait_s"] = wait_idle(url)
                return result

            return run

        sides = {"signed via front": fixed(signed_url), "static file": fixed(static_url)}
        began = time.perf_counter()
        warmups = {name: run(settings.warmup) for name, run in sides.items()}
        runs = alternate(sides, settings.rounds)
        load_seconds = time.perf_counter() - began

    best = {name: best_rps(side) for name, side in runs.items()}
    cpu = {name: best_server_cpu_us(side) for name, side in runs.items()}
    ratio = best["signed via front"] / best["static file"]
    cpu_ratio = (
        cpu["static file"] / cpu["signed via front"]
        if cpu["signed via front"] and cpu["static file"]
        else None
    )
    print()
    print(
        f"signed urls: {settings.rounds} alternating runs of {settings.seconds:g} s per side "
        f"(+{settings.warmup:g} s warm-up), best run kept; {settings.connections} connections; "
        f"{workers} gunicorn workers; load by {settings.tool()}; {load_seconds:.0f} s of load; "
        f"load average before: {os.getloadavg()[0]:.1f}"
    )
    for name, side in runs.items():
        for i, run in enumerate(side, 1):
            print(f"  {name:<17} run {i}: {describe(run)}")
    met = "met" if ratio >= TARGET else "NOT met"
    print(
        f"signed urls: signed rendition via front {best['signed via front']:.1f} req/s, static "
        f"file {best['static file']:.1f} req/s, ratio {ratio:.2f} (target >= {TARGET}: {met})"
    )
    if cpu_ratio is not None:
        print(
            f"signed urls:   by server CPU per request: front {cpu['signed via front']:.0f} us, "
            f"static {cpu['static file']:.0f} us, ratio {cpu_ratio:.2f}"
        )
    data = {
        "benchmark": "signed_urls",
        "settings": settings.__dict__,
        "environment": environment_info(),
        "best_rps": best,
        "best_server_cpu_us_per_request": cpu,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "target": TARGET,
        "target_met": ratio >= TARGET,
        "warmups": warmups,
        "runs": runs,
    }
    for path in write_results("signed_urls", data, tmp_path, settings.results_dir):
        print(f"signed urls: results written to {path}")
    for name, side in [*runs.items(), *((n, [w]) for n, w in warmups.items())]:
        for run in side:
            assert run.requests > 0, (name, run)
            assert run.errors == 0 and run.bad_status == 0, (name, run)
