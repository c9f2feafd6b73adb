"""Background jobs on the embedded queue: analyses asked for at upload, run, retried, swept."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import delete, select

from image_repo.db.models import ImageAnalysis
from image_repo.db.types import utcnow
from image_repo.domain import analyses
from image_repo.http.context import services_of
from image_repo.jobs import queue
from image_repo.storage import preview_key
from tests.support.images import png_bytes, upload
from tests.support.jobs import queued_count, run_queued, run_scheduled


def large_png(seed: int = 1, size=(2400, 1600)) -> bytes:
    im = Image.new("RGB", size, (seed % 256, 90, 160))
    im.paste((200, 30, seed % 256), (100, 100, 900, 700))
    out = io.BytesIO()
    im.save(out, "PNG", compress_level=1)
    return out.getvalue()


def put(client, headers, data: bytes, name: str = "big.png") -> dict:
    response = upload(client, headers, data, name)
    assert response.status_code == 201, response.json
    return response.json


def states(client, headers, image_id: str) -> dict[str, str]:
    response = client.get(f"/images/{image_id}", headers=headers)
    assert response.status_code == 200
    return {a["kind"]: a["state"] for a in response.json["analyses"]}


def has_preview(app, sha: str) -> bool:
    return services_of(app).blob_store.exists(preview_key(sha))


def test_an_upload_answers_before_its_preview_job_runs(app, client, tenant):
    image = put(client, tenant.headers(), large_png())
    assert [(a["kind"], a["state"], a["attempts"]) for a in image["analyses"]] == [
        ("preview", "pending", 0)
    ]
    assert queued_count(app) == 1
    assert not has_preview(app, image["sha256"])  # nothing ran inside the request

    etag = client.get(f"/images/{image['id']}", headers=tenant.headers()).headers["ETag"]
    assert run_queued(app) == ["done"]
    assert states(client, tenant.headers(), image["id"]) == {"preview": "done"}
    assert has_preview(app, image["sha256"])
    # The ETag covers what the answer shows: the analysis changed, so did it.
    again = client.get(
        f"/images/{image['id']}", headers={**tenant.headers(), "If-None-Match": etag}
    )
    assert again.status_code == 200 and again.headers["ETag"] != etag


def test_small_images_need_no_preview_and_queue_nothing(app, client, tenant):
    image = put(client, tenant.headers(), png_bytes(3))
    assert image["analyses"] == []
    assert queued_count(app) == 0


def test_a_large_jpeg_has_its_preview_from_the_upload_itself(app, client, tenant):
    im = Image.new("RGB", (2400, 1600), (40, 120, 200))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90)
    image = put(client, tenant.headers(), out.getvalue(), "big.jpg")
    assert [(a["kind"], a["state"]) for a in image["analyses"]] == [("preview", "done")]
    assert queued_count(app) == 0


def test_a_duplicate_job_does_nothing_twice(app, client, tenant):
    image = put(client, tenant.headers(), large_png())
    queue.enqueue(services_of(app), [(image["id"], "preview")])  # the same message again
    assert run_queued(app) == ["done", "duplicate"]
    with services_of(app).sessions() as session:
        row = session.get(ImageAnalysis, (image["id"], "preview"))
        assert (row.state, row.attempts) == ("done", 1)


def test_a_job_for_a_deleted_image_ends_quietly(app, client, tenant):
    image = put(client, tenant.headers(), large_png())
    assert client.delete(f"/images/{image['id']}", headers=tenant.headers()).status_code == 204
    assert run_queued(app) == ["trashed"]  # it waits in the trash, pending
    assert not has_preview(app, image["sha256"])
    restored = client.post(f"/trash/{image['id']}/restore", headers=tenant.headers())
    assert restored.status_code == 200
    assert restored.json["analyses"][0]["state"] == "pending"

    assert client.delete(f"/images/{image['id']}", headers=tenant.headers()).status_code == 204
    assert client.delete(f"/trash/{image['id']}", headers=tenant.headers()).status_code == 204
    queue.enqueue(services_of(app), [(image["id"], "preview")])
    assert run_queued(app) == ["gone"]


@pytest.fixture
def flaky_kind():
    """An analysis kind that fails its first ``failures`` runs (on images named flaky*)."""
    calls = []
    state = {"failures": 2}

    def run(services, session, image):
        calls.append(image.id)
        if len(calls) <= state["failures"]:
            raise RuntimeError(f"flaky failure {len(calls)}")

    analyses.register(
        "flaky", run, applies=lambda services, image: image.filename.startswith("flaky")
    )
    yield calls, state
    analyses.ANALYSES.pop("flaky")


def test_a_failing_job_is_retried_then_done(app_config, flaky_kind):
    from tests.conftest import create_tenant, make_app

    app = make_app(app_config | {"JOB_RETRIES": 3})
    try:
        calls, _ = flaky_kind
        tenant = create_tenant(app)
        client = app.test_client()
        image = put(client, tenant.headers(), png_bytes(7), "flaky.png")
        assert states(client, tenant.headers(), image["id"]) == {"flaky": "pending"}
        assert run_queued(app) == [None]  # failed, retry scheduled with a delay
        shown = client.get(f"/images/{image['id']}", headers=tenant.headers()).json["analyses"]
        assert shown[0]["state"] == "pending" and "flaky failure 1" in shown[0]["error"]
        assert run_scheduled(app) == [None], calls
        assert run_scheduled(app) == ["done"], calls
        assert len(calls) == 3
        shown = client.get(f"/images/{image['id']}", headers=tenant.headers()).json["analyses"]
        assert (shown[0]["state"], shown[0]["attempts"], shown[0]["error"]) == ("done", 3, None)
    finally:
        services_of(app).engine.dispose()


def test_a_job_failing_every_retry_ends_failed(app_config, flaky_kind):
    from tests.conftest import create_tenant, make_app

    app = make_app(app_config | {"JOB_RETRIES": 1})
    try:
        _, state = flaky_kind
        state["failures"] = 10
        tenant = create_tenant(app)
        client = app.test_client()
        image = put(client, tenant.headers(), png_bytes(8), "flaky.png")
        assert run_queued(app) == [None]
        assert run_scheduled(app) == ["failed"]
        assert run_scheduled(app) == []  # no more retries
        shown = client.get(f"/images/{image['id']}", headers=tenant.headers()).json["analyses"]
        assert (shown[0]["state"], shown[0]["attempts"]) == ("failed", 2)
        assert "flaky failure 2" in shown[0]["error"]

        # `analyze` (missing, the default) queues what failed again.
        state["failures"] = 0
        result = app.test_cli_runner().invoke(args=["analyze", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["by_kind"] == {"flaky": 1}
        assert run_queued(app) == ["done"]
    finally:
        services_of(app).engine.dispose()


def test_work_whose_worker_died_is_found_again(app, client, tenant):
    """A claimed job whose lease ran out (its worker was killed) is queued again."""
    image = put(client, tenant.headers(), large_png())
    services = services_of(app)
    huey = services.queue
    huey.dequeue()  # the message a killed worker took with it
    with services.sessions() as session:
        claim = analyses.claim(session, image["id"], "preview", lease=timedelta(seconds=60))
        assert isinstance(claim, analyses.Claim)
        session.commit()  # ... and then the worker died
    with services.sessions() as session:
        assert analyses.lost(session, unheld_older_than=None) == []  # lease still running
        later = utcnow() + timedelta(seconds=61)
        assert analyses.lost(session, unheld_older_than=None, now=later) == [
            (image["id"], "preview")
        ]
        session.commit()
    assert queued_count(app) == 1
    assert run_queued(app) == ["done"]


def test_the_sweep_queues_what_the_queue_never_got(app, client, tenant):
    image = put(client, tenant.headers(), large_png())
    services = services_of(app)
    services.queue.dequeue()  # the queue was down when the upload committed
    with services.sessions() as session:
        # Nobody held it for longer than a lease.
        row = session.get(ImageAnalysis, (image["id"], "preview"))
        row.updated_at = utcnow() - timedelta(seconds=app.config["JOB_LEASE"] + 1)
        session.commit()
    assert queue.sweep(services) == 1
    assert queue.sweep(services) == 0  # queued once, not at every sweep
    assert run_queued(app) == ["done"]


def test_analyze_queues_existing_images(app, client, tenant, runner):
    first = put(client, tenant.headers(), large_png(1))
    second = put(client, tenant.headers(), large_png(2))
    put(client, tenant.headers(), png_bytes(5), "small.png")
    assert run_queued(app) == ["done", "done"]

    nothing = runner.invoke(args=["analyze", "--missing", "--json"])
    assert nothing.exit_code == 0, nothing.output
    assert json.loads(nothing.output) == {"images": 3, "queued": 0, "by_kind": {}}

    with services_of(app).sessions() as session:  # as for images stored before previews
        session.execute(delete(ImageAnalysis).where(ImageAnalysis.image_id == second["id"]))
        session.commit()
    services_of(app).blob_store.delete(preview_key(second["sha256"]))
    missing = runner.invoke(args=["analyze", "--json"])
    assert json.loads(missing.output) == {"images": 3, "queued": 1, "by_kind": {"preview": 1}}
    assert run_queued(app) == ["done"]
    assert has_preview(app, second["sha256"])

    everything = runner.invoke(args=["analyze", "--all", "--json"])
    assert json.loads(everything.output)["by_kind"] == {"preview": 2}
    assert run_queued(app) == ["done", "done"]  # the previews were there: kept
    assert states(client, tenant.headers(), first["id"]) == {"preview": "done"}

    text = runner.invoke(args=["analyze"])
    assert text.exit_code == 0 and "looked at 3 images" in text.output
    both = runner.invoke(args=["analyze", "--all", "--missing"])
    assert both.exit_code == 2


def test_analyses_of_another_tenant_stay_apart(app, client, tenant, other_tenant):
    mine = put(client, tenant.headers(), large_png(1))
    theirs = put(client, other_tenant.headers(), large_png(1))  # same bytes, two images
    assert mine["id"] != theirs["id"]
    assert run_queued(app) == ["done", "done"]  # one preview (same bytes), each row done
    with services_of(app).sessions() as session:
        rows = session.execute(select(ImageAnalysis.image_id, ImageAnalysis.tenant_id)).all()
    assert sorted(rows) == sorted(
        [(mine["id"], tenant.tenant_id), (theirs["id"], other_tenant.tenant_id)]
    )


def test_metrics_show_jobs_and_the_queue(app, client, tenant):
    put(client, tenant.headers(), large_png())
    text = client.get("/metrics").get_data(as_text=True)
    assert "image_repo_queue_depth 1.0" in text
    run_queued(app)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'image_repo_jobs_total{kind="preview",outcome="done"} 1.0' in text
    assert 'image_repo_job_duration_seconds_count{kind="preview"} 1.0' in text
    assert "image_repo_queue_depth 0.0" in text
