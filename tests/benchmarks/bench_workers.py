"""Gunicorn worker class and counts, measured on a mix of uploads and renders.

Every configuration is a real gunicorn with the service's config module
(``-c python:image_repo.gunicorn_conf``), its own data folder (SQLite and
local blobs), rate limits off, and the same start: one data folder, migrated,
with a tenant, its key and ``BENCH_MIX_IMAGES`` photos uploaded and their
thumbnails made, copied for every configuration. The load comes from another
process (workers_support.py): ``BENCH_MIX_CLIENTS`` client threads, each
sending one request after the other, each request drawn from this mix:

* 20 % uploads of 1-3 MB photo JPEGs (2400-3600 px, sensor-like noise,
  quality 90) whose bytes were never sent before;
* 40 % uncached renders (``/images/{id}/render?width=W``, a width never
  asked before for that image, webp output by default);
* 30 % cached thumbnails (``/images/{id}/thumbnail`` of the seeded images);
* 10 % lists (``/images?limit=20``).

Configurations (``cores`` = ``os.cpu_count()``), unless ``BENCH_WORKER_CONFIGS``
names others (``sync:3,gthread:2x4``: class, workers, ``x`` threads):

* ``sync`` with cores + 1 workers (the config module's default);
* ``sync`` with 2 * cores + 1 workers;
* ``gthread`` with cores workers and 4 threads;
* ``gthread`` with cores + 1 workers and 2 threads.

gevent and eventlet are not installed (and would not help a CPU-bound
decode); they are not measured. All servers are up at once and idle but for
the one under load; each round runs every configuration once, the order
rotated from round to round, after one unmeasured warm-up run each. Kept per
configuration: requests/s (median of the rounds, with the lowest and highest,
and each run against the mean of its round, which cancels drifts of the
machine between rounds), the server's CPU use in cores (below the core count:
the machine was shared and the run says more about the neighbours than about
the worker class), server CPU per request (over the run and its tail), latency p50/p95/p99 per request kind (all measured
rounds pooled; the p95 of each round too, for the spread), errors (socket
errors and timeouts), non-2xx answers, cache surprises (an uncached render
answered from the cache, a cached thumbnail computed, an upload deduped), and
the memory of the workers at the end (sum of RSS, of PSS, and of peak RSS).
Errors and non-2xx answers fail the test, after the report.

=========================  =======  ============================================
variable                   default  meaning
=========================  =======  ============================================
``BENCH_MIX_SECONDS``      12       length of one measured run
``BENCH_MIX_WARMUP``       3        length of the unmeasured warm-up run
``BENCH_MIX_ROUNDS``       4        measured runs per configuration
``BENCH_MIX_CLIENTS``      16       concurrent clients
``BENCH_MIX_IMAGES``       16       images uploaded and thumbnailed before the load
``BENCH_WORKER_CONFIGS``   (above)  configurations to compare
``BENCH_RESULTS_DIR``      (none)   also write the JSON results to this folder
=========================  =======  ============================================

Run (``-n 0``: one process, whatever pytest-xdist options the project's addopts hold)::

    .venv/bin/python -m pytest tests/benchmarks/bench_workers.py -o python_files='bench_*.py' -s -n 0
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.corpus import CORPUS_DIR
from tests.support.live_server import gunicorn_server

from .harness import environment_info, write_results
from .workers_support import (
    KINDS,
    MIX,
    gunicorn_memory,
    make_base_photos,
    prepare_service,
    run_driver,
    wait_idle,
    with_comment,
)

SHORT = {
    "upload": "upload",
    "render_uncached": "render",
    "thumbnail_cached": "cached",
    "list": "list",
}


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class WorkerConfig:
    worker_class: str
    workers: int
    threads: int = 1

    @property
    def name(self) -> str:
        if self.worker_class == "gthread":
            return f"gthread {self.workers}w x {self.threads}t"
        return f"{self.worker_class} {self.workers}w"

    @property
    def cmd_args(self) -> str:
        args = f"--worker-class {self.worker_class}"
        return args + (f" --threads {self.threads}" if self.worker_class == "gthread" else "")

    @classmethod
    def parse(cls, text: str) -> WorkerConfig:
        worker_class, _, counts = text.strip().partition(":")
        workers, _, threads = counts.partition("x")
        return cls(worker_class, int(workers), int(threads or 1))


def default_configs(cores: int) -> list[WorkerConfig]:
    return [
        WorkerConfig("sync", cores + 1),
        WorkerConfig("sync", 2 * cores + 1),
        WorkerConfig("gthread", cores, 4),
        WorkerConfig("gthread", cores + 1, 2),
    ]


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (as loadgen.py), in ms; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.0f}"


@pytest.fixture(scope="module", autouse=True)
def _alone():
    """Measurements need the machine to themselves, and -s output needs one process."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("run benchmarks alone: add -n 0 (pytest-xdist would run them side by side)")


def _seed(base: str, key: str, photos: list[bytes], count: int, parallel: int) -> list[str]:
    """Upload ``count`` photos with bytes of their own and make their thumbnails; the ids."""
    headers = {"X-API-Key": key}

    def one(i: int) -> str:
        data = with_comment(photos[i % len(photos)], f"seed image {i}".encode())
        made = requests.post(
            f"{base}/images",
            files={"image": (f"seed-{i}.jpg", data, "image/jpeg")},
            headers=headers,
            timeout=120,
        )
        assert made.status_code == 201, made.text[:500]
        image_id = made.json()["id"]
        for expected in ("miss", "hit"):
            got = requests.get(f"{base}/images/{image_id}/thumbnail", headers=headers, timeout=60)
            assert got.status_code == 200, got.text[:500]
            assert got.headers["X-Rendition-Cache"] == expected, got.headers
        return image_id

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, range(count)))


def summarise(runs: list[dict]) -> dict:
    """Figures of one configuration from its measured runs."""
    cpu = [
        r["server_cpu_s"] / r["requests"] * 1000
        for r in runs
        if r["server_cpu_s"] is not None and r["requests"]
    ]
    summary = {
        "rps_runs": [r["rps"] for r in runs],
        "rps_median": statistics.median(r["rps"] for r in runs),
        "server_cpu_ms_per_request_runs": cpu,
        "server_cpu_ms_per_request": statistics.median(cpu) if cpu else None,
        "driver_cpu_share": statistics.median(r["driver_cpu_s"] / r["seconds"] for r in runs),
        "errors": sum(k["errors"] for r in runs for k in r["kinds"].values()),
        "bad_status": sum(k["bad_status"] for r in runs for k in r["kinds"].values()),
        "surprises": sum(k["surprises"] for r in runs for k in r["kinds"].values()),
        "kinds": {},
    }
    for kind in KINDS:
        pooled = [lat for r in runs for lat in r["kinds"][kind]["latencies_s"]]
        statuses: dict[str, int] = {}
        for r in runs:
            for status, n in r["kinds"][kind]["statuses"].items():
                statuses[status] = statuses.get(status, 0) + n
        summary["kinds"][kind] = {
            "requests": len(pooled),
            "rps_median": statistics.median(
                r["kinds"][kind]["requests"] / r["seconds"] for r in runs
            ),
            "p50_ms": pct(pooled, 0.50),
            "p95_ms": pct(pooled, 0.95),
            "p99_ms": pct(pooled, 0.99),
            "p95_ms_runs": [pct(r["kinds"][kind]["latencies_s"], 0.95) for r in runs],
            "statuses": statuses,
            "errors": sum(r["kinds"][kind]["errors"] for r in runs),
            "surprises": sum(r["kinds"][kind]["surprises"] for r in runs),
        }
    return summary


def _log_problems(path: Path) -> dict[str, int]:
    text = path.read_text(errors="replace")
    return {
        "traceback": text.count("Traceback (most recent call last)"),
        "worker_timeout": text.count("WORKER TIMEOUT"),
        "error_lines": sum(1 for line in text.splitlines() if "[ERROR]" in line),
    }


def test_worker_classes(bench_settings, tmp_path):
    seconds = _env_float("BENCH_MIX_SECONDS", 12)
    warmup = _env_float("BENCH_MIX_WARMUP", 3)
    rounds = _env_int("BENCH_MIX_ROUNDS", 4)
    clients = _env_int("BENCH_MIX_CLIENTS", 16)
    seeded = _env_int("BENCH_MIX_IMAGES", 16)
    cores = os.cpu_count() or 1
    if os.environ.get("BENCH_WORKER_CONFIGS"):
        configs = [WorkerConfig.parse(t) for t in os.environ["BENCH_WORKER_CONFIGS"].split(",")]
    else:
        configs = default_configs(cores)
    names = [c.name for c in configs]
    assert len(set(names)) == len(names), names
    skipped = [m for m in ("gevent", "eventlet") if importlib.util.find_spec(m) is None]

    began = time.perf_counter()
    photos = make_base_photos(CORPUS_DIR, tmp_path / "photos")
    photo_bytes = [p.read_bytes() for p in photos]
    # One start for all: a data folder migrated, with a key and the seeded images
    # and thumbnails, copied for each configuration (same ids, same key).
    seed_env = {
        "IMAGE_REPO_ENV": "production",
        "IMAGE_REPO_SECRET_KEY": "bench-" + os.urandom(24).hex(),
        "IMAGE_REPO_DATA_DIR": str(tmp_path / "seed" / "data"),
        "IMAGE_REPO_RATELIMIT_ENABLED": "false",
    }
    key = prepare_service(seed_env)
    with gunicorn_server(seed_env, workers=cores + 1) as seed_base:
        ids = _seed(seed_base, key, photo_bytes, seeded, parallel=cores + 1)
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(ids))
    envs = {}
    for config in configs:
        data_dir = tmp_path / config.name.replace(" ", "-") / "data"
        shutil.copytree(seed_env["IMAGE_REPO_DATA_DIR"], data_dir)
        envs[config.name] = {
            **seed_env,
            "IMAGE_REPO_DATA_DIR": str(data_dir),
            "GUNICORN_CMD_ARGS": config.cmd_args,
        }

    with ExitStack() as stack:
        bases, logs = {}, {}
        for config in configs:
            logs[config.name] = tmp_path / f"{config.name.replace(' ', '-')}.log"
            bases[config.name] = stack.enter_context(
                gunicorn_server(
                    envs[config.name], workers=config.workers, log_path=logs[config.name]
                )
            )
        for config in configs:
            used = logs[config.name].read_text(errors="replace")
            assert f"Using worker: {config.worker_class}" in used, used[-2000:]
        setup_seconds = time.perf_counter() - began

        render_next = dict.fromkeys(names, 0)

        def run(name: str, run_seconds: float, seed: str) -> dict:
            load_before = os.getloadavg()[0]
            result = run_driver(
                bases[name],
                key=key,
                ids_file=ids_file,
                photos=photos,
                seconds=run_seconds,
                clients=clients,
                seed=seed,
                render_start=render_next[name],
            )
            render_next[name] = result["render_next"]
            result["loadavg_1min"] = [load_before, os.getloadavg()[0]]
            result["idle_wait_s"] = wait_idle(bases[name])
            return result

        load_began = time.perf_counter()
        warmups = {name: run(name, warmup, "warm-up") for name in names}
        runs: dict[str, list[dict]] = {name: [] for name in names}
        orders = []
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            orders.append(order)
            for name in order:
                runs[name].append(run(name, seconds, f"round-{r}"))
        load_seconds = time.perf_counter() - load_began
        memory = {}
        for name in names:
            port = int(bases[name].rsplit(":", 1)[1])
            memory[name] = gunicorn_memory(port)
    problems = {name: _log_problems(logs[name]) for name in names}
    summaries = {name: summarise(runs[name]) for name in names}
    # Each run against the mean of its round: drifts of the machine between
    # rounds cancel out (the runs of a round are a minute apart at most).
    round_means = [statistics.mean(runs[n][r]["rps"] for n in names) for r in range(rounds)]
    for name in names:
        rel = [runs[name][r]["rps"] / round_means[r] for r in range(rounds)]
        summaries[name]["rps_vs_round_runs"] = rel
        summaries[name]["rps_vs_round_median"] = statistics.median(rel)
    loads = [x for n in names for r in runs[n] for x in r["loadavg_1min"]]

    # --- report -------------------------------------------------------------
    mix = ", ".join(f"{pct_} % {SHORT[k]}" for k, pct_ in MIX.items())
    print()
    print(
        f"workers: {cores} cores, gunicorn {importlib.metadata.version('gunicorn')}; "
        f"{clients} clients, mix {mix}; {rounds} rounds of {seconds:g} s per configuration "
        f"(+{warmup:g} s warm-up), order rotated; setup {setup_seconds:.0f} s, load "
        f"{load_seconds:.0f} s; 1-min load average {min(loads):.1f} to {max(loads):.1f}"
    )
    if skipped:
        print(f"workers: not installed, not measured: {', '.join(skipped)}")
    print()
    print(
        f"{'configuration':<20} {'req/s med [min-max]':>21} {'vs round [min-max]':>20} "
        f"{'cores used':>10} {'CPU ms/req':>10} "
        f"{'errors':>6} {'non-2xx':>7} {'surpr.':>6} {'RSS MiB':>7} {'PSS MiB':>7} "
        f"{'peak MiB':>8}"
    )
    for name in names:
        s, m = summaries[name], memory[name]
        spread = f"{s['rps_median']:.1f} [{min(s['rps_runs']):.1f}-{max(s['rps_runs']):.1f}]"
        rel = s["rps_vs_round_runs"]
        rel_spread = f"{s['rps_vs_round_median']:.2f} [{min(rel):.2f}-{max(rel):.2f}]"
        cores_used = statistics.median(
            r["server_cpu_s"] / r["seconds"] for r in runs[name] if r["server_cpu_s"] is not None
        )
        cpu = s["server_cpu_ms_per_request"]
        print(
            f"{name:<20} {spread:>21} {rel_spread:>20} {cores_used:>10.2f} {_ms(cpu):>10} {s['errors']:>6} {s['bad_status']:>7} "
            f"{s['surprises']:>6} {_mib(m['workers_rss_kib']):>7} "
            f"{_mib(m['workers_pss_kib']):>7} {_mib(m['workers_peak_rss_kib']):>8}"
        )
    print()
    print(
        "latency ms, p50 / p95 / p99 (rounds pooled); p95 of each round in brackets; req/s median"
    )
    print(f"{'configuration':<20} " + " ".join(f"{SHORT[k]:<34}" for k in KINDS))
    for name in names:
        cells = []
        for kind in KINDS:
            k = summaries[name]["kinds"][kind]
            runs_p95 = "/".join(_ms(v) for v in k["p95_ms_runs"])
            cells.append(
                f"{_ms(k['p50_ms'])}/{_ms(k['p95_ms'])}/{_ms(k['p99_ms'])} [{runs_p95}] "
                f"{k['rps_median']:.1f}/s"
            )
        print(f"{name:<20} " + " ".join(f"{c:<34}" for c in cells))
    print()
    print(
        "workers: memory is of the workers at the end (master apart); driver CPU "
        + ", ".join(f"{n} {summaries[n]['driver_cpu_share']:.2f}" for n in names)
        + " cores; server logs: "
        + ", ".join(
            f"{n} {p['traceback']} tracebacks/{p['worker_timeout']} timeouts"
            for n, p in problems.items()
        )
    )

    data = {
        "benchmark": "workers",
        "environment": environment_info(),
        "gunicorn": importlib.metadata.version("gunicorn"),
        "not_installed": skipped,
        "settings": {
            "seconds": seconds,
            "warmup": warmup,
            "rounds": rounds,
            "clients": clients,
            "seeded_images": seeded,
            "mix": MIX,
            "photos": [{"path": p, "bytes": p.stat().st_size} for p in photos],
        },
        "configs": {
            c.name: {
                "class": c.worker_class,
                "workers": c.workers,
                "threads": c.threads,
                "cmd_args": c.cmd_args,
            }
            for c in configs
        },
        "orders": orders,
        "round_mean_rps": round_means,
        "summary": summaries,
        "memory": memory,
        "log_problems": problems,
        "runs": runs,
        "warmups": {n: {k: v for k, v in w.items() if k != "kinds"} for n, w in warmups.items()},
    }
    for path in write_results("workers", data, tmp_path, bench_settings.results_dir):
        print(f"workers: results written to {path}")

    failed = {
        n: (s["errors"], s["bad_status"])
        for n, s in summaries.items()
        if s["errors"] or s["bad_status"]
    }
    assert not failed, f"errors / non-2xx answers: {failed}"
