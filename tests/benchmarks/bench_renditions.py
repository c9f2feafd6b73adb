"""Renditions: our renderer against libvips, our HTTP stack against thumbor and a static file.

Four measurements, each a ratio against a baseline taken in the same run:

1. **Thumbnail vs pyvips.** ``render()`` of a 256 px JPEG thumbnail from a
   fresh 24 MP JPEG (Landscape_1.jpg upscaled to 6000 x 4000 with noise,
   quality 90) against ``pyvips.Image.thumbnail(path, 256)`` and a JPEG save
   of the same file (same quality, optimised Huffman tables, no metadata, the
   libvips operation cache off). In process, alternating, medians. Target:
   ours at most 1.5x the time.
2. **Uncached thumbnails over HTTP vs thumbor.** ``GET /images/{id}/render?
   width=W&height=H&format=jpeg`` through gunicorn (API key lookup, database,
   rendition store) where every request asks for a size never asked before, so
   every one is rendered, against thumbor 7 (file loader on a folder holding
   the same JPEG, no storage, no result storage) asked for the same sizes with
   ``/unsafe/fit-in/WxH/bench.jpg``: same geometry as our default
   ``fit=contain``. thumbor's plain ``/unsafe/WxH/`` crops to fill the box
   (our ``fit=cover``) and is measured too, against ``fit=cover``. As many
   single-process thumbor instances as we have gunicorn workers, each loaded
   by a load process of its own at the same time, their rates added up (one
   thumbor with ``--processes N`` would often leave all but one process idle:
   see ``thumbor_servers``); the same connections in all, load from other
   processes. Target: ours/thumbor at least 1.0. Our upload kept a 1024 px preview of the photo
   (image_repo/imaging/preview.py), which these renditions start from; the
   same picture with its preview removed (as if uploaded with previews off)
   is measured beside it, for information: there both sides spend over 90% of
   a request entropy-decoding the same 8 MB with the same libjpeg-turbo.
3. **Cached vs thumbor.** One fixed 256 px rendition, warmed (served from the
   rendition store), against thumbor's uncached fit-in rate. Target: 20x.
4. **Cached vs static file.** The same rendition against its bytes served by a
   bare Flask app with ``send_file`` under the same gunicorn config module and
   worker count. Target: at least 0.8.

Load sides of 2-4 run alternately (``BENCH_ROUNDS`` rounds of ``BENCH_SECONDS``
each after a ``BENCH_WARMUP`` run); each side's best round is compared (on a
shared machine the round least slowed by others' work), and so is the servers'
least CPU per request (steadier than req/s). Every uncached request of a side,
warm-up included, asks for a size that side never asked before, so the warm-up
sizes are never asked by the measured rounds either, on both sides. After each
run the server is left to finish the requests still queued before the next
side starts. A miss is printed, never failed; errors fail. When a target is
missed, a cProfile of the cached request (rate limiter off and on) and of
uncached ones through the WSGI app, each in a process of its own on the same
data, shows where the time goes.

thumbor lives in a venv of its own (see renditions_support.py: it pins
``pillow<13``); ``BENCH_THUMBOR`` names its script (default
``/tmp/thumbor-venv/bin/thumbor``). Without it, the thumbor sides are skipped
with a note. Other settings:

=============================  =======  =======================================
variable                       default  meaning
=============================  =======  =======================================
``BENCH_RENDER_ROUNDS``        15       in-process rounds per side (benchmark 1)
``BENCH_UNCACHED_CONNECTIONS`` 2/wkr    connections for the uncached sides
``BENCH_PROFILE_REQUESTS``     500      cached requests profiled in process
``BENCH_PROFILE_UNCACHED``     12       uncached requests profiled in process
``BENCH_PROFILE``              auto     ``1``: always profile, ``0``: never
=============================  =======  =======================================

Run (``-n 0``: one process, whatever pytest-xdist options the project's addopts hold;
the figures are given as the best of two rounds)::

    BENCH_ROUNDS=2 .venv/bin/python -m pytest tests/benchmarks/bench_renditions.py \
        -o python_files='bench_*.py' -s -n 0
"""

from __future__ import annotations

import io
import os
import statistics
import textwrap
import time
from pathlib import Path

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
from .renditions_support import (
    find_thumbor,
    load_varying,
    next_start,
    prepare_service,
    profile_in_subprocess,
    rendition_files,
    thumbor_config,
    thumbor_servers,
    thumbor_version,
    wait_idle,
)

VIPS_TARGET = 1.5  # ours <= 1.5x pyvips' time
UNCACHED_TARGET = 1.0  # ours / thumbor >= 1.0
CACHED_VS_THUMBOR_TARGET = 20.0  # cached ours / uncached thumbor >= 20
CACHED_VS_STATIC_TARGET = 0.8  # cached ours / static file >= 0.8

PHOTO_SIZE = (6000, 4000)  # 24 MP
PHOTO_NOISE = 16  # sensor-like noise: ~8 MB at quality 90, like a camera's JPEG
THUMB = 256
QUALITY = 82  # our renderer's default JPEG quality; baselines are set to it too
SERVICE_APP = "image_repo.wsgi:app"
STATIC_APP = "tests.benchmarks.renditions_support:create_static_app()"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _at_least(ratio: float, target: float | None) -> str:
    if target is None:
        return "for information, no target"
    return f"target >= {target:g}: {'met' if ratio >= target else 'NOT met'}"


def _line(name: str, ours: str, baseline: str, ratio: float, target: str) -> str:
    return f"renditions: {name}: ours {ours}, baseline {baseline}, ratio {ratio:.2f} ({target})"


@pytest.fixture(scope="module", autouse=True)
def _alone():
    """Measurements need the machine to themselves, and -s output needs one process."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("run benchmarks alone: add -n 0 (pytest-xdist would run them side by side)")


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """The 24 MP JPEG, made once for the module, in a folder of its own (thumbor's root)."""
    folder = tmp_path_factory.mktemp("renditions-source")
    return photo_like_jpeg(folder / "bench.jpg", PHOTO_SIZE, noise=PHOTO_NOISE)


# --- 1. render() vs pyvips ---------------------------------------------------


def test_thumbnail_vs_pyvips(bench_settings, photo, tmp_path):
    import pyvips
    from PIL import Image

    from image_repo.imaging.render import RenderParams, render

    rounds = _env_int("BENCH_RENDER_ROUNDS", 15)
    pyvips.cache_set_max(0)  # every thumbnail decodes the file again, like ours
    params = RenderParams(width=THUMB, height=THUMB, format="jpeg")

    def ours() -> bytes:
        out = io.BytesIO()
        render(photo, params, out)
        return out.getvalue()

    def vips() -> bytes:
        image = pyvips.Image.thumbnail(str(photo), THUMB)
        return image.jpegsave_buffer(Q=QUALITY, optimize_coding=True, keep="none")

    sides = {"ours": ours, "pyvips": vips}
    outputs = {name: fn() for name, fn in sides.items()}  # warm-up, and the outputs to compare
    sizes = {name: Image.open(io.BytesIO(data)).size for name, data in outputs.items()}
    assert sizes["ours"] == sizes["pyvips"] == (THUMB, round(THUMB * 2 / 3)), sizes

    wall: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(rounds):
        for name in list(sides)[i % 2 :] + list(sides)[: i % 2]:  # swap who goes first
            began_wall, began_cpu = time.perf_counter(), time.process_time()
            sides[name]()
            wall[name].append(time.perf_counter() - began_wall)
            cpu[name].append(time.process_time() - began_cpu)
    # libvips with one thread: what it does in a server with one worker per core.
    threads = pyvips.concurrency_get()
    pyvips.concurrency_set(1)
    try:
        vips()
        single = []
        for _ in range(max(3, rounds // 3)):
            began = time.perf_counter()
            vips()
            single.append(time.perf_counter() - began)
    finally:
        pyvips.concurrency_set(threads)

    med_wall = {name: statistics.median(v) for name, v in wall.items()}
    med_cpu = {name: statistics.median(v) for name, v in cpu.items()}
    ratio = med_wall["ours"] / med_wall["pyvips"]
    cpu_ratio = med_cpu["ours"] / med_cpu["pyvips"]
    paired = statistics.median(o / v for o, v in zip(wall["ours"], wall["pyvips"], strict=True))
    single_ratio = med_wall["ours"] / statistics.median(single)
    met = "met" if ratio <= VIPS_TARGET else "NOT met"

    print()
    print(
        f"renditions: {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG q90 {photo.stat().st_size / 2**20:.1f} MiB "
        f"-> {sizes['ours'][0]}x{sizes['ours'][1]} JPEG q{QUALITY}, {rounds} alternating rounds; "
        f"pyvips {pyvips.__version__}, libvips {pyvips.version(0)}.{pyvips.version(1)}."
        f"{pyvips.version(2)} ({threads} threads)"
    )
    for name in sides:
        print(f"  {name:<6} wall ms: " + "  ".join(f"{w * 1000:.0f}" for w in wall[name]))
    print(
        _line(
            "256 px thumbnail of a 24 MP JPEG, time vs pyvips",
            f"{med_wall['ours'] * 1000:.1f} ms",
            f"{med_wall['pyvips'] * 1000:.1f} ms",
            ratio,
            f"target <= {VIPS_TARGET}: {met}",
        )
    )
    print(
        f"renditions: thumbnail: median of per-round ratios {paired:.2f}; CPU ms ours "
        f"{med_cpu['ours'] * 1000:.1f}, pyvips {med_cpu['pyvips'] * 1000:.1f} (ratio {cpu_ratio:.2f}); "
        f"pyvips on 1 thread {statistics.median(single) * 1000:.1f} ms (ratio {single_ratio:.2f}); "
        f"bytes ours {len(outputs['ours'])}, pyvips {len(outputs['pyvips'])}"
    )
    data = {
        "benchmark": "renditions_thumbnail",
        "environment": environment_info(),
        "source": {"size": PHOTO_SIZE, "bytes": photo.stat().st_size},
        "rounds": rounds,
        "median_wall_s": med_wall,
        "median_cpu_s": med_cpu,
        "ratio": ratio,
        "paired_ratio": paired,
        "cpu_ratio": cpu_ratio,
        "pyvips_single_thread_s": statistics.median(single),
        "single_thread_ratio": single_ratio,
        "target_ratio": VIPS_TARGET,
        "target_met": ratio <= VIPS_TARGET,
        "runs_wall_s": wall,
        "output_bytes": {name: len(v) for name, v in outputs.items()},
    }
    for path in write_results("renditions_thumbnail", data, tmp_path, bench_settings.results_dir):
        print(f"renditions: results written to {path}")


# --- 2-4. over HTTP ------------------------------------------------------------


def test_renditions_over_http(bench_settings, run_load, service_env, photo, tmp_path):
    settings = bench_settings
    workers = settings.workers
    tool = settings.tool()
    # Uncached requests take ~0.1 s: two per worker keep every worker busy without
    # long queues (a run's last requests are cut off, and queued work outlives it).
    # thumbor: one single-process instance per worker, the connections shared out.
    uncached_connections = _env_int("BENCH_UNCACHED_CONNECTIONS", 2 * workers)
    env = {**service_env, "IMAGE_REPO_RATELIMIT_ENABLED": "false"}
    data_dir = Path(env["IMAGE_REPO_DATA_DIR"])
    key = prepare_service(env)
    headers = {"X-API-Key": key}
    exe = find_thumbor()
    thumbor_note = None
    if exe is None:
        thumbor_note = (
            "thumbor not found: python3.11 -m venv /tmp/thumbor-venv && "
            "/tmp/thumbor-venv/bin/pip install thumbor (or set BENCH_THUMBOR); "
            "benchmarks 2 and 3 skipped"
        )
    static_dir = tmp_path / "static"
    static_dir.mkdir()
    static_env = {**env, "BENCH_STATIC_DIR": str(static_dir)}

    with (
        gunicorn_server(env, workers=workers, app=SERVICE_APP) as ours,
        gunicorn_server(static_env, workers=workers, app=STATIC_APP) as static,
        _maybe_thumbor(exe, photo.parent, workers, tmp_path) as thumbor,
    ):
        image_id = _upload(ours, headers, photo)["id"]
        # The same picture (other noise, so other bytes) without its preview: an
        # image uploaded with previews off, or before they existed.
        bare_id = _upload_without_preview(ours, headers, photo, tmp_path, data_dir)

        render_path = f"/images/{image_id}/render?width={{w}}&height={{h}}&format=jpeg"
        bare_path = f"/images/{bare_id}/render?width={{w}}&height={{h}}&format=jpeg"
        cover_path = render_path + "&fit=cover"
        cached_url = f"{ours}/images/{image_id}/render?width={THUMB}&height={THUMB}&format=jpeg"
        static_url = f"{static}/static-files/thumb-{THUMB}.jpg"

        # The cached rendition: made once, then a hit; its bytes are the static file.
        first = requests.get(cached_url, headers=headers, timeout=60)
        again = requests.get(cached_url, headers=headers, timeout=60)
        assert first.status_code == again.status_code == 200, first.text[:500]
        assert first.headers["X-Rendition-Cache"] == "miss", first.headers
        assert again.headers["X-Rendition-Cache"] == "hit", again.headers
        (static_dir / f"thumb-{THUMB}.jpg").write_bytes(again.content)
        served = requests.get(static_url, headers=headers, timeout=10)
        assert served.status_code == 200 and served.content == again.content

        # Every side answers a sample request with an image of the geometry expected.
        _check_jpeg(ours + render_path.format(w=301, h=977), headers, (301, 201), miss=True)
        _check_jpeg(ours + cover_path.format(w=301, h=977), headers, (301, 977), miss=True)
        for instance in thumbor or []:
            _check_jpeg(instance + "/unsafe/fit-in/301x977/bench.jpg", {}, (301, 201))
            _check_jpeg(instance + "/unsafe/301x977/bench.jpg", {}, (301, 977))

        starts: dict[str, int] = {}

        def varying(name: str, bases: str | list[str], template: str):
            def run(seconds: float | None = None):
                before = rendition_files(data_dir)
                result = load_varying(
                    bases,
                    template,
                    start=starts.get(name, 0),
                    seconds=settings.seconds if seconds is None else seconds,
                    connections=uncached_connections,
                    threads=settings.threads,
                    headers=headers,  # thumbor ignores it; same request size
                    tool=tool,
                )
                starts[name] = next_start(result)
                result.raw["idle_wait_s"] = sum(
                    wait_idle(base) for base in ([bases] if isinstance(bases, str) else bases)
                )
                result.raw["renditions_made"] = rendition_files(data_dir) - before
                return result

            return run

        def fixed(url: str):
            def run(seconds: float | None = None):
                result = run_load(url, seconds, headers=headers)
                result.raw["idle_wait_s"] = wait_idle(url)
                return result

            return run

        sides = {
            "ours uncached": varying("ours", ours, render_path),
            "ours uncached, original": varying("ours original", ours, bare_path),
        }
        if thumbor:
            sides["thumbor fit-in"] = varying(
                "thumbor", thumbor, "/unsafe/fit-in/{w}x{h}/bench.jpg"
            )
            sides["ours uncached cover"] = varying("ours cover", ours, cover_path)
            sides["thumbor crop"] = varying("thumbor crop", thumbor, "/unsafe/{w}x{h}/bench.jpg")
        sides["ours cached"] = fixed(cached_url)
        sides["static file"] = fixed(static_url)

        began = time.perf_counter()
        warmups = {name: run(settings.warmup) for name, run in sides.items()}
        runs = alternate(sides, settings.rounds)
        load_seconds = time.perf_counter() - began

    best = {name: best_rps(side) for name, side in runs.items()}
    cpu = {name: best_server_cpu_us(side) for name, side in runs.items()}

    print()
    print(
        f"renditions: {settings.rounds} alternating runs of {settings.seconds:g} s per side "
        f"(+{settings.warmup:g} s warm-up), best run kept; connections: {uncached_connections} "
        f"uncached, {settings.connections} cached/static; {workers} gunicorn workers / "
        f"{workers} single-process thumbor instances (a load process each, rates added); "
        f"load by {tool}; {load_seconds:.0f} s of load"
    )
    if exe is not None:
        print(f"renditions: {thumbor_version(exe)} at {exe}; config:")
        print(textwrap.indent(thumbor_config(photo.parent, QUALITY), "    "))
    else:
        print(f"renditions: {thumbor_note}")
    for name, side in runs.items():
        for i, run in enumerate(side, 1):
            made = run.raw.get("renditions_made")
            extra = f"  renditions made {made}" if made is not None else ""
            print(f"  {name:<19} run {i}: {describe(run)}{extra}")
            for part in run.raw.get("parts", []):
                print(
                    f"  {'':<19}   {part['url']}: {part['rps']:.1f} req/s, "
                    f"{part['requests']} requests on {part['connections']} connections"
                )

    results: dict[str, dict] = {}

    def report(name: str, ours_side: str, base_side: str, target: float | None) -> None:
        # target None: a figure for information, not one of the targets.
        ratio = best[ours_side] / best[base_side]
        # Server CPU per request is steadier than req/s on a shared machine: the
        # rate each side would reach with the CPU to itself, in the same ratio.
        cpu_ratio = None
        if cpu[ours_side] and cpu[base_side]:
            cpu_ratio = cpu[base_side] / cpu[ours_side]
        results[name] = {
            "ours": ours_side,
            "baseline": base_side,
            "ours_rps": best[ours_side],
            "baseline_rps": best[base_side],
            "ratio": ratio,
            "cpu_per_request_us": {"ours": cpu[ours_side], "baseline": cpu[base_side]},
            "cpu_ratio": cpu_ratio,
            "target": target,
            "target_met": None if target is None else ratio >= target,
        }
        print(
            _line(
                name,
                f"{best[ours_side]:.1f} req/s",
                f"{best[base_side]:.1f} req/s ({base_side})",
                ratio,
                _at_least(ratio, target),
            )
        )
        if cpu_ratio is not None:
            print(
                f"renditions:   by server CPU per request: ours {cpu[ours_side]:.0f} us, "
                f"{base_side} {cpu[base_side]:.0f} us, ratio {cpu_ratio:.2f} "
                f"({_at_least(cpu_ratio, target)})"
            )

    if thumbor:
        report(
            "uncached thumbnail vs thumbor (contain vs fit-in)",
            "ours uncached",
            "thumbor fit-in",
            UNCACHED_TARGET,
        )
        report(
            "uncached thumbnail of an image without preview vs thumbor (contain vs fit-in)",
            "ours uncached, original",
            "thumbor fit-in",
            None,
        )
        report(
            "uncached thumbnail vs thumbor (cover vs WxH crop)",
            "ours uncached cover",
            "thumbor crop",
            UNCACHED_TARGET,
        )
        report(
            "cached thumbnail vs thumbor uncached",
            "ours cached",
            "thumbor fit-in",
            CACHED_VS_THUMBOR_TARGET,
        )
    report("cached thumbnail vs static file", "ours cached", "static file", CACHED_VS_STATIC_TARGET)

    profiles = None
    wanted = os.environ.get("BENCH_PROFILE", "auto")
    missed = any(r["target_met"] is False for r in results.values())
    if wanted == "1" or (wanted == "auto" and missed):
        profiles = _profiles(env, render_path, headers)

    data = {
        "benchmark": "renditions_http",
        "settings": settings.__dict__,
        "uncached_connections": uncached_connections,
        "environment": environment_info(),
        "tool": tool,
        "thumbor": thumbor_version(exe) if exe else thumbor_note,
        "thumbor_config": thumbor_config(photo.parent, QUALITY) if exe else None,
        "best_rps": best,
        "best_server_cpu_us_per_request": cpu,
        "results": results,
        "profiles": profiles,
        "warmups": warmups,
        "runs": runs,
    }
    for path in write_results("renditions_http", data, tmp_path, settings.results_dir):
        print(f"renditions: results written to {path}")

    # Sanity only: every run completed requests, none failed, nothing uncached was cached.
    for name, side in [*runs.items(), *((n, [w]) for n, w in warmups.items())]:
        for run in side:
            assert run.requests > 0, (name, run)
            assert run.errors == 0 and run.bad_status == 0, (name, run)
            if name.startswith("ours uncached"):
                # At least one new rendition per answered request (requests cut off at
                # the end of a run are rendered too), so none was a cache hit.
                assert run.raw["renditions_made"] >= run.requests, (name, run)


def _upload_without_preview(
    base: str, headers: dict[str, str], photo: Path, tmp_path: Path, data_dir: Path
) -> str:
    from image_repo.storage import LocalBlobStore, preview_key

    other = photo_like_jpeg(tmp_path / "bench-other.jpg", PHOTO_SIZE, noise=PHOTO_NOISE, seed=1)
    uploaded = _upload(base, headers, other)
    store = LocalBlobStore(data_dir / "blobs")
    key = preview_key(uploaded["sha256"])
    assert store.exists(key), "a 24 MP JPEG upload keeps a preview"
    store.delete(key)
    return uploaded["id"]


def _upload(base: str, headers: dict[str, str], path: Path) -> dict:
    uploaded = requests.post(
        f"{base}/images",
        files={"image": (path.name, path.read_bytes(), "image/jpeg")},
        headers=headers,
        timeout=120,
    )
    assert uploaded.status_code == 201, uploaded.text[:500]
    return uploaded.json()


def _check_jpeg(url: str, headers: dict[str, str], size: tuple[int, int], *, miss=False) -> None:
    from PIL import Image

    response = requests.get(url, headers=headers, timeout=60)
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    with Image.open(io.BytesIO(response.content)) as im:
        assert (im.format, im.size) == ("JPEG", size), (url, im.format, im.size)
    if miss:
        assert response.headers["X-Rendition-Cache"] == "miss", response.headers


class _maybe_thumbor:  # lower case: used like a function
    """thumbor_servers(...) when thumbor is installed (their URLs), else yields None."""

    def __init__(self, exe: Path | None, root: Path, instances: int, tmp_path: Path) -> None:
        self._cm = (
            thumbor_servers(exe, root, instances=instances, quality=QUALITY, workdir=tmp_path)
            if exe is not None
            else None
        )

    def __enter__(self) -> list[str] | None:
        return self._cm.__enter__() if self._cm is not None else None

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc) if self._cm is not None else None


def _profiles(env: dict[str, str], render_path: str, headers: dict[str, str]) -> dict:
    """Where a request's time goes: cProfile through the WSGI app, in processes of their own.

    The cached request (rate limiter off, as under load, and on with a budget
    too large to trip) and uncached ones, on the benchmark's own data.
    """
    cached_n = _env_int("BENCH_PROFILE_REQUESTS", 500)
    uncached_n = _env_int("BENCH_PROFILE_UNCACHED", 12)
    limiter_on = {
        **env,
        "IMAGE_REPO_RATELIMIT_ENABLED": "true",
        "IMAGE_REPO_RATELIMIT_READ": "100000000 per minute",
    }
    cases = {
        "cached": (env, cached_n, False),
        "cached, rate limiter on": (limiter_on, cached_n, False),
        "uncached": (env, uncached_n, True),
    }
    profiles = {}
    for name, (case_env, n, vary) in cases.items():
        profile = profile_in_subprocess(case_env, render_path, headers, requests_n=n, vary=vary)
        profiles[name] = profile
        print(
            f"renditions: profile, {name} request, in process (test client, no server, "
            f"{n} requests): {profile['wall_us']:.0f} us wall, {profile['cpu_us']:.0f} us CPU "
            "per request without the profiler; cumulative us per request under cProfile:"
        )
        for label, us in profile["phases_us"]:
            print(f"  {label:<44} {us:8.0f}")
        print(f"renditions: profile, {name}: top functions by own time:")
        print(textwrap.indent(profile["top"], "  "))
    return profiles
