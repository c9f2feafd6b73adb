"""A worker killed with SIGKILL during concurrent uploads leaves a consistent store."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image

from tests.support.live_server import cli_run, gunicorn_server


def photo(seed: int) -> bytes:
    """A noisy 1200 x 900 JPEG (~1 MB): slow enough to decode that kills land mid-upload."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (1200, 900), rng.randbytes(1200 * 900 * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def worker_pids(master: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            children.append(int(stat.parent.name))
    return children


def test_sigkill_during_uploads_leaves_no_row_without_bytes(tmp_path):
    env = {"IMAGE_REPO_DATA_DIR": str(tmp_path / "data")}
    assert cli_run(env, "db", "upgrade").returncode == 0
    cli_run(env, "tenants", "create", "acme")
    key = json.loads(
        cli_run(env, "keys", "create", "--tenant", "acme", "--group", "editor", "--json").stdout
    )
    photos = [photo(i) for i in range(24)]
    pidfile = tmp_path / "gunicorn.pid"
    with gunicorn_server({**env, "GUNICORN_CMD_ARGS": f"--pid {pidfile}"}, workers=2) as base:
        master = int(pidfile.read_text())
        started = threading.Barrier(2)
        results: list[int] = []

        def send(i: int) -> int:
            if i == 4:
                started.wait(timeout=30)
            try:
                response = requests.post(
                    f"{base}/images",
                    files={"image": (f"p{i}.jpg", photos[i], "image/jpeg")},
                    headers={"X-API-Key": key["api_key"]},
                    timeout=60,
                )
                return response.status_code
            except requests.ConnectionError:
                return -1  # the worker died under this request

        def killer() -> None:
            started.wait(timeout=30)  # uploads are in flight
            for pid in worker_pids(master)[:1]:
                os.kill(pid, signal.SIGKILL)

        kill_thread = threading.Thread(target=killer)
        kill_thread.start()
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(send, range(len(photos))))
        kill_thread.join()
        assert set(results) <= {201, -1}, results
        assert results.count(201) >= 1

    fsck = cli_run(env, "fsck", "--json")
    report = json.loads(fsck.stdout)
    assert report["missing"] == [] and report["corrupt"] == [], report
    assert fsck.returncode == 0
    gc = json.loads(cli_run(env, "gc", "--grace", "0s", "--json").stdout)
    assert gc["originals_removed"] == len(report["orphans"])
    after = json.loads(cli_run(env, "fsck", "--json").stdout)
    assert after["orphans"] == [] and after["ok"]
    assert not list((tmp_path / "data" / "blobs").rglob(".tmp-*"))
