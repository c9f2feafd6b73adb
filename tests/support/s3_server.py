"""moto's S3 server on a free loopback port, for tests of the S3 blob store.

The ``s3_endpoint`` fixture (``tests/conftest.py``) starts one per test
module that asks for it; each test makes a bucket of its own.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager

import requests

from tests.support.live_server import free_port, wait_until_answering

# Dummy credentials: moto accepts any, and explicit ones keep the host's AWS
# configuration out of the tests.
CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}
REGION = "us-east-1"


def s3_unavailable() -> str | None:
    """Why the S3 tests cannot run here (boto3 or moto missing), or None."""
    for module in ("boto3", "moto.server"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # the parent package is missing
            found = False
        if not found:
            return f"{module.split('.')[0]} is not installed (pip install boto3 'moto[server]')"
    return None


@contextmanager
def moto_server():
    """Yield the URL of a moto server on 127.0.0.1; stop it afterwards."""
    port = free_port()
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    # A file, not a pipe: nobody reads the request log while tests run.
    log = tempfile.TemporaryFile()  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_answering(url + "/moto-api/", proc, deadline_s=30)
        except RuntimeError:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def raw_client(endpoint_url: str):
    """A plain boto3 client on the server, to look behind the store's back."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["access_key_id"],
        aws_secret_access_key=CREDENTIALS["secret_access_key"],
    )


def new_bucket(client) -> str:
    name = f"test-{uuid.uuid4().hex[:20]}"
    client.create_bucket(Bucket=name)
    return name


def reset(endpoint_url: str) -> None:
    """Forget every bucket (frees the server's memory between tests)."""
    requests.post(endpoint_url + "/moto-api/reset", timeout=10).raise_for_status()
