"""LAN discovery: `serve --advertise` is heard by `discover`, inside a network namespace.

The test never multicasts on the machine's network: everything runs in a
network namespace made for it (``unshare --net``), which holds only its own
loopback interface. Where a namespace cannot be made (not root, no
``unshare``), the test is skipped and says why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from image_repo.services.discovery import SERVICE_TYPE
from tests.support.live_server import free_port

DRIVER = Path(__file__).resolve().parents[1] / "support" / "mdns_namespace.py"


def _namespace_problem() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2) to make a network namespace"
    probe = subprocess.run(
        ["unshare", "--net", "ip", "link", "set", "lo", "up"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"cannot make a network namespace here (root needed): {probe.stderr.strip()}"
    return None


def test_the_service_type_is_a_valid_dns_sd_name():
    # RFC 6763 7.2: an underscore, then 1-15 letters, digits and hyphens.
    label = SERVICE_TYPE.split(".")[0]
    assert label.startswith("_") and 1 <= len(label) - 1 <= 15
    assert SERVICE_TYPE.endswith("._tcp.local.")


def test_advertise_and_discover_in_a_namespace_of_its_own(tmp_path):
    problem = _namespace_problem()
    if problem:
        pytest.skip(problem)
    result = subprocess.run(
        ["unshare", "--net", sys.executable, str(DRIVER), str(free_port()), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stdout + result.stderr
    heard = json.loads(result.stdout.strip().splitlines()[-1])
    assert heard["interfaces"] == ["lo"]  # nothing but loopback: no packet left it
    [instance] = heard["instances"]
    assert instance["addresses"] == ["127.0.0.1"]
    assert instance["txt"]["spec"] == "/openapi.json" and instance["txt"]["app"] == "/app/"
    assert instance["txt"]["path"] == "/" and instance["version"]
    assert instance["spec_url"].endswith("/openapi.json")
