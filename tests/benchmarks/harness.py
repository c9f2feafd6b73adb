"""Shared pieces of the benchmarks: load from another process, alternating rounds, reports.

Settings come from the environment so a run can be made longer or shorter
without editing code:

=====================  =======  ==============================================
variable               default  meaning
=====================  =======  ==============================================
``BENCH_SECONDS``      5        length of one measured load run
``BENCH_WARMUP``       2        length of the unmeasured warm-up run per server
``BENCH_CONNECTIONS``  16       concurrent connections
``BENCH_THREADS``      2        wrk threads / Python load processes
``BENCH_ROUNDS``       3        measured runs per side (the median is kept)
``BENCH_WORKERS``      2        gunicorn workers per server
``BENCH_LOADGEN``      auto     ``wrk``, ``python`` or ``auto`` (wrk if on PATH)
``BENCH_RESULTS_DIR``  (none)   also write the JSON results to this folder
=====================  =======  ==============================================
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

LOADGEN = Path(__file__).with_name("loadgen.py")

# wrk prints its own report; this script adds one JSON line with the numbers we keep.
WRK_SCRIPT = r"""
local body_file = os.getenv("BENCH_BODY_FILE")
if os.getenv("BENCH_METHOD") then wrk.method = os.getenv("BENCH_METHOD") end
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class BenchSettings:
    seconds: float = 5.0
    warmup: float = 2.0
    connections: int = 16
    threads: int = 2
    rounds: int = 3
    workers: int = 2
    loadgen: str = "auto"
    results_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> BenchSettings:
        results = env.get("BENCH_RESULTS_DIR")
        return cls(
            seconds=float(env.get("BENCH_SECONDS", cls.seconds)),
            warmup=float(env.get("BENCH_WARMUP", cls.warmup)),
            connections=int(env.get("BENCH_CONNECTIONS", cls.connections)),
            threads=int(env.get("BENCH_THREADS", cls.threads)),
            rounds=int(env.get("BENCH_ROUNDS", cls.rounds)),
            workers=int(env.get("BENCH_WORKERS", cls.workers)),
            loadgen=env.get("BENCH_LOADGEN", cls.loadgen),
            results_dir=Path(results) if results else None,
        )

    def tool(self) -> str:
        if self.loadgen == "auto":
            return "wrk" if shutil.which("wrk") else "python"
        if self.loadgen not in {"wrk", "python"}:
            raise ValueError(f"BENCH_LOADGEN must be wrk, python or auto, not {self.loadgen!r}")
        return self.loadgen


@dataclass
class LoadResult:
    """One load run: completed requests per second and what went wrong."""

    tool: str
    url: str
    seconds: float
    connections: int
    requests: int
    rps: float
    errors: int  # socket errors: connect, read, write, timeout
    bad_status: int  # responses with status >= 400 (wrk) / outside 2xx-3xx (python)
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    client_cpu_s: float = 0.0  # CPU the load generator itself used (user + system)
    server_cpu_s: float | None = None  # CPU of the processes listening on the port (Linux)
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def client_cpu_share(self) -> float:
        """The load generator's CPU use, in cores busy over the run."""
        return self.client_cpu_s / self.seconds if self.seconds else 0.0

    @property
    def server_cpu_us_per_request(self) -> float | None:
        """Server CPU per completed request: steadier than req/s on a busy machine."""
        if self.server_cpu_s is None or not self.requests:
            return None
        return self.server_cpu_s / self.requests * 1e6


def _listening_pids(port: int) -> set[int]:
    """Processes holding a listening TCP socket on ``port`` (Linux /proc; else empty).

    For gunicorn that is the master and every worker: they share the socket.
    """
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{cols[9]}]")
    pids = set()
    if not inodes:
        return pids
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                pids.add(int(entry.name))
        except OSError:
            continue
    return pids


def server_cpu(port: int) -> float | None:
    """CPU seconds used so far by the server on ``port``, its reaped workers included.

    Sums user + system time of every process listening on the port plus the
    time of children they have reaped (``cutime``/``cstime``: the gunicorn
    master collects the time of workers recycled by ``max_requests``). Call it
    before and after a run and take the difference. None where /proc is missing.
    """
    pids = _listening_pids(port)
    if not pids:
        return None
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load(
    url: str,
    seconds: float = 5.0,
    connections: int = 16,
    *,
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
    body: bytes = b"",
    threads: int = 2,
    tool: str = "auto",
) -> LoadResult:
    """Put ``url`` under load from a separate process; return the measured rate.

    ``headers`` are sent with every request (``{"X-API-Key": key}``);
    ``method`` and ``body`` make it a write benchmark. ``tool`` is ``wrk``,
    ``python`` (``loadgen.py``) or ``auto`` (wrk when it is on PATH).
    """
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
    headers = dict(headers or {})
    threads = max(1, min(threads, connections))
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        body_file = ""
        if body:
            body_file = str(Path(tmp) / "body")
            Path(body_file).write_bytes(body)
        header_lines = [f"{name}: {value}" for name, value in headers.items()]
        if tool == "wrk":
            script = Path(tmp) / "report.lua"
            script.write_text(WRK_SCRIPT)
            cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script)]
            cmd += [arg for line in header_lines for arg in ("-H", line)] + [url]
            env = {**os.environ, "BENCH_METHOD": method.upper(), "BENCH_BODY_FILE": body_file}
        elif tool == "python":
            cmd = [sys.executable, str(LOADGEN), url, "--seconds", str(seconds)]
            cmd += ["--connections", str(connections), "--processes", str(threads)]
            cmd += ["--method", method.upper()]
            cmd += [arg for line in header_lines for arg in ("--header", line)]
            if body_file:
                cmd += ["--body-file", body_file]
            env = dict(os.environ)
        else:
            raise ValueError(f"unknown load tool {tool!r}")
        port = urlsplit(url).port or 80
        server_before = server_cpu(port)
        cpu_before = _children_cpu()
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=seconds + 60, check=False
        )
        client_cpu = _children_cpu() - cpu_before
        server_after = server_cpu(port)
        used = None
        if server_before is not None and server_after is not None:
            used = server_after - server_before
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    if tool == "wrk":
        line = next(x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON "))
        raw = json.loads(line.removeprefix("BENCH_JSON "))
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
            client_cpu_s=client_cpu,
            server_cpu_s=used,
            raw={**raw, "stdout": proc.stdout},
        )
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
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
        client_cpu_s=client_cpu,
        server_cpu_s=used,
        raw=raw,
    )


def alternate(
    sides: Mapping[str, Callable[[], LoadResult]], rounds: int
) -> dict[str, list[LoadResult]]:
    """Run every side once per round, in turn (A B, A B, ...), and collect the results.

    Alternating spreads slow drifts of the machine (thermal, other jobs) over
    all sides instead of charging them to whichever ran last.
    """
    results: dict[str, list[LoadResult]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            results[name].append(run())
    return results


def median_rps(runs: list[LoadResult]) -> float:
    return statistics.median(r.rps for r in runs)


def median_server_cpu_us(runs: list[LoadResult]) -> float | None:
    values = [r.server_cpu_us_per_request for r in runs]
    if any(v is None for v in values):
        return None
    return statistics.median(values)


def best_rps(runs: list[LoadResult]) -> float:
    """The fastest run: on a shared machine the one least slowed by others' work."""
    return max(r.rps for r in runs)


def best_server_cpu_us(runs: list[LoadResult]) -> float | None:
    """The least server CPU per request over the runs (None where it was not measured)."""
    values = [r.server_cpu_us_per_request for r in runs]
    if any(v is None for v in values):
        return None
    return min(values)  # type: ignore[type-var]


def environment_info() -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def write_results(name: str, data: dict, *dirs: Path | None) -> list[Path]:
    """Write ``data`` as ``<name>.json`` into each given folder; return the paths."""
    written = []
    for folder in dirs:
        if folder is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.json"
        path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
        written.append(path)
    return written


def _jsonable(value):
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, LoadResult):
        data = asdict(value)
        data.pop("raw")
        data["client_cpu_share"] = value.client_cpu_share
        data["server_cpu_us_per_request"] = value.server_cpu_us_per_request
        return data
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def describe(run: LoadResult) -> str:
    p50 = f"{run.latency_p50_ms:.1f}" if run.latency_p50_ms is not None else "-"
    p99 = f"{run.latency_p99_ms:.1f}" if run.latency_p99_ms is not None else "-"
    cpu = run.server_cpu_us_per_request
    server = f"{cpu:5.0f} us" if cpu is not None else "    -"
    return (
        f"{run.rps:6.0f} req/s  server CPU {server}/req  p50 {p50} ms  p99 {p99} ms  "
        f"errors {run.errors}  bad status {run.bad_status}  "
        f"load-generator CPU {run.client_cpu_share:.2f} cores"
    )
