"""Previews of every format: what the preview job buys for PNG and HEIC originals.

Two measurements, each a ratio against a baseline taken in the same run:

1. **Uncached thumbnails of a 24 MP PNG over HTTP vs thumbor.** The same race
   as bench_renditions.py's JPEG one (``load_varying``: every request asks for
   a size never asked before; as many single-process thumbor instances as
   gunicorn workers, a load process each, rates added; best of the alternated
   rounds), on a 6000 x 4000 PNG (the benchmarks' photo upscaled, with
   sensor-like noise): ``GET /images/{id}/render?width=W&height=H&format=jpeg``
   through gunicorn, after the upload's preview job has run (an
   ``image-repo worker`` beside it), against thumbor 7's
   ``/unsafe/fit-in/WxH/filters:format(jpeg)/bench.png`` on the same file.
   Target: ours / thumbor at least 2.
2. **A 24 MP HEIC rendition with its preview vs without.** In process, the
   renderer's two entries on the same picture: ``render_preview`` from the
   preview the job makes (``imaging.render.previews``) against ``render`` of
   the original, alternating, a 256 px JPEG thumbnail each (another width
   every round), medians. Target: at most 0.3x the time.

Run (``-n 0``, alone on the machine)::

    .venv/bin/python -m pytest tests/benchmarks/bench_previews.py -o python_files='bench_*.py' -s -n 0

thumbor comes from its own venv (see renditions_support.py); without it the
first measurement is skipped with a note.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.live_server import REPO_ROOT, gunicorn_server

from .harness import (
    alternate,
    best_rps,
    best_server_cpu_us,
    describe,
    environment_info,
    write_results,
)
from .image_fixtures import photo_like_jpeg
from .renditions_support import (
    find_thumbor,
    load_varying,
    next_start,
    prepare_service,
    thumbor_servers,
    thumbor_version,
    wait_idle,
)

PNG_TARGET = 2.0  # ours / thumbor >= 2
HEIC_TARGET = 0.3  # with preview / without <= 0.3
PHOTO_SIZE = (6000, 4000)  # 24 MP
PHOTO_NOISE = 16
QUALITY = 82  # our JPEG default; thumbor is set to it too
THUMB = 256


@pytest.fixture(scope="module", autouse=True)
def _alone():
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("run benchmarks alone: add -n 0")


def _photo(folder: Path, fmt: str, name: str, **options) -> Path:
    from PIL import Image

    jpeg = photo_like_jpeg(folder / "source.jpg", PHOTO_SIZE, noise=PHOTO_NOISE)
    with Image.open(jpeg) as im:
        im.save(folder / name, fmt, **options)
    jpeg.unlink()
    return folder / name


@pytest.fixture(scope="module")
def png_photo(tmp_path_factory) -> Path:
    """The 24 MP PNG in a folder of its own (thumbor's file-loader root)."""
    return _photo(tmp_path_factory.mktemp("previews-png"), "PNG", "bench.png", compress_level=6)


@pytest.fixture(scope="module")
def heic_photo(tmp_path_factory) -> Path:
    import pillow_heif  # noqa: F401  (registers HEIF with Pillow)

    return _photo(tmp_path_factory.mktemp("previews-heic"), "HEIF", "bench.heic", quality=90)


def _wait_for_preview(env: dict[str, str], base: str, headers: dict, image_id: str) -> float:
    """Run an ``image-repo worker`` until the image's preview is done; the seconds it took."""
    began = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "-m", "image_repo", "worker", "--threads", "1"],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - began < 300:
            shown = requests.get(f"{base}/images/{image_id}", headers=headers, timeout=30).json()
            states = {a["kind"]: a["state"] for a in shown["analyses"]}
            if states.get("preview") == "done":
                return time.perf_counter() - began
            assert states.get("preview") == "pending", states
            assert worker.poll() is None, "the worker exited"
            time.sleep(0.2)  # the job runs in the worker
        raise AssertionError("the preview job did not finish within 300 s")
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def test_png_thumbnails_vs_thumbor(bench_settings, service_env, png_photo, tmp_path):
    exe = find_thumbor()
    if exe is None:
        pytest.skip(
            "thumbor not found: python3.11 -m venv /tmp/thumbor-venv && "
            "/tmp/thumbor-venv/bin/pip install thumbor (or set BENCH_THUMBOR)"
        )
    settings = bench_settings
    workers = settings.workers
    seconds = max(settings.seconds, 15.0)  # thumbor takes about a second per request here
    connections = int(os.environ.get("BENCH_UNCACHED_CONNECTIONS", 2 * workers))
    env = {**service_env, "IMAGE_REPO_RATELIMIT_ENABLED": "false"}
    headers = {"X-API-Key": prepare_service(env)}
    with (
        gunicorn_server(env, workers=workers) as ours,
        thumbor_servers(
            exe, png_photo.parent, instances=workers, quality=QUALITY, workdir=tmp_path
        ) as thumbor,
    ):
        uploaded = requests.post(
            f"{ours}/images",
            files={"image": (png_photo.name, png_photo.read_bytes(), "image/png")},
            headers=headers,
            timeout=300,
        )
        assert uploaded.status_code == 201, uploaded.text[:500]
        image = uploaded.json()
        job_seconds = _wait_for_preview(env, ours, headers, image["id"])

        ours_path = f"/images/{image['id']}/render?width={{w}}&height={{h}}&format=jpeg"
        thumbor_path = "/unsafe/fit-in/{w}x{h}/filters:format(jpeg)/bench.png"
        _check(ours + ours_path.format(w=301, h=977), headers)
        for instance in thumbor:
            _check(instance + thumbor_path.format(w=301, h=977), {})

        starts: dict[str, int] = {}

        def varying(name: str, bases, template: str):
            def run(length: float | None = None):
                result = load_varying(
                    bases,
                    template,
                    start=starts.get(name, 0),
                    seconds=seconds if length is None else length,
                    connections=connections,
                    threads=settings.threads,
                    headers=headers,
                    tool=settings.tool(),
                )
                starts[name] = next_start(result)
                for base in [bases] if isinstance(bases, str) else bases:
                    wait_idle(base)
                return result

            return run

        sides = {
            "ours uncached, png": varying("ours", ours, ours_path),
            "thumbor fit-in, png": varying("thumbor", thumbor, thumbor_path),
        }
        for run in sides.values():
            run(settings.warmup)
        runs = alternate(sides, settings.rounds)

    best = {name: best_rps(side) for name, side in runs.items()}
    cpu = {name: best_server_cpu_us(side) for name, side in runs.items()}
    ratio = best["ours uncached, png"] / best["thumbor fit-in, png"]
    print()
    print(
        f"previews: {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} PNG {png_photo.stat().st_size / 2**20:.1f} MiB; "
        f"preview job {job_seconds:.1f} s; {thumbor_version(exe)}; {settings.rounds} rounds of "
        f"{seconds:g} s, {connections} connections, {workers} workers / thumbor instances"
    )
    for name, side in runs.items():
        for i, run in enumerate(side, 1):
            print(f"  {name:<20} run {i}: {describe(run)}")
    met = "met" if ratio >= PNG_TARGET else "NOT met"
    print(
        f"previews: uncached thumbnails of a 24 MP PNG, ours {best['ours uncached, png']:.1f} req/s, "
        f"thumbor {best['thumbor fit-in, png']:.1f} req/s, ratio {ratio:.2f} "
        f"(target >= {PNG_TARGET:g}: {met})"
    )
    if cpu["ours uncached, png"] and cpu["thumbor fit-in, png"]:
        cpu_ratio = cpu["thumbor fit-in, png"] / cpu["ours uncached, png"]
        print(f"previews:   by server CPU per request: ratio {cpu_ratio:.2f}")
    data = {
        "benchmark": "previews_png_vs_thumbor",
        "environment": environment_info(),
        "best_rps": best,
        "cpu_per_request_us": cpu,
        "ratio": ratio,
        "target": PNG_TARGET,
        "target_met": ratio >= PNG_TARGET,
        "preview_job_s": job_seconds,
    }
    write_results("previews_png_vs_thumbor", data, tmp_path, settings.results_dir)


def _check(url: str, headers: dict) -> None:
    from PIL import Image

    response = requests.get(url, headers=headers, timeout=120)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    with Image.open(io.BytesIO(response.content)) as im:
        assert (im.format, im.size) == ("JPEG", (301, 201)), (url, im.format, im.size)


def test_heic_rendition_with_and_without_preview(bench_settings, heic_photo, tmp_path):
    from PIL import Image

    from image_repo.imaging.limits import DecodeLimits
    from image_repo.imaging.render import RenderParams, observing, render, render_preview
    from image_repo.imaging.render.previews import make_preview

    limits = DecodeLimits(decode_seconds=120)  # a busy machine must not fail the run
    rounds = int(os.environ.get("BENCH_RENDER_ROUNDS", 9))
    began = time.perf_counter()
    preview = make_preview(heic_photo, limits=limits)
    job_seconds = time.perf_counter() - began
    assert preview is not None
    with Image.open(heic_photo) as im:
        full_size = im.size

    def without(width: int) -> bytes:
        out = io.BytesIO()
        render(heic_photo, RenderParams(width=width, format="jpeg"), out, limits=limits)
        return out.getvalue()

    def with_preview(width: int) -> bytes:
        out = io.BytesIO()
        made = render_preview(
            io.BytesIO(preview), full_size, RenderParams(width=width, format="jpeg"), out,
            limits=limits,
        )  # fmt: skip
        assert made is not None
        return out.getvalue()

    sides = {"without preview": without, "with preview": with_preview}
    with observing() as decodes:
        outputs = {name: fn(THUMB) for name, fn in sides.items()}
    assert [d.source for d in decodes] == ["original", "preview"]
    sizes = {name: Image.open(io.BytesIO(data)).size for name, data in outputs.items()}
    assert len(set(sizes.values())) == 1, sizes

    wall: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(rounds):
        width = THUMB + i  # another rendition every round, as uncached requests are
        for name in list(sides)[i % 2 :] + list(sides)[: i % 2]:
            start = time.perf_counter()
            sides[name](width)
            wall[name].append(time.perf_counter() - start)
    med = {name: statistics.median(v) for name, v in wall.items()}
    ratio = med["with preview"] / med["without preview"]
    met = "met" if ratio <= HEIC_TARGET else "NOT met"
    print()
    print(
        f"previews: {full_size[0]}x{full_size[1]} HEIC {heic_photo.stat().st_size / 2**20:.1f} MiB, "
        f"preview {len(preview) / 1024:.0f} KiB made in {job_seconds:.2f} s; {rounds} rounds"
    )
    for name in sides:
        print(f"  {name:<16} ms: " + "  ".join(f"{w * 1000:.0f}" for w in wall[name]))
    print(
        f"previews: 256 px rendition of a 24 MP HEIC, with preview {med['with preview'] * 1000:.1f} ms, "
        f"without {med['without preview'] * 1000:.1f} ms, ratio {ratio:.3f} "
        f"(target <= {HEIC_TARGET:g}: {met})"
    )
    data = {
        "benchmark": "previews_heic",
        "environment": environment_info(),
        "median_wall_s": med,
        "runs_wall_s": wall,
        "ratio": ratio,
        "target": HEIC_TARGET,
        "target_met": ratio <= HEIC_TARGET,
        "preview_seconds": job_seconds,
        "preview_bytes": len(preview),
    }
    write_results("previews_heic", data, tmp_path, bench_settings.results_dir)
