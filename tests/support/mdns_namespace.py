"""Run inside a fresh network namespace (``unshare --net``): advertise, then discover.

Called by tests/e2e/test_lan_discovery.py as ``unshare --net python this.py PORT
DATA_DIR``. The namespace has nothing but its own loopback interface, so no
packet can reach a real network: lo is brought up with multicast and a route
for 224.0.0.0/4, ``image-repo serve --advertise`` runs on 127.0.0.1, and
``image-repo discover`` listens on 127.0.0.1. Prints one JSON object: the
interfaces the namespace has and what discover heard.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def main(port: int, data_dir: str) -> None:
    for command in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "link", "set", "lo", "multicast", "on"],
        ["ip", "route", "add", "224.0.0.0/4", "dev", "lo"],
    ):
        subprocess.run(command, check=True)
    links = subprocess.run(["ip", "-o", "link"], check=True, capture_output=True, text=True)
    env = {**os.environ, "IMAGE_REPO_DATA_DIR": data_dir}
    server = subprocess.Popen(
        [BIN / "image-repo", "serve", "--host", "127.0.0.1", "--port", str(port), "--advertise"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The server registers its service before it answers HTTP.
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not start: {server.stdout.read()}") from None
                time.sleep(0.1)
        heard = subprocess.run(
            [BIN / "image-repo", "discover", "--host", "127.0.0.1", "--timeout", "2", "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    interfaces = [line.split(":")[1].strip() for line in links.stdout.splitlines()]
    print(json.dumps({"interfaces": interfaces, **json.loads(heard.stdout)}))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
