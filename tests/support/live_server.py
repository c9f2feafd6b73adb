"""Run the real service under gunicorn on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answering(url: str, proc: subprocess.Popen, deadline_s: float = 60) -> None:
    """Poll until the server answers; fail at once if it exits."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            requests.get(url, timeout=5)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.05)  # not up yet: poll again
    raise RuntimeError(f"server at {url} did not answer within {deadline_s} s")


@contextmanager
def gunicorn_server(
    env: dict[str, str],
    *,
    workers: int = 2,
    app: str = "image_repo.wsgi:app",
    log_path: Path | None = None,
):
    """Yield the base URL of a gunicorn running ``app`` with ``env`` added.

    The server's output goes to ``log_path`` when given (to read it after).
    """
    port = free_port()
    full_env = {**os.environ, **env, "IMAGE_REPO_BIND": f"127.0.0.1:{port}"}
    cmd = [
        sys.executable, "-m", "gunicorn",
        "-c", "python:image_repo.gunicorn_conf",
        "--workers", str(workers),
        app,
    ]  # fmt: skip
    # A file, not a pipe: nobody reads the log while the test runs, and a full
    # pipe would block the server.
    log = log_path.open("w+b") if log_path else tempfile.TemporaryFile()  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=full_env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_answering(base + "/", proc)
        except RuntimeError:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def cli_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``image-repo ARGS`` in a fresh process, with only ``env``'s IMAGE_REPO_ settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_REPO_")}
    return subprocess.run(
        [sys.executable, "-m", "image_repo", *args],
        env={**clean, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def cli(env: dict[str, str], *args: str) -> str:
    """Like ``cli_run``, failing the test when the command fails; returns its output."""
    result = cli_run(env, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout
