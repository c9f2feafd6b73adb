"""Per-key read and write budgets: on the data folder's shared counters and on Redis."""

import io
import json
import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from image_repo.http.context import http_state
from image_repo.services.ratelimits import SQLiteStorage, storage_uri
from tests.conftest import TEST_REDIS_URL, create_tenant, make_app, needs_redis
from tests.support.images import jpeg_bytes, png_bytes, upload
from tests.support.live_server import cli, gunicorn_server


@pytest.fixture(params=["data-folder", pytest.param("redis", marks=needs_redis)])
def limited_app(request, app_config):
    storage = TEST_REDIS_URL if request.param == "redis" else None
    return make_app(
        {
            **app_config,
            "REDIS_URL": storage,
            "RATELIMIT_READ": "3 per day",
            "RATELIMIT_WRITE": "2 per day",
        }
    )


def test_read_budget_runs_out_with_429_and_retry_after(limited_app):
    tenant = create_tenant(limited_app)
    client = limited_app.test_client()
    headers = {"X-API-Key": tenant.admin_key}
    statuses = [client.get("/me", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = client.get("/me", headers=headers)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.json["code"] == 429 and response.json["message"]


def test_budgets_are_per_key_and_split_read_write(limited_app):
    tenant = create_tenant(limited_app)
    client = limited_app.test_client()
    admin = {"X-API-Key": tenant.admin_key}
    for _ in range(3):
        client.get("/me", headers=admin)
    assert client.get("/me", headers=admin).status_code == 429
    # Writes have their own budget...
    assert client.post("/keys", json={"group": "reader"}, headers=admin).status_code == 201
    other = client.post("/keys", json={"group": "reader"}, headers=admin)
    assert other.status_code == 201
    assert client.post("/keys", json={"group": "reader"}, headers=admin).status_code == 429
    # ...and another key has a budget of its own.
    assert client.get("/me", headers={"X-API-Key": other.json["api_key"]}).status_code == 200


def test_public_and_refused_requests_spend_no_budget(limited_app):
    tenant = create_tenant(limited_app)
    client = limited_app.test_client()
    for _ in range(5):
        assert client.get("/").status_code == 200
        assert client.get("/me", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/me", headers={"X-API-Key": tenant.admin_key}).status_code == 200


def test_limits_can_be_turned_off(app_config):
    app = make_app({**app_config, "RATELIMIT_READ": "1 per minute", "RATELIMIT_ENABLED": False})
    tenant = create_tenant(app)
    client = app.test_client()
    assert [client.get("/me", headers=tenant.headers()).status_code for _ in range(3)] == [200] * 3


# -- one budget for every process of an instance, without Redis ----------------------


def _spend(uri: str, strategy: str, budget: str, hits: int, results) -> None:
    storage = storage_from_string(uri)
    limiter = {"fixed": FixedWindowRateLimiter, "moving": MovingWindowRateLimiter}[strategy]
    granted = limiter(storage)
    item = parse(budget)
    results.put(sum(granted.hit(item, "image-repo", "key_x", "read") for _ in range(hits)))


@pytest.mark.parametrize("strategy", ["fixed", "moving"])
def test_data_folder_counters_are_one_budget_across_processes(tmp_path, strategy):
    uri = storage_uri(tmp_path / "rate limits" / "counters.db")  # a space survives the URI
    assert isinstance(storage_from_string(uri), SQLiteStorage)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=_spend, args=(uri, strategy, "100 per hour", 40, results))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    granted = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert sum(granted) == 100  # 160 tries, exactly the budget granted


def test_data_folder_counters_start_a_new_window_when_the_old_one_ends(tmp_path):
    storage = SQLiteStorage(storage_uri(tmp_path / "counters.db"))
    assert not (tmp_path / "counters.db").exists()  # opened on first use only
    assert storage.incr("k", expiry=3600) == 1
    assert storage.incr("k", expiry=3600, amount=2) == 3
    assert storage.get("k") == 3 and storage.get_expiry("k") > 0
    assert storage.incr("gone", expiry=0) == 1  # expires at once
    assert storage.incr("gone", expiry=0) == 1  # a new window, not 2
    assert storage.get("gone") == 0
    storage.clear("k")
    assert storage.get("k") == 0
    assert storage.check()


def test_gunicorn_workers_share_one_budget_without_redis(tmp_path):
    """Three workers, one read and one write budget: exactly the budget passes."""
    env = {
        "IMAGE_REPO_DATA_DIR": str(tmp_path / "data"),
        "IMAGE_REPO_RATELIMIT_READ": "30 per hour",
        "IMAGE_REPO_RATELIMIT_WRITE": "10 per hour",
    }
    cli(env, "db", "upgrade")
    key = json.loads(cli(env, "tenants", "create", "acme", "--json"))["api_key"]
    headers = {"X-API-Key": key}
    with gunicorn_server(env, workers=3) as base:
        first = requests.post(
            f"{base}/images", files={"image": png_bytes(0)}, headers=headers, timeout=60
        )
        assert first.status_code == 201, first.text
        thumbnail = f"{base}/images/{first.json()['id']}/thumbnail?size=small"

        def write(i: int) -> int:
            if i % 2:
                url, kwargs = f"{base}/collections", {"json": {"name": f"album {i}"}}
            else:
                url, kwargs = f"{base}/images", {"files": {"image": io.BytesIO(png_bytes(i))}}
            return requests.post(url, headers=headers, timeout=60, **kwargs).status_code

        def read(i: int) -> int:
            # Repeat thumbnails: the rendition front answers them where it can.
            url = thumbnail if i % 2 else f"{base}/me"
            return requests.get(url, headers=headers, timeout=60).status_code

        # Fresh connections from 9 threads: the three workers all take requests.
        with ThreadPoolExecutor(max_workers=9) as pool:
            writes = [first.status_code, *pool.map(write, range(1, 30))]
            reads = list(pool.map(read, range(90)))
    assert sorted(set(writes)) == [201, 429], writes
    assert writes.count(201) == 10 and writes.count(429) == 20
    assert sorted(set(reads)) == [200, 429], reads
    assert reads.count(200) == 30 and reads.count(429) == 60


def test_retry_after_comes_only_with_429(limited_app):
    tenant = create_tenant(limited_app)
    client = limited_app.test_client()
    headers = {"X-API-Key": tenant.admin_key}
    image = upload(client, headers, jpeg_bytes(1, (64, 48))).json  # spends a write
    thumbnail = f"/images/{image['id']}/thumbnail?size=small"
    answers = [client.get(thumbnail, headers=headers) for _ in range(3)]
    # The last of these came from the rendition front, which must agree.
    assert http_state(limited_app).rendition_front.served >= 1
    answers.append(client.post("/collections", json={"name": "c"}, headers=headers))
    for response in answers:
        assert response.status_code in (200, 201)
        assert response.headers["X-RateLimit-Remaining"]
        assert "Retry-After" not in response.headers
    refused = client.get(thumbnail, headers=headers)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
