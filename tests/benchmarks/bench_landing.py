"""``GET /`` of the service under gunicorn against a bare Flask app with the same answer.

Both run under the same gunicorn config module and worker count, side by
side; the load comes from another process (wrk, or loadgen.py without it).
Each side is warmed, then measured ``BENCH_ROUNDS`` times, alternating, and
the medians are compared. A measurement: it prints whether the target is met
and never fails on it.
"""

from __future__ import annotations

import requests

from tests.support.live_server import gunicorn_server

from .harness import (
    alternate,
    describe,
    environment_info,
    median_rps,
    median_server_cpu_us,
    write_results,
)

TARGET_RATIO = 0.7  # the service should keep at least 70 % of a bare Flask app's rate
SERVICE_APP = "image_repo.wsgi:app"
BARE_APP = "tests.benchmarks.bare_app:app"


def test_landing_vs_bare_flask(bench_settings, run_load, service_env, tmp_path):
    settings = bench_settings
    workers = settings.workers
    with (
        gunicorn_server(service_env, workers=workers, app=SERVICE_APP) as service,
        gunicorn_server(service_env, workers=workers, app=BARE_APP) as bare,
    ):
        urls = {"image_repo": service + "/", "bare flask": bare + "/"}
        # Same status and the same bytes, or the comparison means nothing.
        answers = {name: requests.get(url, timeout=10) for name, url in urls.items()}
        assert {r.status_code for r in answers.values()} == {200}
        assert answers["image_repo"].content == answers["bare flask"].content

        for url in urls.values():  # warm-up: imports, first-request setup, caches
            run_load(url, settings.warmup)
        sides = {name: lambda u=url: run_load(u) for name, url in urls.items()}
        runs = alternate(sides, settings.rounds)

    ours, bare_rps = median_rps(runs["image_repo"]), median_rps(runs["bare flask"])
    ratio = ours / bare_rps
    met = "met" if ratio >= TARGET_RATIO else "NOT met"
    tool = runs["image_repo"][0].tool
    cpu = {name: median_server_cpu_us(side) for name, side in runs.items()}

    print()
    print(
        f"landing: {settings.rounds} alternating runs of {settings.seconds:g} s per side, "
        f"{settings.connections} connections, {workers} gunicorn workers, load by {tool}"
    )
    for name, side in runs.items():
        for i, run in enumerate(side, 1):
            print(f"  {name:<10} run {i}: {describe(run)}")
    print(
        f"landing: image_repo {ours:.0f} req/s, bare flask {bare_rps:.0f} req/s, "
        f"ratio {ratio:.2f} (target >= {TARGET_RATIO}: {met})"
    )
    if None not in cpu.values():
        # Steadier on a shared machine than req/s: the servers' own CPU per request.
        print(
            f"landing: server CPU per request: image_repo {cpu['image_repo']:.0f} us, "
            f"bare flask {cpu['bare flask']:.0f} us, "
            f"ratio bare/ours {cpu['bare flask'] / cpu['image_repo']:.2f}"
        )

    data = {
        "benchmark": "landing",
        "settings": settings.__dict__,
        "environment": environment_info(),
        "tool": tool,
        "median_rps": {"image_repo": ours, "bare flask": bare_rps},
        "ratio": ratio,
        "median_server_cpu_us_per_request": cpu,
        "target_ratio": TARGET_RATIO,
        "target_met": ratio >= TARGET_RATIO,
        "runs": runs,
    }
    for path in write_results("landing", data, tmp_path, settings.results_dir):
        print(f"landing: results written to {path}")

    # Sanity only: every run completed requests and none failed.
    for side in runs.values():
        for run in side:
            assert run.requests > 0, run
            assert run.errors == 0 and run.bad_status == 0, run
