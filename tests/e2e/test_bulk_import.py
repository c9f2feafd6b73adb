"""``image-repo import``: the bulk importer, a client of the HTTP API.

The corpus goes through a live gunicorn (twice: the second run must find
only duplicates), both through ``import_paths`` and through the click
command. Retries, 429, a key refused mid-run and URL shapes are checked
against a small scripted server, where each answer can be chosen.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner, Result
from flask.cli import AppGroup, FlaskGroup

from image_repo.client.importer import (
    API_KEY_ENV,
    ImportReport,
    KeyRefused,
    ServerUnreachable,
    collect_files,
    import_command,
    import_paths,
)
from tests.support.corpus import CORPUS_DIR, corpus_files, manifest
from tests.support.live_server import free_port, gunicorn_server

# The corpus folder also holds this, which is not an image and must be refused
# (its README with sources and licences is one folder up, in tests/data).
NON_IMAGES = {"manifest.json"}


# --- a live server -------------------------------------------------------------


def _cli(env: dict, *args: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_REPO_")}
    result = subprocess.run(
        [sys.executable, "-m", "image_repo", *args],
        env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


# Tenant management over HTTP: each corpus test gets a tenant of its own in
# one request, instead of one more CLI process.
OPERATOR = "operator-" + "o" * 40


@dataclass
class Live:
    base: str
    contributor_key: str  # of tenant "acme", made with the CLI

    def new_tenant_key(self) -> str:
        """The admin key of a new, empty tenant."""
        response = requests.post(
            f"{self.base}/tenants",
            json={"name": f"t{uuid.uuid4().hex[:12]}"},
            headers={"X-API-Key": OPERATOR},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return response.json()["admin_key"]["api_key"]


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    """One gunicorn (two workers) for the module, migrated, with a contributor key."""
    env = {
        "IMAGE_REPO_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        # Two runs of the corpus exceed the default write budget; waiting out
        # 429 is tested against the scripted server, in a second, not a minute.
        "IMAGE_REPO_RATELIMIT_WRITE": "100000 per minute",
        "IMAGE_REPO_OPERATOR_KEY_SHA256": hashlib.sha256(OPERATOR.encode()).hexdigest(),
    }
    _cli(env, "db", "upgrade")
    _cli(env, "tenants", "create", "acme")
    # The least group that may upload.
    key = json.loads(
        _cli(env, "keys", "create", "--tenant", "acme", "--group", "contributor", "--json")
    )["api_key"]
    with gunicorn_server(env, workers=2) as base:
        yield Live(base, key)


def _relative(path: str) -> str:
    return Path(path).relative_to(CORPUS_DIR).as_posix()


def _expected() -> dict:
    accepted = corpus_files("accept")
    distinct = {manifest()[name]["sha256"] for name in accepted}
    return {
        "accepted": len(accepted),
        "distinct": len(distinct),
        "rejected": set(corpus_files("reject")) | NON_IMAGES,
        "files": len(manifest()) + len(NON_IMAGES),
    }


def test_the_corpus_holds_exactly_the_manifest_and_the_two_non_images():
    on_disk = {p.relative_to(CORPUS_DIR).as_posix() for p in CORPUS_DIR.rglob("*") if p.is_file()}
    assert on_disk == set(manifest()) | NON_IMAGES


def _assert_first_run(summary: dict) -> None:
    expected = _expected()
    assert summary["files"] == expected["files"]
    assert summary["imported"] == expected["distinct"]
    # Identical bytes count once; their other copies are duplicates.
    assert summary["duplicates"] == expected["accepted"] - expected["distinct"]
    assert {_relative(r["path"]) for r in summary["rejected"]} == expected["rejected"]
    assert len(summary["rejected"]) == len(expected["rejected"])
    for rejection in summary["rejected"]:
        assert 400 <= rejection["status"] < 500, rejection
        assert rejection["message"].strip(), rejection
    assert summary["failed"] == []


def _assert_second_run(summary: dict) -> None:
    expected = _expected()
    assert summary["imported"] == 0
    assert summary["duplicates"] == expected["accepted"]
    assert len(summary["rejected"]) == len(expected["rejected"])
    assert summary["failed"] == []


def _images_of(live: Live, key: str) -> int:
    response = requests.get(
        f"{live.base}/images",
        params={"limit": 200},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    response.raise_for_status()
    return len(response.json()["items"])


def test_import_paths_imports_the_corpus_then_finds_only_duplicates(live):
    seen: list = []
    report = import_paths(
        [CORPUS_DIR], live.base, live.contributor_key, workers=4, on_progress=seen.append
    )
    _assert_first_run(report.to_json())
    assert report.ok and report.aborted is None and not report.skipped
    assert len(seen) == report.files
    # The report keeps the order files were found in, not the order they finished.
    found = [str(path) for path in collect_files([CORPUS_DIR])]
    rejected = {r.path for r in report.rejected}
    assert [r.path for r in report.rejected] == [path for path in found if path in rejected]
    assert _images_of(live, live.contributor_key) == _expected()["distinct"]

    again = import_paths([CORPUS_DIR], live.base, live.contributor_key, workers=4)
    _assert_second_run(again.to_json())
    assert _images_of(live, live.contributor_key) == _expected()["distinct"]


def _invoke(command: click.Command, args: list[str], **env: str | None) -> Result:
    return CliRunner().invoke(command, args, env={API_KEY_ENV: None, **env})


def test_import_command_json_and_rerun_with_the_key_from_the_environment(live):
    key = live.new_tenant_key()
    # With a trailing slash the first time, without it the second: same service.
    first = _invoke(
        import_command, [str(CORPUS_DIR), "--url", live.base + "/", "--api-key", key, "--json"]
    )
    assert first.exit_code == 0, first.output
    _assert_first_run(json.loads(first.stdout))

    second = _invoke(
        import_command, [str(CORPUS_DIR), "--url", live.base, "--json"], **{API_KEY_ENV: key}
    )
    assert second.exit_code == 0, second.output
    _assert_second_run(json.loads(second.stdout))

    for result in (first, second):
        assert key not in result.output


def test_a_bad_key_is_refused_up_front_with_a_clear_message(live):
    result = _invoke(
        import_command, [str(CORPUS_DIR), "--url", live.base, "--api-key", "not-a-key"]
    )
    assert result.exit_code == 2
    assert "refused the API key (401)" in result.stderr
    assert "not-a-key" not in result.output
    with pytest.raises(KeyRefused):
        import_paths([CORPUS_DIR], live.base, "not-a-key", workers=2)


def test_an_unreachable_server_exits_2_with_a_clear_message():
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = _invoke(import_command, [str(CORPUS_DIR), "--url", url, "--api-key", "secret-key"])
    assert result.exit_code == 2
    assert f"cannot reach {url}: Connection refused" in result.stderr
    assert "secret-key" not in result.output
    assert time.monotonic() - started < 10  # a couple of quick retries, not a hang
    with pytest.raises(ServerUnreachable):
        import_paths([CORPUS_DIR], url, "k", workers=1, retries=0)


# --- a scripted server -------------------------------------------------------------

DROP = object()  # close the connection without answering
Answer = tuple[int, dict[str, str], object]  # status, headers, JSON body (or DROP)
UPLOADER_ME: Answer = (
    200,
    {},
    {"group": "contributor", "permissions": ["account:read", "images:write"]},
)


@dataclass
class Fake:
    base: str
    calls: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, auth

    def posts(self) -> int:
        return sum(1 for method, _, _ in self.calls if method == "POST")


@contextmanager
def fake_api(upload: Callable[[int], Answer], me: Answer = UPLOADER_ME) -> Iterator[Fake]:
    """A stand-in service: ``GET .../me`` answers ``me``; the n-th POST answers ``upload(n)``."""
    lock = threading.Lock()
    fake = Fake("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._record()
            self._answer(me)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._answer(upload(self._record()))

        def _record(self) -> int:
            with lock:
                index = fake.posts()
                fake.calls.append((self.command, self.path, self.headers.get("Authorization")))
            return index

        def _answer(self, answer: Answer) -> None:
            status, headers, body = answer
            if body is DROP:
                self.close_connection = True
                return
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # A short poll: shutdown() waits up to one poll interval (0.5 s by default).
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _created(_n: int) -> Answer:
    return 201, {}, {"id": "img"}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    return status, headers or {}, {"code": status, "message": message}


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(6):
        (folder / f"p{index}.jpg").write_bytes(b"not really a jpeg %d" % index)
    return folder


@pytest.mark.parametrize("suffix", ["", "/", "/prefix", "/prefix/", "//"])
def test_the_base_url_works_with_or_without_a_trailing_slash(photos, suffix):
    with fake_api(_created) as fake:
        report = import_paths([photos / "p0.jpg"], fake.base + suffix, "k", workers=1)
    prefix = suffix.rstrip("/")
    assert [(m, p) for m, p, _ in fake.calls] == [
        ("GET", f"{prefix}/me"),
        ("POST", f"{prefix}/images"),
    ]
    assert {auth for _, _, auth in fake.calls} == {"Bearer k"}
    assert len(report.imported) == 1


def test_5xx_and_dropped_connections_are_retried(photos):
    script = {0: _error(503, "restarting"), 1: (0, {}, DROP)}
    with fake_api(lambda n: script.get(n) or _created(n)) as fake:
        report = import_paths(
            [photos / "p0.jpg"], fake.base, "k", workers=1, retries=2, backoff_s=0.01
        )
    assert fake.posts() == 3
    assert len(report.imported) == 1 and report.ok


def test_persistent_failures_are_reported_after_the_retries(photos):
    # Sequential (one worker, one retry): p0 gets two 500s, p1 two dropped connections.
    with fake_api(lambda n: _error(500, "boom") if n < 2 else (0, {}, DROP)) as fake:
        report = import_paths(
            [photos / "p0.jpg", photos / "p1.jpg"],
            fake.base,
            "k",
            workers=1,
            retries=1,
            backoff_s=0.01,
        )
    assert fake.posts() == 4
    assert not report.ok
    # The server's message for a 5xx; for no answer, the cause in a few words.
    assert [(f.status, f.message) for f in report.failed] == [
        (500, "boom"),
        (None, "RemoteDisconnected: Remote end closed connection without response"),
    ]


def test_the_command_exits_1_when_a_file_failed(photos):
    with fake_api(lambda n: _error(502, "bad gateway") if n == 0 else _created(n)) as fake:
        result = _invoke(
            import_command,
            [str(photos), "--url", fake.base, "--api-key", "k", "--retries", "0", "--workers", "1"],
        )
    assert result.exit_code == 1
    assert "5 imported, 0 duplicates, 0 rejected, 1 failed" in result.stdout
    assert "502 Bad Gateway (1):" in result.stdout and "p0.jpg: bad gateway" in result.stdout


def test_429_is_waited_out_as_retry_after_says(photos):
    script = {0: _error(429, "slow down", {"Retry-After": "1"})}
    with fake_api(lambda n: script.get(n) or _created(n)) as fake:
        started = time.monotonic()
        report = import_paths(
            [photos / "p0.jpg", photos / "p1.jpg"], fake.base, "k", workers=1, retries=0
        )
        elapsed = time.monotonic() - started
    # The 429 spent no retry (there were none to spend) and was waited out.
    assert len(report.imported) == 2 and report.ok
    assert fake.posts() == 3
    assert elapsed >= 0.9


def test_a_key_refused_mid_run_stops_early(photos):
    with fake_api(lambda n: _error(401, "The API key was revoked.")) as fake:
        report = import_paths([photos], fake.base, "k", workers=2)
        assert fake.posts() <= 2  # what was in flight, nothing more
        result = _invoke(
            import_command,
            [str(photos), "--url", fake.base, "--api-key", "k", "--workers", "2", "--json"],
        )
    assert report.aborted == "the server refused the API key (401): The API key was revoked."
    assert len(report.failed) + len(report.skipped) == report.files == 6
    assert len(report.skipped) >= 4 and not report.ok
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["aborted"] and summary["skipped"] >= 4


def test_a_key_that_may_not_upload_is_refused_before_any_upload(photos):
    reader: Answer = (200, {}, {"group": "reader", "permissions": ["account:read", "images:read"]})
    with fake_api(_created, me=reader) as fake:
        result = _invoke(import_command, [str(photos), "--url", fake.base, "--api-key", "k"])
    assert result.exit_code == 2
    assert "group 'reader') may not upload images: it lacks images:write" in result.stderr
    assert fake.posts() == 0


def test_a_url_that_is_not_the_service_exits_2(photos):
    with fake_api(_created, me=_error(404, "Not Found")) as fake:
        result = _invoke(import_command, [str(photos), "--url", fake.base, "--api-key", "k"])
    assert result.exit_code == 2
    assert "does not look like an Image Repo API (GET /me answered 404)" in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--url", "http://127.0.0.1:1"], API_KEY_ENV),
        (["--url", "ftp://example.org", "--api-key", "k"], "not an http(s) URL"),
        (["--api-key", "k"], "--url"),
    ],
)
def test_bad_usage_exits_2(photos, args, needle):
    result = _invoke(import_command, [str(photos), *args])
    assert result.exit_code == 2 and needle in result.stderr


def test_a_missing_path_exits_2(tmp_path):
    result = _invoke(
        import_command, [str(tmp_path / "nope"), "--url", "http://127.0.0.1:1", "--api-key", "k"]
    )
    assert result.exit_code == 2 and "does not exist" in result.stderr


def _fail_to_make_app():
    raise AssertionError("the import command must not need the Flask app")


@pytest.mark.parametrize(
    "group",
    [
        lambda: FlaskGroup(create_app=_fail_to_make_app, load_dotenv=False, set_debug_flag=False),
        lambda: AppGroup("tools"),
        lambda: click.Group("plain"),
    ],
    ids=["FlaskGroup", "AppGroup", "click.Group"],
)
def test_the_command_needs_no_flask_app_wherever_it_is_registered(photos, group):
    cli = group()
    cli.add_command(import_command)
    with fake_api(_created) as fake:
        result = _invoke(
            cli, ["import", str(photos), "--url", fake.base, "--api-key", "k", "--json"]
        )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["imported"] == 6


# --- finding files -------------------------------------------------------------


def test_collect_files_walks_in_order_and_skips_what_it_should(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    for path in [root / "b.jpg", root / "a.png", root / "sub" / "c.gif", root / ".hidden.jpg",
                 root / ".git" / "x.jpg", outside / "o.jpg"]:  # fmt: skip
        path.write_bytes(b"x")
    (root / "linked").symlink_to(outside, target_is_directory=True)  # leaves the tree
    (root / "same.png").symlink_to(root / "a.png")  # the same file again
    (root / "dangling.jpg").symlink_to(tmp_path / "missing")
    os.mkfifo(root / "pipe")  # reading it would block

    assert collect_files([root]) == [root / "a.png", root / "b.jpg", root / "sub" / "c.gif"]
    # Named explicitly: taken even if hidden; overlapping arguments give each file once.
    assert collect_files([root / ".hidden.jpg", root, root / "sub"]) == [
        root / ".hidden.jpg", root / "a.png", root / "b.jpg", root / "sub" / "c.gif",
    ]  # fmt: skip
    with pytest.raises(FileNotFoundError):
        collect_files([root / "nope"])


def test_an_empty_folder_imports_nothing(tmp_path):
    with fake_api(_created) as fake:
        report = import_paths([tmp_path], fake.base, "k", workers=4)
    assert report == ImportReport(files=0)
    assert report.ok and fake.posts() == 0
