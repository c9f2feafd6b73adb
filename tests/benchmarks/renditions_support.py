"""Pieces of bench_renditions.py: thumbor, a static-file baseline, a service ready to load,
load with a different rendition size on every request, and a profile of the cached path.

Kept free of pytest and of app imports at module level: gunicorn imports this
module to serve the static baseline (``create_static_app()``), and it also
runs as the fallback load process when wrk is missing
(``python -m tests.benchmarks.renditions_support ...`` from the repository root).

thumbor is not a dependency of the project and must not go into the project's
venv: thumbor 7.8 pins ``pillow<13`` and pip would downgrade the Pillow that
our renderer is measured with. Install it into a venv of its own::

    python3.11 -m venv /tmp/thumbor-venv && /tmp/thumbor-venv/bin/pip install thumbor

and point ``BENCH_THUMBOR`` at its ``thumbor`` script (that path is the default).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from image_repo.http.context import services_of

from .harness import WRK_SCRIPT, LoadResult, _children_cpu, server_cpu

REPO_ROOT = Path(__file__).resolve().parents[2]
THUMBOR_DEFAULT = Path("/tmp/thumbor-venv/bin/thumbor")
STATIC_DIR_ENV = "BENCH_STATIC_DIR"

# -- sizes that were never asked before ----------------------------------------
#
# Request number n asks for width LOW + n % SPAN and height LOW + n // SPAN:
# every n is a size of its own (so nothing is cached), while every width stays
# in the band where a 6000 x 4000 JPEG is decoded at 1/8 scale (shrink-on-load)
# on both servers, so each request costs about the same as a 256 px thumbnail.
SIZE_LOW = 200
SIZE_SPAN = 170


def size_of(n: int) -> tuple[int, int]:
    return SIZE_LOW + n % SIZE_SPAN, SIZE_LOW + n // SIZE_SPAN


# Adds to the harness's script (its done() prints the BENCH_JSON line): a path
# built per request from BENCH_PATH_TEMPLATE ({w} and {h}), request k of thread
# t being n = BENCH_START + t + k * BENCH_STRIDE, so no two requests share a size.
# done() also prints the highest n any thread built (BENCH_LAST_N), where the
# next run starts: threads advance unevenly.
VARYING_WRK_SCRIPT = (
    WRK_SCRIPT
    + r"""
local template = os.getenv("BENCH_PATH_TEMPLATE")
local start = tonumber(os.getenv("BENCH_START"))
local stride = tonumber(os.getenv("BENCH_STRIDE"))
local low = tonumber(os.getenv("BENCH_SIZE_LOW"))
local span = tonumber(os.getenv("BENCH_SIZE_SPAN"))
local threads = {}
setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
k = 0  -- a global, so that done() can read it from each thread
request = function()
  local n = start + tid + k * stride
  k = k + 1
  local w = low + n % span
  local h = low + math.floor(n / span)
  local path = template:gsub("{w}", tostring(w))
  path = path:gsub("{h}", tostring(h))
  return wrk.format(nil, path)
end
local report = done
done = function(summary, latency, requests)
  report(summary, latency, requests)
  local last = start - 1
  for _, thread in ipairs(threads) do
    local made = thread:get("k")
    if made > 0 then
      last = math.max(last, start + thread:get("tid") + (made - 1) * stride)
    end
  end
  io.write(string.format("BENCH_LAST_N %d\n", last))
end
"""
)


def load_varying(
    bases: str | Sequence[str],
    template: str,
    *,
    start: int,
    seconds: float,
    connections: int,
    threads: int,
    headers: Mapping[str, str] | None = None,
    tool: str = "wrk",
    timeout_s: float = 30.0,
) -> LoadResult:
    """Load each base + ``template`` ({w}, {h} filled from ``size_of(n)``), n from ``start`` on.

    One load process (wrk, or this module's fallback) per base, all at once,
    ``connections`` shared out among them (and ``threads`` given to each):
    several single-process servers loaded side by side count as one server
    whose rate is the sum of theirs. Every request asks for a size no other
    request of this call asked for (the processes take interleaved request
    numbers); callers move ``start`` to ``next_start()`` between calls. The
    result has the servers' CPU time like ``harness.load``, and each
    process's own result in ``raw["parts"]`` when there are several.
    """
    bases = [bases] if isinstance(bases, str) else list(bases)
    if connections < len(bases):
        raise ValueError(f"{connections} connections for {len(bases)} servers")
    shares = [connections // len(bases) + (i < connections % len(bases)) for i in range(len(bases))]
    header_lines = [f"{name}: {value}" for name, value in (headers or {}).items()]
    with tempfile.TemporaryDirectory(prefix="bench-renditions-") as tmp:
        script = Path(tmp) / "varying.lua"
        script.write_text(VARYING_WRK_SCRIPT)
        # Process g takes request numbers start + offset_g + t + k * stride: every
        # thread (wrk) or connection (fallback) of every process a lane of its own.
        lanes = [max(1, min(threads, c)) if tool == "wrk" else c for c in shares]
        stride = sum(lanes)
        plans = []
        for g, (base, share) in enumerate(zip(bases, shares, strict=True)):
            part_start = start + sum(lanes[:g])
            if tool == "wrk":
                cmd = ["wrk", f"-t{lanes[g]}", f"-c{share}", f"-d{seconds:g}s"]
                cmd += ["--timeout", f"{timeout_s:g}s", "-s", str(script)]
                cmd += [arg for line in header_lines for arg in ("-H", line)]
                cmd += [base + "/"]
            else:
                cmd = [sys.executable, "-m", "tests.benchmarks.renditions_support", "load"]
                cmd += [base + template, "--start", str(part_start), "--stride", str(stride)]
                cmd += ["--seconds", str(seconds)]
                cmd += ["--connections", str(share), "--timeout", str(timeout_s)]
                cmd += [arg for line in header_lines for arg in ("--header", line)]
            env = {
                **os.environ,
                "BENCH_METHOD": "GET",
                "BENCH_BODY_FILE": "",
                "BENCH_PATH_TEMPLATE": template,
                "BENCH_START": str(part_start),
                "BENCH_STRIDE": str(stride),
                "BENCH_SIZE_LOW": str(SIZE_LOW),
                "BENCH_SIZE_SPAN": str(SIZE_SPAN),
            }
            plans.append((base, share, part_start, cmd, env))
        ports = [urlsplit(base).port or 80 for base in bases]
        server_before = [server_cpu(port) for port in ports]
        cpu_before = _children_cpu()
        procs = [
            subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=REPO_ROOT,
            )
            for _base, _share, _start, cmd, env in plans
        ]
        outputs = []
        for proc in procs:
            try:
                outputs.append(proc.communicate(timeout=seconds + timeout_s + 60))
            except subprocess.TimeoutExpired:
                for other in procs:
                    other.kill()
                    other.communicate()
                raise
        client_cpu = _children_cpu() - cpu_before
        server_after = [server_cpu(port) for port in ports]
    parts = []
    for (base, share, part_start, cmd, _env), proc, (stdout, stderr), before, after in zip(
        plans, procs, outputs, server_before, server_after, strict=True
    ):
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}):\n{stdout}\n{stderr}")
        used = after - before if before is not None and after is not None else None
        parts.append(_varying_result(tool, base + template, share, part_start, stdout, used))
    if len(parts) == 1:
        parts[0].client_cpu_s = client_cpu
        return parts[0]
    return _summed(parts, " + ".join(part.url for part in parts), client_cpu, start)


def _varying_result(
    tool: str, url: str, connections: int, start: int, stdout: str, server_cpu_s: float | None
) -> LoadResult:
    if tool == "wrk":
        lines = stdout.splitlines()
        line = next(x for x in lines if x.startswith("BENCH_JSON "))
        raw = json.loads(line.removeprefix("BENCH_JSON "))
        last = next(x for x in lines if x.startswith("BENCH_LAST_N "))
        duration = raw["duration_us"] / 1e6
        return LoadResult(
            tool="wrk",
            url=url,
            seconds=duration,
            connections=connections,
            requests=raw["requests"],
            rps=raw["requests"] / duration,
            errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
            bad_status=raw["status"],
            latency_p50_ms=raw["p50_us"] / 1000,
            latency_p99_ms=raw["p99_us"] / 1000,
            server_cpu_s=server_cpu_s,
            raw={
                **raw,
                "start": start,
                "last_n": int(last.split()[1]),
                "stdout": stdout,
            },
        )
    raw = json.loads(stdout.strip().splitlines()[-1])
    return LoadResult(
        tool="python",
        url=url,
        seconds=raw["seconds"],
        connections=connections,
        requests=raw["requests"],
        rps=raw["rps"],
        errors=raw["errors"],
        bad_status=raw["bad_status"],
        latency_p50_ms=raw["latency_p50_ms"],
        latency_p99_ms=raw["latency_p99_ms"],
        server_cpu_s=server_cpu_s,
        raw={**raw, "start": start},
    )


def _summed(parts: list[LoadResult], url: str, client_cpu: float, start: int) -> LoadResult:
    """Runs made side by side on several servers as one: rates, requests and CPU added up.

    Latency percentiles cannot be added: the slowest part's are kept.
    """
    cpu = [part.server_cpu_s for part in parts]

    def worst(values: list[float | None]) -> float | None:
        return None if any(v is None for v in values) else max(values)  # type: ignore[type-var]

    return LoadResult(
        tool=parts[0].tool,
        url=url,
        seconds=max(part.seconds for part in parts),
        connections=sum(part.connections for part in parts),
        requests=sum(part.requests for part in parts),
        rps=sum(part.rps for part in parts),
        errors=sum(part.errors for part in parts),
        bad_status=sum(part.bad_status for part in parts),
        latency_p50_ms=worst([part.latency_p50_ms for part in parts]),
        latency_p99_ms=worst([part.latency_p99_ms for part in parts]),
        client_cpu_s=client_cpu,
        server_cpu_s=None if any(c is None for c in cpu) else sum(cpu),  # type: ignore[arg-type]
        raw={
            "start": start,
            "last_n": max(part.raw["last_n"] for part in parts),
            "parts": [
                {
                    "url": part.url,
                    "connections": part.connections,
                    "requests": part.requests,
                    "rps": part.rps,
                    "server_cpu_s": part.server_cpu_s,
                    "latency_p50_ms": part.latency_p50_ms,
                    "latency_p99_ms": part.latency_p99_ms,
                }
                for part in parts
            ],
        },
    )


def next_start(run: LoadResult) -> int:
    """The first request number past every one ``run`` sent (cut-off requests included)."""
    return run.raw["last_n"] + 1


def wait_idle(base: str, *, quiet_cpu_s: float = 0.02, interval_s: float = 0.25) -> float:
    """Wait until the server on ``base``'s port stops using CPU; return the seconds waited.

    A load run ends with requests still queued (gunicorn's backlog, thumbor's
    connections): the server goes on working on them after the load process is
    gone. Without this wait that work would slow down whichever side runs next.
    """
    port = urlsplit(base).port or 80
    began = time.monotonic()
    before = server_cpu(port)
    while before is not None and time.monotonic() - began < 60:
        time.sleep(interval_s)
        now = server_cpu(port)
        if now is None or now - before <= quiet_cpu_s:
            break
        before = now
    return time.monotonic() - began


# -- the fallback load process (no wrk): threads, one keep-alive connection each --


def _varying_worker(url: str, tid: int, stride: int, start: int, stop_at: float, opts, out):
    import http.client

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=opts.timeout)
    k = done = errors = bad = 0
    latencies = []
    while time.time() < stop_at:
        w, h = size_of(start + tid + k * stride)
        k += 1
        path = url[len(f"{parts.scheme}://{parts.netloc}") :].replace("{w}", str(w))
        path = path.replace("{h}", str(h))
        began = time.perf_counter()
        try:
            conn.request("GET", path, headers=opts.headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            continue
        if time.time() <= stop_at:
            done += 1
            latencies.append(time.perf_counter() - began)
            bad += not 200 <= response.status < 400
    conn.close()
    last_n = start + tid + (k - 1) * stride if k else start - 1
    out.append((done, errors, bad, latencies, last_n))


def _load_main(opts: argparse.Namespace) -> None:
    opts.headers = {
        name.strip(): value.strip() for name, value in (h.split(":", 1) for h in opts.header)
    }
    stop_at = time.time() + opts.seconds
    out: list = []
    workers = [
        threading.Thread(
            target=_varying_worker,
            args=(opts.url, t, opts.stride or opts.connections, opts.start, stop_at, opts, out),
        )
        for t in range(opts.connections)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    latencies = sorted(lat for part in out for lat in part[3])
    total = sum(part[0] for part in out)

    def pct(p: float) -> float | None:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
            if latencies
            else None
        )

    print(
        json.dumps(
            {
                "requests": total,
                "seconds": opts.seconds,
                "rps": total / opts.seconds,
                "errors": sum(part[1] for part in out),
                "bad_status": sum(part[2] for part in out),
                "latency_p50_ms": pct(0.5),
                "latency_p99_ms": pct(0.99),
                "last_n": max((part[4] for part in out), default=opts.start - 1),
            }
        )
    )


# -- our service, ready to load ------------------------------------------------


def prepare_service(env: Mapping[str, str]) -> str:
    """Migrate, create a tenant and an editor key (like tests/e2e/test_images_live.py); the key."""
    from tests.support.live_server import cli  # tests/ is on the path only under pytest

    cli(env, "db", "upgrade")
    cli(env, "tenants", "create", "bench")
    made = cli(env, "keys", "create", "--tenant", "bench", "--group", "editor", "--json")
    return json.loads(made)["api_key"]


def rendition_files(data_dir: Path) -> int:
    """Renditions in the local blob store (temp files of writes in flight not counted)."""
    root = Path(data_dir) / "blobs" / "renditions"
    if not root.is_dir():
        return 0
    return sum(
        1 for _d, _s, files in os.walk(root) for name in files if not name.startswith(".tmp-")
    )


# -- the static-file baseline --------------------------------------------------


def create_static_app():
    """A bare Flask app serving the files of ``$BENCH_STATIC_DIR`` with send_file.

    gunicorn: ``tests.benchmarks.renditions_support:create_static_app()``. Same
    conditional and cache headers as the rendition endpoint asks send_file for.
    """
    from flask import Flask, send_from_directory

    folder = Path(os.environ[STATIC_DIR_ENV]).resolve()
    app = Flask(__name__)

    @app.get("/")
    def ready():
        return {"ok": True}

    @app.get("/static-files/<path:name>")
    def static_file(name: str):
        return send_from_directory(folder, name, conditional=True, max_age=31536000)

    return app


# -- thumbor -------------------------------------------------------------------


def find_thumbor() -> Path | None:
    """thumbor's script: ``$BENCH_THUMBOR``, else THUMBOR_DEFAULT, else beside our python / PATH."""
    named = os.environ.get("BENCH_THUMBOR")
    if named:
        return Path(named) if Path(named).is_file() else None
    beside = Path(sys.executable).with_name("thumbor")
    for candidate in (THUMBOR_DEFAULT, beside):
        if candidate.is_file():
            return candidate
    found = shutil.which("thumbor")
    return Path(found) if found else None


def thumbor_version(exe: Path) -> str:
    python = exe.with_name("python")
    result = subprocess.run(
        [str(python), "-c", "import thumbor, PIL; print(thumbor.__version__, PIL.__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        return "unknown"
    thumbor, pillow = result.stdout.split()
    return f"thumbor {thumbor} (Pillow {pillow}, PIL engine)"


def thumbor_config(root: Path, quality: int) -> str:
    """File loader on ``root``, no storage, no result storage, unsafe URLs."""
    return "\n".join(
        [
            "LOADER = 'thumbor.loaders.file_loader'",
            f"FILE_LOADER_ROOT_PATH = {str(root)!r}",
            "STORAGE = 'thumbor.storages.no_storage'",
            "RESULT_STORAGE = None",
            "ALLOW_UNSAFE_URL = True",
            # Like our renditions: same JPEG quality, baseline (not progressive).
            f"QUALITY = {quality}",
            "PROGRESSIVE_JPEG = False",
            "",
        ]
    )


@contextlib.contextmanager
def thumbor_servers(
    exe: Path, root: Path, *, instances: int, quality: int, workdir: Path
) -> Iterator[list[str]]:
    """Run ``instances`` single-process thumbors, each on a port of its own; yield their URLs.

    Not one thumbor with ``--processes N``: its processes share one listening
    socket, and under wrk's few keep-alive connections tornado's accept loop
    often lets one process take every connection while the others idle, which
    divides the rate by N in such runs. Loaded one load process per instance
    (``load_varying`` with every URL), N instances work like N well-balanced
    processes, as gunicorn's sync workers do (one connection at a time each).
    """
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(
                thumbor_server(
                    exe, root, processes=1, quality=quality, workdir=workdir, name=f"thumbor-{i}"
                )
            )
            for i in range(instances)
        ]


@contextlib.contextmanager
def thumbor_server(
    exe: Path, root: Path, *, processes: int, quality: int, workdir: Path, name: str = "thumbor"
) -> Iterator[str]:
    """Run thumbor on a free loopback port with ``--processes``; yield its base URL."""
    import requests

    from tests.support.live_server import free_port

    port = free_port()
    conf = workdir / f"{name}.conf"
    conf.write_text(thumbor_config(root, quality))
    log_path = workdir / f"{name}.log"
    cmd = [str(exe), "-i", "127.0.0.1", "-p", str(port), "-c", str(conf)]
    cmd += ["-l", "error", "--processes", str(processes)]
    with log_path.open("wb") as log:
        # A session of its own: thumbor forks its processes, the group is ended as one.
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"thumbor exited with {proc.returncode}: {log_path.read_text()}")
            try:
                if requests.get(base + "/healthcheck", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"thumbor did not answer: {log_path.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # Its forked processes outlive the parent a moment: wait for the whole group.
        deadline = time.monotonic() + 15
        try:
            while time.monotonic() < deadline:
                os.killpg(proc.pid, 0)
                time.sleep(0.1)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- where a rendition request spends its time -----------------------------------

# (file name ending, function name) -> label; cumulative time of each, per request.
PHASES = {
    ("flask/app.py", "wsgi_app"): "Flask wsgi_app (whole request)",
    ("observability.py", "_start"): "observability: request start",
    ("access.py", "_check_access"): "access check (auth included)",
    ("tenancy.py", "authenticate"): "  auth: key + tenant lookup (2 SELECTs)",
    ("ratelimits.py", "charge"): "rate limiter (budget charge)",
    ("webargs/core.py", "parse"): "query parsing (webargs)",
    ("resources.py", "_params"): "render params: validate",
    ("render.py", "digest"): "RenderParams.digest (all calls)",
    ("images.py", "get_image"): "images.get_image (ORM + selectin tags)",
    ("renditions.py", "get_or_create"): "renditions.get_or_create",
    ("local.py", "exists"): "  store.exists (all calls)",
    ("locks.py", "hold"): "  rendition lock (file lock)",
    ("render.py", "render"): "  render (decode, resize, encode)",
    ("local.py", "put"): "  store.put (write + fsync)",
    ("local.py", "_fsync_dir"): "    of which fsync of the folder",
    ("local.py", "local_path"): "store.local_path",
    ("local.py", "_path"): "LocalBlobStore._path (all calls, resolve)",
    ("flask/helpers.py", "send_file"): "flask.send_file",
    ("observability.py", "_finish"): "observability: metrics + access log",
    ("sessions.py", "_close_session"): "DB session close",
}


def profile_requests(
    app, paths: list[str], headers: Mapping[str, str], *, warm: list[str], timed: list[str]
) -> tuple[float, float, list[tuple[str, float]], str]:
    """cProfile GETs of ``paths`` through the WSGI app (no server, no socket).

    ``warm`` are requested first, then ``timed`` without the profiler, then
    ``paths`` under it. Returns wall and CPU microseconds per request of the
    timed pass, the named phases (microseconds per request, cumulative, under
    the profiler) and the top functions by own time.
    """
    import cProfile
    import io
    import pstats

    client = app.test_client()

    def one(path: str) -> None:
        response = client.get(path, headers=dict(headers))
        response.get_data()
        response.close()
        assert response.status_code == 200, (path, response.status_code, response.get_data()[:300])

    for path in warm:
        one(path)
    began_wall, began_cpu = time.perf_counter(), time.process_time()
    for path in timed:
        one(path)
    wall = (time.perf_counter() - began_wall) / len(timed) * 1e6
    cpu = (time.process_time() - began_cpu) / len(timed) * 1e6
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.runcall(lambda: [one(path) for path in paths])
    profiled = (time.perf_counter() - began) / len(paths) * 1e6
    stats = pstats.Stats(profiler)
    found: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, _tt, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for (ending, name), label in PHASES.items():
            if func == name and filename.replace(os.sep, "/").endswith(ending):
                found[label] = max(found.get(label, 0.0), cumulative / len(paths) * 1e6)
    phases = [(label, found[label]) for label in PHASES.values() if label in found]
    phases.insert(0, ("(all, under the profiler)", profiled))
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(12)
    lines = out.getvalue().splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    top = "\n".join(line for line in lines[header:] if line.strip())
    return wall, cpu, phases, top


def profile_in_subprocess(
    env: Mapping[str, str],
    template: str,
    headers: Mapping[str, str],
    *,
    requests_n: int,
    vary: bool,
) -> dict:
    """profile_requests() in a fresh process with ``env``, as a gunicorn worker has it.

    ``template`` holds {w} and {h}: with ``vary`` each request gets a box of
    its own (uncached), else all ask for 256 x 256.

    A process of its own so that prometheus-client starts in multiprocess mode
    (as the gunicorn config module sets it up) and no variable leaks into ours.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_REPO_")}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as metrics_dir:
        cmd = [sys.executable, "-m", "tests.benchmarks.renditions_support", "profile", template]
        cmd += ["--requests", str(requests_n)] + (["--vary"] if vary else [])
        cmd += [arg for name, value in headers.items() for arg in ("--header", f"{name}: {value}")]
        result = subprocess.run(
            cmd,
            env={**clean, **env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"profile failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _profile_main(opts: argparse.Namespace) -> None:
    from image_repo.http.app import create_app

    headers = {
        name.strip(): value.strip() for name, value in (h.split(":", 1) for h in opts.header)
    }

    def path(w: int, h: int) -> str:
        return opts.template.replace("{w}", str(w)).replace("{h}", str(h))

    n = opts.requests
    if opts.vary:
        # Every request a box of its own: 256 wide, 3000 + i high (taller than the
        # load runs ever ask), so each is a miss with the same 256 x 171 result.
        boxes = [path(256, 3000 + i) for i in range(3 + 2 * n)]
        warm, timed, paths = boxes[:3], boxes[3 : 3 + n], boxes[3 + n :]
    else:
        warm, timed, paths = [path(256, 256)] * 50, [path(256, 256)] * n, [path(256, 256)] * n
    app = create_app()
    real_stdout = sys.stdout
    # The service logs a JSON line per request to stdout: to a file, as under gunicorn.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        wall, cpu, phases, top = profile_requests(app, paths, headers, warm=warm, timed=timed)
    services_of(app).engine.dispose()
    result = {"wall_us": wall, "cpu_us": cpu, "phases_us": phases, "top": top}
    real_stdout.write(json.dumps(result) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("load", help="load with a new rendition size per request")
    load.add_argument("url", help="with {w} and {h}")
    load.add_argument("--start", type=int, default=0)
    load.add_argument("--stride", type=int, default=0, help="default: --connections")
    load.add_argument("--seconds", type=float, default=5.0)
    load.add_argument("--connections", type=int, default=4)
    load.add_argument("--timeout", type=float, default=30.0)
    load.add_argument("--header", action="append", default=[])
    profile = commands.add_parser("profile", help="cProfile GETs through the WSGI app")
    profile.add_argument("template", help="path with {w} and {h}")
    profile.add_argument("--requests", type=int, default=500)
    profile.add_argument("--vary", action="store_true", help="a new size per request")
    profile.add_argument("--header", action="append", default=[])
    opts = parser.parse_args(argv)
    if opts.command == "load":
        _load_main(opts)
    else:
        _profile_main(opts)


if __name__ == "__main__":
    main()
