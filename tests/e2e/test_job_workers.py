"""Job workers as real processes: killed with SIGKILL mid-job, and two of them on Redis.

Each worker is ``image-repo worker`` in a process of its own, on the same
database, data folder and queue as the app the test uploads through.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from image_repo.db.models import ImageAnalysis
from image_repo.db.types import utcnow
from image_repo.domain import analyses
from image_repo.http.context import services_of
from tests.conftest import TEST_REDIS_URL, create_tenant, make_app, needs_redis
from tests.support import holding_worker
from tests.support.images import png_bytes, upload
from tests.support.jobs import queued_analyses, queued_count

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT = 120  # seconds: generous, on a busy machine; the waits end as soon as the state is there


def large_png(seed: int) -> bytes:
    im = Image.new("RGB", (2100, 1400), (seed * 37 % 256, 80, 160))
    im.paste((250, seed * 11 % 256, 20), (seed * 50, 100, seed * 50 + 600, 700))
    out = io.BytesIO()
    im.save(out, "PNG", compress_level=1)
    return out.getvalue()


def wait_for(condition, what: str, procs=()) -> None:
    end = time.monotonic() + WAIT
    while time.monotonic() < end:
        if condition():
            return
        for proc in procs:
            assert proc.poll() is None, f"a worker exited ({proc.returncode}) before {what}"
        time.sleep(0.05)  # polling a state another process changes
    raise AssertionError(f"not within {WAIT} s: {what}")


@pytest.fixture
def hold_kind():
    holding_worker.register()
    yield
    analyses.ANALYSES.pop(holding_worker.KIND)


@pytest.fixture
def jobs_app(app_config, tmp_path, request):
    config = app_config | {"JOB_LEASE": 2, "QUEUE_NAME": f"test-{uuid.uuid4().hex[:12]}"}
    config |= getattr(request, "param", {})
    app = make_app(config)
    yield app
    services_of(app).engine.dispose()


def worker_env(app, hold_dir: Path) -> dict[str, str]:
    config = app.config
    env = {
        **os.environ,
        "IMAGE_REPO_DATA_DIR": str(config["DATA_DIR"]),
        "IMAGE_REPO_DATABASE_URL": config["DATABASE_URL"],
        "IMAGE_REPO_QUEUE_NAME": config["QUEUE_NAME"],
        "IMAGE_REPO_JOB_LEASE": str(config["JOB_LEASE"]),
        "HOLD_DIR": str(hold_dir),
    }
    env.pop("IMAGE_REPO_REDIS_URL", None)
    if config.get("QUEUE_URL"):
        env["IMAGE_REPO_QUEUE_URL"] = config["QUEUE_URL"]
    return env


@contextmanager
def worker(env: dict[str, str], log: Path, threads: int = 1):
    """A worker process; stopped with SIGINT (finish the job in hand) when the block ends."""
    cmd = [
        sys.executable,
        "-m",
        "tests.support.holding_worker",
        "worker",
        "--threads",
        str(threads),
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def rows(app) -> dict[tuple[str, str], ImageAnalysis]:
    with services_of(app).sessions() as session:
        found = session.scalars(select(ImageAnalysis)).all()
        session.expunge_all()
    return {(r.image_id, r.kind): r for r in found}


def put(client, headers, data: bytes, name: str) -> dict:
    response = upload(client, headers, data, name)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _kill_mid_job(app, tmp_path) -> None:
    tenant = create_tenant(app)
    client = app.test_client()
    held = put(client, tenant.headers(), png_bytes(41), "hold.png")
    key = (held["id"], holding_worker.KIND)
    hold_dir = tmp_path / "hold"
    hold_dir.mkdir()
    env = worker_env(app, hold_dir)
    log = tmp_path / "workers.log"

    with worker(env, log) as first:
        wait_for(lambda: (hold_dir / f"held-{held['id']}").exists(), "the job started", [first])
        first.send_signal(signal.SIGKILL)
        first.wait()
    row = rows(app)[key]
    assert (row.state, row.attempts) == ("pending", 1)
    # Huey took the message off the queue when the job started: it went with the worker.
    assert queued_analyses(app) == []

    # Queued while no worker runs: waits in the queue, and runs after the restart.
    later = put(client, tenant.headers(), large_png(1), "later.png")
    assert queued_analyses(app) == [(later["id"], "preview")]

    (hold_dir / "release").touch()
    lease_end = row.lease_until
    wait_for(lambda: utcnow() > lease_end, "the killed worker's lease ran out")
    with worker(env, log) as second:
        wait_for(
            lambda: {r.state for r in rows(app).values()} == {"done"},
            "every job done after the restart",
            [second],
        )
    final = rows(app)
    assert (final[key].state, final[key].attempts) == ("done", 2)  # run again, once
    assert (final[(later["id"], "preview")].state, final[(later["id"], "preview")].attempts) == (
        "done",
        1,
    )


def test_a_worker_killed_mid_job_loses_no_job(jobs_app, tmp_path, hold_kind):
    _kill_mid_job(jobs_app, tmp_path)


@needs_redis
@pytest.mark.parametrize("jobs_app", [{"QUEUE_URL": TEST_REDIS_URL}], indirect=True)
def test_a_worker_killed_mid_job_loses_no_job_on_redis(jobs_app, tmp_path, hold_kind):
    _kill_mid_job(jobs_app, tmp_path)


@needs_redis
# The default lease: the 2 s one the kill tests use can run out during a preview
# on a loaded machine, and a job whose lease ran out is rightly taken again.
@pytest.mark.parametrize(
    "jobs_app", [{"QUEUE_URL": TEST_REDIS_URL, "JOB_LEASE": 600}], indirect=True
)
def test_two_workers_on_redis_do_every_job_once(jobs_app, tmp_path):
    app = jobs_app
    tenant = create_tenant(app)
    client = app.test_client()
    images = [put(client, tenant.headers(), large_png(i), f"big{i}.png") for i in range(6)]
    assert queued_count(app) == 6
    env = worker_env(app, tmp_path)
    log = tmp_path / "workers.log"
    with worker(env, log) as one, worker(env, log) as two:
        wait_for(
            lambda: {r.state for r in rows(app).values()} == {"done"},
            "every job done",
            [one, two],
        )
    found = rows(app)
    assert len(found) == 6
    assert all(row.attempts == 1 for row in found.values()), found  # none done twice
    store = services_of(app).blob_store
    from image_repo.storage import preview_key

    assert all(store.exists(preview_key(image["sha256"])) for image in images)
    # Both processes took jobs from the one queue in Redis.
    text = log.read_text()
    assert text.count("image-repo worker: 1 thread on redis://") == 2, text[-2000:]


def test_serve_runs_the_jobs_of_the_embedded_queue_itself(tmp_path):
    from tests.e2e.test_first_run import PRINTED_KEY, serving

    log = tmp_path / "serve.log"
    with serving({"IMAGE_REPO_DATA_DIR": str(tmp_path / "data")}, log) as port:
        output = log.read_text()
        assert "Running queued jobs in 2 threads." in output, output
        headers = {"Authorization": f"Bearer {PRINTED_KEY.search(output).group(1)}"}
        base = f"http://127.0.0.1:{port}"
        import requests

        made = requests.post(
            f"{base}/images",
            files={"image": ("big.png", large_png(3), "image/png")},
            headers=headers,
            timeout=60,
        )
        assert made.status_code == 201, made.text
        image_id = made.json()["id"]

        def done() -> bool:
            shown = requests.get(f"{base}/images/{image_id}", headers=headers, timeout=30).json()
            return shown["analyses"][0]["state"] == "done"

        wait_for(done, "the preview job done by serve's own threads")
    assert (tmp_path / "data" / "queue.db").exists()
