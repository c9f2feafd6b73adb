"""Health, metrics, request ids and the per-request JSON log."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
import requests

from image_repo.http.context import services_of
from tests.conftest import make_app
from tests.support.images import upload
from tests.support.live_server import gunicorn_server


def test_liveness_and_readiness(client):
    assert client.get("/health/live").json == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json == {"status": "ok", "checks": {"database": "ok", "storage": "ok"}}


def test_readiness_names_the_failed_dependency(app, client):
    store = services_of(app).blob_store

    def broken(_key):
        raise OSError("disk gone")

    store.exists = broken
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert "storage" in response.json["message"]
    assert set(response.json["errors"]) == {"storage"}


def test_readiness_with_the_database_down(app_config, tmp_path):
    app = make_app(app_config)
    services_of(app).engine.dispose()
    from image_repo.db.engine import make_engine, make_session_factory

    dead = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    services_of(app).sessions = make_session_factory(dead)
    response = app.test_client().get("/health/ready")
    assert response.status_code == 503
    assert set(response.json["errors"]) == {"database"}


def test_request_id_is_kept_when_sane_and_made_otherwise(client):
    assert (
        client.get("/", headers={"X-Request-ID": "trace-42.a:b"}).headers["X-Request-ID"]
        == "trace-42.a:b"
    )
    for bad in ("x" * 200, "has space", "<script>"):
        made = client.get("/", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert made != bad and re.fullmatch(r"[0-9a-f]{32}", made)
    assert re.fullmatch(r"[0-9a-f]{32}", client.get("/nope").headers["X-Request-ID"])


def test_one_json_log_line_per_request_without_secrets(client, tenant, capsys):
    capsys.readouterr()
    client.get("/me", headers={**tenant.headers(), "X-Request-ID": "req-1"})
    client.get("/me", headers={"X-API-Key": "wrong"})
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    assert len(lines) == 2
    ok, refused = lines
    assert ok["request_id"] == "req-1" and ok["method"] == "GET" and ok["route"] == "/me"
    assert ok["status"] == 200 and ok["operation"] == "getCurrentKey"
    assert ok["tenant_id"] == tenant.tenant_id and ok["key_id"] == tenant.admin_key_id
    assert ok["duration_ms"] >= 0 and ok["time"].endswith("+00:00")
    assert refused["status"] == 401 and refused["key_id"] is None
    text = json.dumps(lines)
    assert tenant.admin_key not in text and tenant.admin_key.partition(".")[2] not in text


def _sample(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_uploads_and_renditions(client, tenant):
    from tests.support.corpus import corpus_path

    client.get("/")
    client.get("/")
    image = upload(client, tenant.headers(), corpus_path("valid/hopper.jpg").read_bytes()).json
    client.get(f"/images/{image['id']}/thumbnail", headers=tenant.headers())
    client.get(f"/images/{image['id']}/thumbnail", headers=tenant.headers())
    text = client.get("/metrics").get_data(as_text=True)
    assert _sample(text, "image_repo_requests_total", operation="getLanding", status="200") == 2
    assert _sample(text, "image_repo_request_duration_seconds_count", operation="getLanding") == 2
    assert _sample(text, "image_repo_uploaded_bytes_total") == image["bytes"]
    assert _sample(text, "image_repo_rendition_cache_total", result="miss") == 1
    assert _sample(text, "image_repo_rendition_cache_total", result="hit") == 1
    assert _sample(text, "image_repo_decode_seconds_count", kind="upload") == 1
    assert _sample(text, "image_repo_decode_seconds_count", kind="render") == 1


OPERATOR = "op-" + "m" * 40


@pytest.fixture
def private_metrics(app_config):
    return make_app(
        {
            **app_config,
            "METRICS_PUBLIC": False,
            "OPERATOR_KEY_SHA256": hashlib.sha256(OPERATOR.encode()).hexdigest(),
        }
    )


def test_metrics_can_require_a_key(private_metrics):
    from tests.conftest import create_tenant

    client = private_metrics.test_client()
    assert client.get("/metrics").status_code == 401
    tenant = create_tenant(private_metrics)
    assert client.get("/metrics", headers=tenant.headers()).status_code == 403
    assert client.get("/metrics", headers={"X-API-Key": OPERATOR}).status_code == 200


def test_metrics_add_up_across_gunicorn_workers(tmp_path):
    with gunicorn_server({"IMAGE_REPO_DATA_DIR": str(tmp_path)}, workers=2) as base:

        def landing_count() -> float:
            text = requests.get(base + "/metrics", timeout=10).text
            return _sample(text, "image_repo_requests_total", operation="getLanding", status="200")

        before = landing_count()  # the server's start-up probe called / already
        session = requests.Session()
        for _ in range(40):
            assert session.get(base + "/", timeout=10).status_code == 200
        # Whichever worker answers /metrics, it reports all workers' requests.
        assert {landing_count() for _ in range(6)} == {before + 40}
