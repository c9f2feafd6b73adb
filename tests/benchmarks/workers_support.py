"""Pieces of bench_workers.py: photos, a service ready to load, the mixed-load driver, memory.

Kept free of pytest and of app imports at module level. The driver runs as a
process of its own (``python -m tests.benchmarks.workers_support drive ...``
from the repository root) so that its CPU is not the pytest process's and can
be measured: 16 client threads on ``http.client`` cost a few ms of CPU per
request, against the tens to hundreds the server spends on a decode.

Each client thread sends one request after the other (a closed loop), each
drawn from the weighted mix ``MIX``:

* ``upload``: ``POST /images`` of a 1-3 MB photo JPEG whose bytes were never
  sent before (one of the base photos with a JPEG comment of its own, so
  dedup never short-circuits the decode);
* ``render_uncached``: ``GET /images/{id}/render?width=W`` with a width never
  asked before for that image (request n asks image ``n % len(ids)`` for width
  ``WIDTH_LOW + (n // len(ids) * WIDTH_STEP) % WIDTH_SPAN``: the widths of any
  stretch of requests spread over the whole band, so the cost per request does
  not drift as a faster configuration gets further into the sequence);
* ``thumbnail_cached``: ``GET /images/{id}/thumbnail`` of an image whose
  thumbnail was made before the load;
* ``list``: ``GET /images?limit=20``.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import random
import secrets
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from .harness import _listening_pids, server_cpu

REPO_ROOT = Path(__file__).resolve().parents[2]

MIX = {"upload": 20, "render_uncached": 40, "thumbnail_cached": 30, "list": 10}
KINDS = tuple(MIX)

WIDTH_LOW = 300
WIDTH_SPAN = 500  # widths 300 .. 799: web-page sizes of a 2400-3600 px photo
WIDTH_STEP = 37  # coprime with WIDTH_SPAN: a permutation of the band

# (corpus photo, size, noise): 1-3 MB each at quality 90, landscape and portrait,
# some with an EXIF orientation to apply (Landscape_5..8 are stored rotated).
BASE_PHOTOS = [
    ("orientation/Landscape_1.jpg", (3000, 2000), 8),
    ("orientation/Portrait_6.jpg", (2400, 1600), 12),
    ("orientation/Landscape_6.jpg", (2000, 3000), 10),
    ("orientation/Portrait_3.jpg", (2400, 3600), 8),
    ("orientation/Landscape_3.jpg", (3600, 2400), 10),
    ("orientation/Portrait_1.jpg", (1800, 2700), 14),
    ("orientation/Landscape_8.jpg", (2400, 3600), 6),
    ("orientation/Portrait_8.jpg", (3300, 2200), 9),
]


# --- photos -----------------------------------------------------------------


def make_photo(source: Path, path: Path, size: tuple[int, int], *, noise: int, seed: int) -> Path:
    """``source`` resized to ``size`` with sensor-like noise, JPEG quality 90, EXIF kept."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    with Image.open(source) as src:
        exif = src.info.get("exif", b"")
        big = src.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    pixels = np.asarray(big, dtype=np.int16)
    pixels = pixels + rng.integers(-noise, noise + 1, size=pixels.shape, dtype=np.int16)
    np.clip(pixels, 0, 255, out=pixels)
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(path, "JPEG", quality=90, exif=exif)
    return path


def make_base_photos(corpus_dir: Path, folder: Path) -> list[Path]:
    """The base photos of ``BASE_PHOTOS``, distinct pixels each, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        make_photo(corpus_dir / name, folder / f"base-{i}.jpg", size, noise=noise, seed=i)
        for i, (name, size, noise) in enumerate(BASE_PHOTOS)
    ]


def with_comment(jpeg: bytes, comment: bytes) -> bytes:
    """``jpeg`` with a COM segment after its APPn segments: same pixels, other bytes."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    pos = 2
    while jpeg[pos] == 0xFF and 0xE0 <= jpeg[pos + 1] <= 0xEF:
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        pos += 2 + length
    return jpeg[:pos] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + jpeg[pos:]


def multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with ``data`` in the field ``image``; (body, type)."""
    boundary = secrets.token_hex(16)
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="image"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return (
        head + data + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


# --- a service ready to load ------------------------------------------------


def prepare_service(env: Mapping[str, str]) -> str:
    """Migrate and create a tenant; its admin key (like tests/e2e/test_images_live.py, one call less)."""
    from tests.support.live_server import (
        cli,  # tests/ is on the path only under pytest (not in the driver)
    )

    cli(env, "db", "upgrade")
    return json.loads(cli(env, "tenants", "create", "bench", "--json"))["api_key"]


def wait_idle(base: str, *, quiet_cpu_s: float = 0.02, interval_s: float = 0.25) -> float:
    """Wait (at most 30 s) until the server on ``base``'s port stops using CPU; seconds waited."""
    port = urlsplit(base).port or 80
    began = time.monotonic()
    before = server_cpu(port)
    while before is not None and time.monotonic() - began < 30:
        time.sleep(interval_s)
        now = server_cpu(port)
        if now is None or now - before <= quiet_cpu_s:
            break
        before = now
    return time.monotonic() - began


# --- memory (Linux /proc) ---------------------------------------------------


def _kib(path: str, field: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _ppid(pid: int) -> int:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return int(raw[raw.rindex(")") + 2 :].split()[1])


def gunicorn_memory(port: int) -> dict:
    """RSS, PSS and peak RSS (KiB) of the gunicorn master and the sum over its workers.

    The master and the workers all hold the listening socket; the master is the
    one whose parent does not. PSS shares pages mapped by several processes
    among them, so its sum is what the workers really cost together; the RSS
    sum counts shared pages once per worker.
    """
    pids = _listening_pids(port)
    masters = [pid for pid in pids if _ppid(pid) not in pids]
    if len(masters) != 1:
        raise RuntimeError(f"cannot tell the gunicorn master among {sorted(pids)}")
    master = masters[0]
    workers = sorted(pid for pid in pids if pid != master)
    result = {"master_pid": master, "worker_pids": workers, "workers": len(workers)}
    for name, path, field in (
        ("rss", "status", "VmRSS"),
        ("peak_rss", "status", "VmHWM"),
        ("pss", "smaps_rollup", "Pss"),
    ):
        try:
            result[f"workers_{name}_kib"] = sum(_kib(f"/proc/{p}/{path}", field) for p in workers)
            result[f"master_{name}_kib"] = _kib(f"/proc/{master}/{path}", field)
        except (OSError, KeyError):
            result[f"workers_{name}_kib"] = result[f"master_{name}_kib"] = None
    return result


# --- the driver ---------------------------------------------------------------


def _client(tid: int, opts, state: dict, stop_at: float, out: list) -> None:
    parts = urlsplit(opts.base)
    rng = random.Random(f"{opts.seed}-{tid}")
    kinds, weights = list(MIX), list(MIX.values())
    ids, bases = state["ids"], state["bases"]
    key = {"X-API-Key": opts.key}
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=opts.timeout)
    records: list[tuple[str, float, int, str]] = []
    errors: dict[str, int] = {kind: 0 for kind in KINDS}
    sent = 0
    while time.time() < stop_at:
        kind = rng.choices(kinds, weights)[0]
        headers = dict(key)
        body = None
        if kind == "upload":
            token = f"workers bench {opts.seed} {tid} {sent} {secrets.token_hex(8)}".encode()
            data = with_comment(rng.choice(bases), token)
            body, headers["Content-Type"] = multipart(data, f"photo-{tid}-{sent}.jpg")
            method, path = "POST", "/images"
        elif kind == "render_uncached":
            n = next(state["render_counter"])
            k = n // len(ids)
            width = WIDTH_LOW + (k * WIDTH_STEP) % WIDTH_SPAN
            quality = 82 - k // WIDTH_SPAN  # past the band: another quality, still never asked
            method = "GET"
            path = f"/images/{ids[n % len(ids)]}/render?width={width}&quality={quality}"
        elif kind == "thumbnail_cached":
            method, path = "GET", f"/images/{rng.choice(ids)}/thumbnail"
        else:
            method, path = "GET", "/images?limit=20"
        sent += 1
        began = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            if time.time() <= stop_at:
                errors[kind] += 1
                time.sleep(0.05)  # a refused connection must not spin
            continue
        elapsed = time.perf_counter() - began
        if time.time() <= stop_at:  # requests finishing after the end are not counted
            cache = response.getheader("X-Rendition-Cache") or ""
            records.append((kind, elapsed, response.status, cache))
        if response.will_close:
            conn.close()
    conn.close()
    out.append({"records": records, "errors": errors, "sent": sent})


def drive(opts) -> dict:
    """Run the mix against ``opts.base`` for ``opts.seconds`` with ``opts.clients`` threads."""
    state = {
        "ids": json.loads(Path(opts.ids_file).read_text()),
        "bases": [Path(p).read_bytes() for p in opts.photo],
        "render_counter": itertools.count(opts.render_start),
    }
    out: list = []
    start_at = time.time() + 0.1
    stop_at = start_at + opts.seconds
    threads = [
        threading.Thread(target=_client, args=(t, opts, state, stop_at, out))
        for t in range(opts.clients)
    ]
    while time.time() < start_at:
        time.sleep(0.005)
    cpu_before = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = time.process_time() - cpu_before
    records = [r for part in out for r in part["records"]]
    by_kind: dict[str, dict] = {}
    for kind in KINDS:
        mine = [r for r in records if r[0] == kind]
        statuses: dict[str, int] = {}
        for r in mine:
            statuses[str(r[2])] = statuses.get(str(r[2]), 0) + 1
        expected_cache = {"render_uncached": "miss", "thumbnail_cached": "hit"}.get(kind)
        by_kind[kind] = {
            "requests": len(mine),
            "latencies_s": [r[1] for r in mine],
            "statuses": statuses,
            "bad_status": sum(1 for r in mine if not 200 <= r[2] < 300),
            "errors": sum(part["errors"][kind] for part in out),
            # an uncached render served from the cache, a cached one computed, an upload deduped
            "surprises": sum(
                1
                for r in mine
                if 200 <= r[2] < 300
                and (
                    (expected_cache and r[3] != expected_cache)
                    or (kind == "upload" and r[2] != 201)
                )
            ),
        }
    return {
        "seconds": opts.seconds,
        "clients": opts.clients,
        "requests": len(records),
        "rps": len(records) / opts.seconds,
        "sent": sum(part["sent"] for part in out),
        "driver_cpu_s": cpu,
        "render_next": next(state["render_counter"]),
        "kinds": by_kind,
    }


def run_driver(
    base: str,
    *,
    key: str,
    ids_file: Path,
    photos: list[Path],
    seconds: float,
    clients: int,
    seed: str,
    render_start: int,
    timeout_s: float = 60.0,
) -> dict:
    """``drive`` in a process of its own; its result plus the server's CPU seconds used."""
    cmd = [sys.executable, "-m", "tests.benchmarks.workers_support", "drive", base]
    cmd += ["--key", key, "--ids-file", str(ids_file), "--seconds", str(seconds)]
    cmd += ["--clients", str(clients), "--seed", seed, "--render-start", str(render_start)]
    cmd += ["--timeout", str(timeout_s)]
    cmd += [arg for photo in photos for arg in ("--photo", str(photo))]
    port = urlsplit(base).port or 80
    server_before = server_cpu(port)
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=seconds + timeout_s + 60,
        check=False,
    )
    server_after = server_cpu(port)
    if proc.returncode != 0:
        raise RuntimeError(f"driver failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["server_cpu_s"] = (
        server_after - server_before
        if server_before is not None and server_after is not None
        else None
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    d = commands.add_parser("drive", help="run the mix against a server; print one JSON line")
    d.add_argument("base")
    d.add_argument("--key", required=True)
    d.add_argument("--ids-file", required=True, help="JSON list of image ids already rendered")
    d.add_argument("--photo", action="append", required=True, help="a base JPEG to upload")
    d.add_argument("--seconds", type=float, default=10.0)
    d.add_argument("--clients", type=int, default=16)
    d.add_argument("--seed", default="0")
    d.add_argument("--render-start", type=int, default=0)
    d.add_argument("--timeout", type=float, default=60.0)
    opts = parser.parse_args(argv)
    print(json.dumps(drive(opts)))


if __name__ == "__main__":
    main()
