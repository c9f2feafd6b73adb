"""Images: ingest against a plain decode, list latency at depth, peak memory of a 100 MP upload.

Three measurements, each a ratio against a baseline taken in the same run:

1. **Ingest vs decode.** ``ingest`` (what ``POST /images`` does: hash, dedup
   lookup, decode-validate, metadata and hashes, quota, blob write with fsync,
   row) of a 24 MP photo-like JPEG, against Pillow's full decode of the same
   file. Target: at most 1.3x. Each ingest gets bytes of its own (the same
   pixels behind a distinct JPEG comment) so dedup cannot short-circuit it.
   Ingest through the test client (multipart upload, auth, response) is
   reported as a second figure.
2. **List latency at depth.** A page of 50 at depth 100,000 of a tenant with
   1,000,000 images (SQLite), against the first page. Target: at most 1.2x.
   The cursor position is built directly instead of walking 2,000 pages.
3. **Peak RSS of a 100 MP upload.** A real gunicorn worker's peak RSS
   increase while taking a 12000 x 8400 JPEG, against the decoded pixel buffer
   (width * height * 3 bytes). Target: at most 1.5x.

Sides are alternated and medians kept; a miss is printed, never failed. Sizes
and repetitions come from the environment:

=========================  =========  ===========================================
variable                   default    meaning
=========================  =========  ===========================================
``BENCH_INGEST_ROUNDS``    15         measured rounds per side (ingest benchmark)
``BENCH_LIST_ROWS``        1000000    images of the tenant (list benchmark)
``BENCH_LIST_DEPTH``       100000     offset of the deep page
``BENCH_LIST_REPS``        200        timed page fetches per side
``BENCH_RSS_UPLOADS``      3          100 MP uploads measured (distinct bytes each)
=========================  =========  ===========================================

Run: ``.venv/bin/python -m pytest tests/benchmarks/bench_images.py -o python_files='bench_*.py' -s``
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import os
import pstats
import secrets
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import event, select

from image_repo.http.context import services_of
from tests.conftest import create_tenant, make_app
from tests.support.corpus import corpus_path
from tests.support.live_server import cli, gunicorn_server

from .harness import environment_info, write_results
from .image_fixtures import (
    children_of,
    cmdline,
    fill_images,
    jpeg_variants,
    photo_like_jpeg,
    reset_peak_rss,
    status_kib,
)

INGEST_TARGET = 1.3
LIST_TARGET = 1.2
RSS_TARGET = 1.5

INGEST_SIZE = (6000, 4000)  # 24 MP
RSS_SIZE = (12000, 8400)  # 100.8 MP
PHOTO_NOISE = 16  # +-16 levels: ~8 MB at quality 90 for 24 MP, like a camera's JPEG

MIB = 1024 * 1024


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _app(tmp_path: Path, **config):
    """A migrated app on a SQLite file and a local blob folder, rate limits off."""
    return make_app(
        {
            "TESTING": True,
            "ENV": "development",
            "DATA_DIR": tmp_path / "data",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bench.db'}",
            "REDIS_URL": None,
            "RATELIMIT_ENABLED": False,
            **config,
        }
    )


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _ratio_line(ratio: float, target: float) -> str:
    met = "met" if ratio <= target else "NOT met"
    return f"ratio {ratio:.2f} (target <= {target}: {met})"


@contextlib.contextmanager
def _app_stdout_to_devnull() -> Iterator[None]:
    """The app's access log writes a line per request to sys.stdout: keep it (it is part
    of the cost of a request) but out of the report."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# --- 1. ingest vs decode ----------------------------------------------------

# (file name ending, function name) -> label, for the profile of one ingest.
INGEST_PHASES = {
    ("ingest.py", "sha256_of"): "sha256 of the upload",
    ("ingest.py", "_existing"): "dedup lookup",
    ("probe.py", "_open"): "Image.open (header)",
    ("ImageFile.py", "load"): "full decode (im.load)",
    ("exif.py", "read_exif"): "EXIF",
    ("probe.py", "_hashes"): "blurhash + phash",
    ("ingest.py", "_check_quota"): "quota",
    ("local.py", "put"): "blob write + fsync",
    ("local.py", "_fsync_dir"): "  of which fsync of the folder",
    ("session.py", "commit"): "row insert + commit",
}


def _profile_phases(run: Callable[[], object]) -> tuple[float, list[tuple[str, float]], str]:
    """Profile one call: total seconds, named phases' cumulative seconds, top by own time."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(run)
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    found: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, _tt, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for (ending, name), label in INGEST_PHASES.items():
            if func == name and filename.endswith(ending):
                # Same-named methods (Session.commit, SessionTransaction.commit): the outer one.
                found[label] = max(found.get(label, 0.0), cumulative)
    phases = [(label, found[label]) for label in INGEST_PHASES.values() if label in found]
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(8)
    lines = out.getvalue().splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    top = "\n".join(line for line in lines[header:] if line.strip())
    return total, phases, top


def test_ingest_vs_decode(bench_settings, tmp_path):
    from PIL import Image
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    from image_repo.domain.image_fields import ImageFields
    from image_repo.domain.ingest import ingest

    rounds = _env_int("BENCH_INGEST_ROUNDS", 15)
    width, height = INGEST_SIZE
    max_bytes, max_pixels = 256 * MIB, 2 * width * height
    app = _app(tmp_path, MAX_UPLOAD_BYTES=max_bytes, MAX_PIXELS=max_pixels)
    tenant = create_tenant(app, "bench")
    session_factory = services_of(app).sessions
    store = services_of(app).blob_store
    client = app.test_client()
    headers = {"X-API-Key": tenant.admin_key}

    made = time.perf_counter()
    base = photo_like_jpeg(tmp_path / "photo-24mp.jpg", INGEST_SIZE, noise=PHOTO_NOISE)
    # Warm-up (direct, HTTP), then per round one for direct ingest (decoded too)
    # and one for HTTP, then one to profile.
    variants = jpeg_variants(base, 2 + 2 * rounds + 1, tmp_path / "variants")
    made = time.perf_counter() - made
    file_mib = variants[0].stat().st_size / MIB

    def decode(path: Path) -> None:
        with Image.open(path) as im:
            im.load()

    def decode_draft(path: Path) -> None:
        # Informational: JPEG DCT scaling (1/8). Every block is still entropy-decoded,
        # so truncation is found as in a full decode; IDCT and colour work shrink 64x.
        with Image.open(path) as im:
            im.draft("RGB", (im.width // 8, im.height // 8))
            im.load()

    def ingest_direct(path: Path) -> None:
        # The caller commits (domain functions never do).
        with session_factory.begin() as session, path.open("rb") as stream:
            result = ingest(
                session,
                store,
                tenant_id=tenant.tenant_id,
                stream=stream,
                filename=path.name,
                fields=ImageFields(),
                max_bytes=max_bytes,
                max_pixels=max_pixels,
            )
        assert result.created, "dedup short-circuited: variants must differ"

    def multipart(path: Path) -> tuple[str, bytes]:
        upload = FileStorage(
            stream=io.BytesIO(path.read_bytes()), filename=path.name, content_type="image/jpeg"
        )
        return encode_multipart({"image": upload})

    def ingest_http(boundary: str, body: bytes) -> None:
        response = client.post(
            "/images",
            data=body,
            content_type=f"multipart/form-data; boundary={boundary}",
            headers=headers,
        )
        assert response.status_code == 201, response.get_data(as_text=True)[:500]

    results: dict[str, list[tuple[float, float]]] = {
        "decode": [],
        "ingest": [],
        "http": [],
        "draft": [],
    }
    with _app_stdout_to_devnull():
        # Warm-up: imports, first request, SQLite and blob folders, page cache.
        decode(variants[0])
        ingest_direct(variants[0])
        ingest_http(*multipart(variants[1]))
        decode_draft(variants[0])
        for i in range(rounds):
            mine, over_http = variants[2 + 2 * i], variants[3 + 2 * i]
            boundary, body = multipart(over_http)  # built outside the timed call
            sides: dict[str, Callable[[], None]] = {
                "decode": lambda p=mine: decode(p),
                "ingest": lambda p=mine: ingest_direct(p),
                "http": lambda b=boundary, d=body: ingest_http(b, d),
                "draft": lambda p=mine: decode_draft(p),
            }
            names = list(sides)
            names = names[i % len(names) :] + names[: i % len(names)]  # rotate who goes first
            for name in names:
                results[name].append(_timed(sides[name]))

    wall = {name: statistics.median(w for w, _ in runs) for name, runs in results.items()}
    cpu = {name: statistics.median(c for _, c in runs) for name, runs in results.items()}
    ratio = wall["ingest"] / wall["decode"]
    http_ratio = wall["http"] / wall["decode"]
    cpu_ratio = cpu["ingest"] / cpu["decode"]
    # Each round's ingest against the decode of the same round (same file, same moment).
    paired = statistics.median(
        i[0] / d[0] for i, d in zip(results["ingest"], results["decode"], strict=True)
    )

    total, phases, top = _profile_phases(lambda: ingest_direct(variants[-1]))

    print()
    print(
        f"ingest: {width}x{height} ({width * height / 1e6:.0f} MP) JPEG q90, {file_mib:.1f} MiB, "
        f"{rounds} alternating rounds (files made in {made:.1f} s)"
    )
    for name, runs in results.items():
        shown = "  ".join(f"{w * 1000:.0f}" for w, _ in runs)
        print(f"  {name:<6} wall ms: {shown}")
    print(
        f"ingest: median decode {_ms(wall['decode'])}, ingest {_ms(wall['ingest'])}, "
        f"{_ratio_line(ratio, INGEST_TARGET)}"
    )
    print(
        f"ingest: median of per-round ratios {paired:.2f}; CPU time of this process: "
        f"decode {_ms(cpu['decode'])}, ingest {_ms(cpu['ingest'])}, ratio {cpu_ratio:.2f} "
        "(fsync waits are wall time, not CPU)"
    )
    print(
        f"ingest over HTTP (test client, multipart): {_ms(wall['http'])}, "
        f"ratio to decode {http_ratio:.2f} (target <= {INGEST_TARGET}: "
        f"{'met' if http_ratio <= INGEST_TARGET else 'NOT met'})"
    )
    print(
        f"ingest (informational): JPEG decode at 1/8 scale (im.draft) {_ms(wall['draft'])}, "
        f"{wall['draft'] / wall['decode']:.2f}x of the full decode"
    )
    print(f"ingest: profile of one ingest ({_ms(total)} under cProfile), cumulative per phase:")
    for label, seconds in phases:
        print(f"  {label:<32} {_ms(seconds):>10}  {seconds / total:5.0%}")
    print("ingest: top functions by own time:")
    print(textwrap.indent(top, "  "))

    data = {
        "benchmark": "images_ingest",
        "environment": environment_info(),
        "size": INGEST_SIZE,
        "file_bytes": variants[0].stat().st_size,
        "rounds": rounds,
        "median_wall_s": wall,
        "median_cpu_s": cpu,
        "ratio": ratio,
        "http_ratio": http_ratio,
        "cpu_ratio": cpu_ratio,
        "paired_ratio": paired,
        "target_ratio": INGEST_TARGET,
        "target_met": ratio <= INGEST_TARGET,
        "runs": results,
        "profile_phases_s": dict(phases),
    }
    for path in write_results("images_ingest", data, tmp_path, bench_settings.results_dir):
        print(f"ingest: results written to {path}")
    services_of(app).engine.dispose()


# --- 2. list latency at depth -----------------------------------------------


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _p90_ms(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[-1] * 1000


def test_list_page_at_depth(bench_settings, tmp_path):
    from image_repo.db.models import Image
    from image_repo.domain.images import ImageFilter, list_images
    from image_repo.http.paging import encode_cursor

    rows = _env_int("BENCH_LIST_ROWS", 1_000_000)
    depth = _env_int("BENCH_LIST_DEPTH", 100_000)
    reps = _env_int("BENCH_LIST_REPS", 200)
    limit = 50
    assert depth + limit <= rows
    app = _app(tmp_path)
    tenant = create_tenant(app, "bench")
    tenant_id = tenant.tenant_id
    engine = services_of(app).engine
    session_factory = services_of(app).sessions

    filled = time.perf_counter()
    ids = fill_images(engine, tenant_id, rows)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    filled = time.perf_counter() - filled
    db_mib = (tmp_path / "bench.db").stat().st_size / MIB

    # Newest first; row n was uploaded n seconds after the first, so offset k
    # is row rows-1-k. The cursor is the row just before the page (offset depth-1).
    cursor_row = rows - depth
    expected_deep = [ids[rows - 1 - k] for k in range(depth, depth + limit)]
    expected_first = [ids[rows - 1 - k] for k in range(limit)]
    with session_factory() as session:
        after = session.execute(
            select(Image.uploaded_at, Image.id)
            .where(Image.tenant_id == tenant_id)
            .order_by(Image.uploaded_at.desc(), Image.id.desc())
            .offset(depth - 1)
            .limit(1)
        ).one()
    after = (after[0], after[1])
    assert after[1] == ids[cursor_row], "the OFFSET query and the generated order disagree"

    def page(position) -> list[str]:
        with session_factory() as session:
            items = list_images(
                session, tenant_id, filters=ImageFilter(), after=position, limit=limit
            ).items
            return [image.id for image in items]

    assert page(None) == expected_first
    assert page(after) == expected_deep, "the page after the cursor is not the next 50 rows"

    # The plan of every statement a page runs (the images, then their tags).
    def plans_of(fetch: Callable[[], object]) -> list[tuple[str, list[str]]]:
        statements: list[tuple[str, tuple]] = []

        def capture(_conn, _cursor, statement, parameters, _context, _many):
            statements.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", capture)
        try:
            fetch()
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        plans = []
        with engine.connect() as connection:
            for statement, parameters in statements:
                if statement.lstrip().upper().startswith("SELECT"):
                    plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
                    shown = " ".join(statement.split())
                    shown = shown[:60] + " ... " + shown[shown.find(" FROM ") :][:150]
                    plans.append((shown, [row[-1] for row in plan]))
        return plans

    plans = {"first": plans_of(lambda: page(None)), "deep": plans_of(lambda: page(after))}

    def timed(fn: Callable[[], object]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    def alternate(sides: dict[str, Callable[[], object]], count: int) -> dict[str, list[float]]:
        for fn in sides.values():  # warm-up
            for _ in range(10):
                fn()
        samples: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(count):
            for name, fn in sides.items():
                samples[name].append(timed(fn))
        return samples

    direct = alternate({"first": lambda: page(None), "deep": lambda: page(after)}, reps)
    ratio = statistics.median(direct["deep"]) / statistics.median(direct["first"])

    # Through the test client, with a cursor signed as the endpoint signs it.
    # The context mirrors page_of_images for GET /images?limit=50 (default sort).
    client = app.test_client()
    headers = {"X-API-Key": tenant.admin_key}
    context = repr(([("sort", "-uploaded_at")], None))
    with app.app_context():
        cursor = encode_cursor(after, context)

    def http(url: str) -> list[str]:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        return [item["id"] for item in response.get_json()["items"]]

    first_url = f"/images?limit={limit}"
    deep_url = f"/images?limit={limit}&cursor={cursor}"
    over_http = None
    note = ""
    with _app_stdout_to_devnull():
        probe_deep = client.get(deep_url, headers=headers)
        if probe_deep.status_code != 200:
            note = f"HTTP deep page skipped: {probe_deep.status_code} {probe_deep.get_json()}"
        else:
            assert http(first_url) == expected_first
            assert http(deep_url) == expected_deep
            over_http = alternate(
                {"first": lambda: http(first_url), "deep": lambda: http(deep_url)}, reps
            )

    print()
    print(
        f"list: {rows:,} images of one tenant in SQLite ({db_mib:.0f} MiB, filled in "
        f"{filled:.1f} s), page of {limit} at offset {depth:,} vs the first page, "
        f"{reps} alternating fetches per side"
    )
    for side, side_plans in plans.items():
        for statement, plan in side_plans:
            print(f"  {side} page: EXPLAIN QUERY PLAN {statement}")
            for line in plan:
                print(f"    {line}")
    print(
        f"list: list_images first page {_median_ms(direct['first']):.2f} ms "
        f"(p90 {_p90_ms(direct['first']):.2f}), at depth {_median_ms(direct['deep']):.2f} ms "
        f"(p90 {_p90_ms(direct['deep']):.2f}), {_ratio_line(ratio, LIST_TARGET)}"
    )
    http_ratio = None
    if over_http is not None:
        http_ratio = statistics.median(over_http["deep"]) / statistics.median(over_http["first"])
        print(
            f"list over HTTP (test client, signed cursor): first page "
            f"{_median_ms(over_http['first']):.2f} ms, at depth "
            f"{_median_ms(over_http['deep']):.2f} ms, ratio {http_ratio:.2f} "
            f"(target <= {LIST_TARGET}: {'met' if http_ratio <= LIST_TARGET else 'NOT met'})"
        )
    else:
        print(f"list: {note}")

    data = {
        "benchmark": "images_list",
        "environment": environment_info(),
        "rows": rows,
        "depth": depth,
        "limit": limit,
        "reps": reps,
        "fill_seconds": filled,
        "median_ms": {name: _median_ms(s) for name, s in direct.items()},
        "ratio": ratio,
        "http_median_ms": (
            {name: _median_ms(s) for name, s in over_http.items()} if over_http else None
        ),
        "http_ratio": http_ratio,
        "target_ratio": LIST_TARGET,
        "target_met": ratio <= LIST_TARGET,
        "plans": plans,
    }
    for path in write_results("images_list", data, tmp_path, bench_settings.results_dir):
        print(f"list: results written to {path}")
    engine.dispose()


# --- 3. peak RSS of a 100 MP upload -------------------------------------------


def _gunicorn_worker(port: int) -> int:
    """The one worker of the gunicorn this process started on ``port``."""
    bind = f"IMAGE_REPO_BIND=127.0.0.1:{port}".encode()
    masters = [
        pid
        for pid in children_of(os.getpid())
        if "gunicorn" in cmdline(pid)
        and bind in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    ]
    assert len(masters) == 1, masters
    workers = children_of(masters[0])
    assert len(workers) == 1, workers
    return workers[0]


# A fresh interpreter measuring one step on its own: peak RSS (KiB) against the
# RSS before the step, for a full decode, probe() or a 1/8 draft decode of a
# file, with the service's imaging imports already done.
_STEP_SCRIPT = """
import json, sys
from pathlib import Path
step, path, max_pixels = sys.argv[1], sys.argv[2], int(sys.argv[3])
from PIL import Image
from image_repo.imaging.probe import probe
Image.MAX_IMAGE_PIXELS = max_pixels
import image_repo.domain.ingest

def kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

Path("/proc/self/clear_refs").write_text("5")
before = kib("VmRSS")
if step == "decode":
    with Image.open(path) as im:
        im.load()
elif step == "probe":
    probe(path, max_pixels=max_pixels)
print(json.dumps({"before_kib": before, "peak_kib": kib("VmHWM")}))
"""


def _step_peak_mib(step: str, path: Path, max_pixels: int) -> float:
    result = subprocess.run(
        [sys.executable, "-c", _STEP_SCRIPT, step, str(path), str(max_pixels)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return (data["peak_kib"] - data["before_kib"]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_upload_peak_rss(bench_settings, tmp_path):
    uploads = _env_int("BENCH_RSS_UPLOADS", 3)
    width, height = RSS_SIZE
    pixels = width * height
    buffer_mib = pixels * 3 / MIB
    made = time.perf_counter()
    base = photo_like_jpeg(tmp_path / "photo-100mp.jpg", RSS_SIZE, noise=PHOTO_NOISE)
    variants = jpeg_variants(base, uploads, tmp_path / "variants")
    made = time.perf_counter() - made
    file_mib = base.stat().st_size / MIB
    max_pixels = pixels + 10_000_000

    env = {
        "IMAGE_REPO_ENV": "production",
        "IMAGE_REPO_SECRET_KEY": secrets.token_urlsafe(48),
        "IMAGE_REPO_DATA_DIR": str(tmp_path / "data"),
        "IMAGE_REPO_MAX_PIXELS": str(max_pixels),
        "IMAGE_REPO_MAX_UPLOAD_BYTES": str(max(256 * MIB, 2 * base.stat().st_size)),
        "IMAGE_REPO_RATELIMIT_ENABLED": "false",
    }
    cli(env, "db", "upgrade")
    cli(env, "tenants", "create", "bench")
    key = json.loads(
        cli(env, "keys", "create", "--tenant", "bench", "--group", "editor", "--json")
    )["api_key"]
    headers = {"X-API-Key": key}

    measured = []
    with gunicorn_server(env, workers=1) as url:
        worker = _gunicorn_worker(int(url.rsplit(":", 1)[1]))

        def upload(path: Path) -> requests.Response:
            with path.open("rb") as stream:
                return requests.post(
                    f"{url}/images",
                    files={"image": (path.name, stream, "image/jpeg")},
                    headers=headers,
                    timeout=600,
                )

        # Warm-up with a small photo: imports, first request, database and blob folders.
        warm = upload(corpus_path("valid/hopper.jpg"))
        assert warm.status_code == 201, warm.text
        for path in variants:
            resettable = reset_peak_rss(worker)
            before = status_kib(worker, "VmRSS")
            hwm_before = status_kib(worker, "VmHWM")
            start = time.perf_counter()
            response = upload(path)
            seconds = time.perf_counter() - start
            assert response.status_code == 201, response.text[:500]
            assert response.json()["width"] == width
            peak, after = status_kib(worker, "VmHWM"), status_kib(worker, "VmRSS")
            if not resettable and peak <= hwm_before:
                pytest.fail("VmHWM cannot be reset and the upload stayed below an older peak")
            measured.append(
                {
                    "rss_before_mib": before / 1024,
                    "peak_mib": peak / 1024,
                    "rss_after_mib": after / 1024,
                    "increase_mib": (peak - before) / 1024,
                    "seconds": seconds,
                }
            )

    increase = statistics.median(m["increase_mib"] for m in measured)
    ratio = increase / buffer_mib
    steps = {step: _step_peak_mib(step, base, max_pixels) for step in ("decode", "probe", "draft")}
    # Pillow keeps an RGB picture as 4 bytes a pixel (RGBX): the floor of a full decode.
    pillow_mib = pixels * 4 / MIB

    print()
    print(
        f"rss: {width}x{height} ({pixels / 1e6:.1f} MP) JPEG q90, {file_mib:.1f} MiB "
        f"(made in {made:.1f} s), {uploads} uploads to one gunicorn worker (pid {worker})"
    )
    for i, m in enumerate(measured, 1):
        print(
            f"  upload {i}: RSS before {m['rss_before_mib']:.0f} MiB, peak {m['peak_mib']:.0f} "
            f"MiB, after {m['rss_after_mib']:.0f} MiB, increase {m['increase_mib']:.0f} MiB, "
            f"{m['seconds']:.1f} s"
        )
    print(
        f"rss: peak increase {increase:.0f} MiB vs decoded buffer {buffer_mib:.0f} MiB "
        f"(width*height*3), {_ratio_line(ratio, RSS_TARGET)}"
    )
    print(
        f"rss: Pillow's own RGB buffer is 4 bytes a pixel, {pillow_mib:.0f} MiB: a full decode "
        f"cannot go below {pillow_mib / buffer_mib:.2f}x of width*height*3"
    )
    labels = {"decode": "Image.open().load()", "probe": "probe()", "draft": "1/8 draft decode"}
    print(
        "rss: the same file in a fresh interpreter, peak increase: "
        + ", ".join(
            f"{labels[step]} {mib:.1f} MiB ({mib / buffer_mib:.2f}x)" for step, mib in steps.items()
        )
        + f" (a 1/8 draft buffer is {pillow_mib / 64:.0f} MiB, often served from heap"
        " the imports left resident)"
    )

    data = {
        "benchmark": "images_rss",
        "environment": environment_info(),
        "size": RSS_SIZE,
        "file_bytes": base.stat().st_size,
        "decoded_buffer_mib": buffer_mib,
        "pillow_buffer_mib": pillow_mib,
        "uploads": measured,
        "median_increase_mib": increase,
        "ratio": ratio,
        "target_ratio": RSS_TARGET,
        "target_met": ratio <= RSS_TARGET,
        "fresh_process_peak_increase_mib": steps,
    }
    for path in write_results("images_rss", data, tmp_path, bench_settings.results_dir):
        print(f"rss: results written to {path}")
