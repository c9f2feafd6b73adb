"""The real server: gunicorn on a loopback port, called over HTTP."""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from gunicorn.ctl.client import ControlClient

from tests.support.live_server import cli, gunicorn_server


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


def _listeners(control_socket) -> list[str]:
    with ControlClient(str(control_socket), timeout=10) as client:
        return [item["address"] for item in client.send_command("show listeners")["listeners"]]


def _socket_at(path: Path) -> Path:
    """``path`` once the master has opened its control socket there (after the workers)."""
    end = time.monotonic() + 30
    while not path.is_socket():
        assert time.monotonic() < end, f"no control socket at {path}"
        time.sleep(0.05)  # polled: gunicorn opens it once the first workers run
    return path


def test_two_instances_have_their_own_control_sockets(tmp_path):
    # gunicorn's default would be in this home; nothing may land there.
    home = tmp_path / "home"
    home.mkdir()
    common = {"HOME": str(home), "XDG_RUNTIME_DIR": ""}
    env_a = {**common, "IMAGE_REPO_DATA_DIR": str(tmp_path / "a")}
    env_b = {**common, "IMAGE_REPO_DATA_DIR": str(tmp_path / "b")}
    with gunicorn_server(env_a, workers=1) as a:
        socket_a = _socket_at(tmp_path / "a" / "gunicorn.ctl")
        with gunicorn_server(env_b, workers=1) as b:
            socket_b = _socket_at(tmp_path / "b" / "gunicorn.ctl")
            assert _listeners(socket_a) == [a]
            assert _listeners(socket_b) == [b]
        # Stopping B leaves A's socket in place, still answering for A.
        assert not socket_b.exists()
        assert _listeners(socket_a) == [a]
    assert list(home.iterdir()) == []


def test_a_data_folder_too_deep_for_a_socket_path_gets_one_in_the_runtime_folder(tmp_path, request):
    # A short runtime folder, as /run/user/UID is: under pytest-xdist tmp_path
    # alone leaves no room for the socket's name in sun_path.
    runtime = Path(tempfile.mkdtemp(prefix="rt-"))
    request.addfinalizer(lambda: shutil.rmtree(runtime, ignore_errors=True))
    deep = tmp_path / ("d" * 60) / ("e" * 60)  # its gunicorn.ctl would not fit in sun_path
    env = {"IMAGE_REPO_DATA_DIR": str(deep), "XDG_RUNTIME_DIR": str(runtime)}
    with gunicorn_server(env, workers=1) as base:
        end = time.monotonic() + 30
        while not (found := list(runtime.glob("image-repo-*.ctl"))):
            assert time.monotonic() < end, "no control socket in the runtime folder"
            time.sleep(0.05)  # polled, as above
        assert len(found) == 1 and _listeners(_socket_at(found[0])) == [base]
    assert not (runtime / "gunicorn.ctl").exists()


def test_hostile_uploads_neither_kill_workers_nor_silence_liveness(tmp_path):
    """Files that took minutes before are refused at once; slow ones end at the time cap."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.hostile import many_frame_gif, many_page_tiff, many_scan_jpeg

    # Without the limits: about 14 s, 15 s and 3 s of decoding (then 30 s to render the GIF).
    hostile = {
        "scans.jpg": many_scan_jpeg((4000, 4000), 1500),
        "pages.tif": many_page_tiff(60_000),
        "frames.gif": many_frame_gif(200_000),
        # Within every bound, but ten times the time cap set below.
        "slow.jpg": many_scan_jpeg((3000, 3000), 90),
    }
    log_path = tmp_path / "gunicorn.log"
    env = {"IMAGE_REPO_DATA_DIR": str(tmp_path / "data"), "IMAGE_REPO_DECODE_TIMEOUT": "0.05"}
    with gunicorn_server(env, workers=3, log_path=log_path) as base:
        key = cli(env, "tenants", "create", "acme", "--json")
        headers = {"Authorization": f"Bearer {json.loads(key)['api_key']}"}

        def post(name: str) -> requests.Response:
            files = {"image": (name, hostile[name])}
            return requests.post(base + "/images", files=files, headers=headers, timeout=60)

        with ThreadPoolExecutor(len(hostile)) as pool:
            pending = {name: pool.submit(post, name) for name in hostile}
            live = [requests.get(base + "/health/live", timeout=60)]
            while not all(future.done() for future in pending.values()):
                live.append(requests.get(base + "/health/live", timeout=60))
            answers = {name: future.result() for name, future in pending.items()}
        assert all(r.status_code == 200 and r.json() == {"status": "ok"} for r in live)
        statuses = {name: (r.status_code, r.json()["errors"]) for name, r in answers.items()}
        assert statuses == {
            "scans.jpg": (413, {"image": ["too_many_scans"]}),
            "pages.tif": (413, {"image": ["too_many_frames"]}),
            "frames.gif": (413, {"image": ["too_many_frames"]}),
            "slow.jpg": (422, {"image": ["decode_timeout"]}),
        }
    log = log_path.read_text()
    assert "WORKER TIMEOUT" not in log
    assert log.count("Booting worker") == 3  # none died and was replaced
