"""Two applications from the factory, in one process or side by side, share no state."""

import json

import requests

from image_repo import create_app
from image_repo.http.context import services_of
from tests.support.live_server import cli, gunicorn_server


def test_two_apps_in_one_process_share_no_state(tmp_path):
    a = create_app(
        {"DATA_DIR": tmp_path / "a", "SECRET_KEY": "a" * 32, "CORS_ORIGINS": ["https://a.example"]}
    )
    b = create_app({"DATA_DIR": tmp_path / "b", "SECRET_KEY": "b" * 32})
    assert a.config["SECRET_KEY"] != b.config["SECRET_KEY"]
    assert a.config["DATA_DIR"] != b.config["DATA_DIR"]
    assert services_of(a) is not services_of(b)
    assert services_of(a).engine is not services_of(b).engine
    a.config["MAX_PIXELS"] = 1
    assert b.config["MAX_PIXELS"] != 1
    # CORS configured on one only.
    origin = {"Origin": "https://a.example"}
    assert "Access-Control-Allow-Origin" in a.test_client().get("/", headers=origin).headers
    assert "Access-Control-Allow-Origin" not in b.test_client().get("/", headers=origin).headers
    # Their specs are separate objects with the same content.
    spec_a = a.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec
    spec_b = b.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec
    assert spec_a is not spec_b
    assert spec_a.to_dict() == spec_b.to_dict()


def test_two_instances_side_by_side(tmp_path):
    env_a = {
        "IMAGE_REPO_DATA_DIR": str(tmp_path / "a"),
        "IMAGE_REPO_SECRET_KEY": "a" * 32,
        "IMAGE_REPO_ENV": "production",
    }
    env_b = {
        "IMAGE_REPO_DATA_DIR": str(tmp_path / "b"),
        "IMAGE_REPO_SECRET_KEY": "b" * 32,
        "IMAGE_REPO_ENV": "production",
    }
    with gunicorn_server(env_a, workers=1) as url_a, gunicorn_server(env_b, workers=1) as url_b:
        assert url_a != url_b
        assert requests.get(url_a + "/", params={"name": "a"}, timeout=10).json()["hello"] == "a"
        assert requests.get(url_b + "/", params={"name": "b"}, timeout=10).json()["hello"] == "b"


def test_a_key_of_one_instance_is_unknown_to_another(tmp_path):
    env_a = {"IMAGE_REPO_DATA_DIR": str(tmp_path / "a"), "IMAGE_REPO_SECRET_KEY": "a" * 32}
    env_b = {"IMAGE_REPO_DATA_DIR": str(tmp_path / "b"), "IMAGE_REPO_SECRET_KEY": "b" * 32}
    cli(env_a, "db", "upgrade")
    key = json.loads(cli(env_a, "tenants", "create", "acme", "--json"))["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    log_a = tmp_path / "a.log"
    with (
        gunicorn_server(env_a, workers=1, log_path=log_a) as url_a,
        gunicorn_server(env_b, workers=1) as url_b,
    ):
        assert requests.get(url_a + "/me", headers=headers, timeout=10).status_code == 200
        assert requests.get(url_b + "/me", headers=headers, timeout=10).status_code == 401
    # The key reached the server in a header; it never reaches the log.
    log = log_a.read_text()
    assert '"route": "/me"' in log
    assert key not in log and key.partition(".")[2] not in log
