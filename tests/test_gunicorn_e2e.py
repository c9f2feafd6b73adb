"""The real server: gunicorn on a loopback port, called over HTTP."""

import json
import subprocess
import sys

import requests
from live_server import gunicorn_server


def test_gunicorn_serves_landing_and_spec(tmp_path):
    with gunicorn_server({"IMAGE_REPO_DATA_DIR": str(tmp_path)}) as base:
        response = requests.get(base + "/", params={"name": "Ada"}, timeout=10)
        assert response.status_code == 200
        assert response.json()["hello"] == "Ada"
        spec = requests.get(base + "/openapi.json", timeout=10)
        assert spec.status_code == 200
        assert spec.json()["openapi"].startswith("3.1")
        missing = requests.get(base + "/nothing-here", timeout=10)
        assert missing.status_code == 404
        assert missing.json()["code"] == 404


def test_httpie_against_gunicorn(tmp_path):
    with gunicorn_server({"IMAGE_REPO_DATA_DIR": str(tmp_path)}, workers=1) as base:
        port = base.rsplit(":", 1)[1]
        result = subprocess.run(
            [sys.executable, "-m", "httpie", "--ignore-stdin", "--body", f":{port}/", "name==Ada"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["hello"] == "Ada"
