"""`image-repo serve` on the embedded default: migrate, and on first run make a key to use."""

import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager

import requests

from tests.support.live_server import free_port, wait_until_answering

PRINTED_KEY = re.compile(r"^\s+(key_[a-z2-7]{20}\.\S+)$", re.MULTILINE)


@contextmanager
def serving(settings: dict, log):
    """`image-repo serve` on a free port with only ``settings``, output in ``log``; yields the port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_REPO_")}
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "image_repo", "serve", "--port", str(port)],
            env={**env, **settings}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_until_answering(f"http://127.0.0.1:{port}/", proc)
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_first_run_prints_a_working_admin_key(tmp_path):
    settings = {"IMAGE_REPO_DATA_DIR": str(tmp_path)}
    log = tmp_path / "serve.log"
    with serving(settings, log) as port:
        output = log.read_text()
        match = PRINTED_KEY.search(output)
        assert match, output
        assert f"http :{port}/me 'Authorization:Bearer {match.group(1)}'" in output
        me = requests.get(
            f"http://127.0.0.1:{port}/me",
            headers={"Authorization": f"Bearer {match.group(1)}"},
            timeout=10,
        )
        assert me.status_code == 200 and me.json()["group"] == "admin"
    assert (tmp_path / "image-repo.db").exists()

    # A second start finds the tenant and prints no new key.
    log2 = tmp_path / "serve2.log"
    with serving(settings, log2):
        pass
    assert not re.search(r"key_[a-z2-7]{20}\.", log2.read_text())


def test_production_never_creates_a_first_key(tmp_path):
    settings = {
        "IMAGE_REPO_DATA_DIR": str(tmp_path),
        "IMAGE_REPO_ENV": "production",
        "IMAGE_REPO_SECRET_KEY": "p" * 40,
    }
    log = tmp_path / "serve.log"
    with serving(settings, log):
        pass
    assert not re.search(r"key_[a-z2-7]{20}\.", log.read_text())


def test_development_server_logs_each_request_once(tmp_path):
    log = tmp_path / "serve.log"
    marker = "once-7f3a9c"
    with serving({"IMAGE_REPO_DATA_DIR": str(tmp_path)}, log) as port:
        response = requests.get(
            f"http://127.0.0.1:{port}/",
            params={"name": marker},
            headers={"X-Request-ID": marker},
            timeout=10,
        )
        assert response.status_code == 200
        # Both loggers write before the answer goes out, and flush.
        lines = [line for line in log.read_text().splitlines() if marker in line]
    assert len(lines) == 1, lines
    assert json.loads(lines[0])["request_id"] == marker
