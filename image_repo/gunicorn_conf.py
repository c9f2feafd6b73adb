"""gunicorn settings: ``gunicorn -c python:image_repo.gunicorn_conf image_repo.wsgi:app``.

Every value can be changed with gunicorn's own command-line flags or the
``GUNICORN_CMD_ARGS`` variable; the ones here are the service's defaults.
The configuration is validated in the master before any worker starts, so
a bad setting stops the server with one line instead of a crash loop.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
import tempfile

# Metrics from every worker: prometheus-client's multiprocess mode must be
# chosen before it is first imported (image_repo imports it).
_OWN_METRICS_DIR = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _OWN_METRICS_DIR = tempfile.mkdtemp(prefix="image-repo-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _OWN_METRICS_DIR

from image_repo.config import ConfigError, load_config  # noqa: E402 - after the env set-up

try:
    _config = load_config()
except ConfigError as _exc:
    sys.stderr.write(f"image-repo: {_exc}\n")
    sys.exit(2)

bind = _config["BIND"]
# Decoding is CPU-bound: about one worker per core, plus one to cover I/O waits.
workers = _config["WORKERS"] or multiprocessing.cpu_count() + 1
worker_class = "sync"
timeout = 60
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (image codecs can fragment memory), but
# rarely: a new worker pays for importing the imaging stack again.
max_requests = 20000
max_requests_jitter = 2000
# Request line and header limits: nothing of ours needs more.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# The service writes one JSON line per request to stdout itself (never a
# header, so never a key); gunicorn's own access log would repeat it.
accesslog = None
errorlog = "-"
forwarded_allow_ips = _config["FORWARDED_ALLOW_IPS"]

# A control socket per instance (``gunicornc -s DATA_DIR/gunicorn.ctl``).
# gunicorn's default is one path per user: a second instance took it over,
# and stopping either removed it.
UNIX_PATH_MAX = 100  # bytes; the kernel's limit is 107 or 103


def control_socket_path(data_dir: os.PathLike[str] | str) -> str:
    """``gunicorn.ctl`` in the data folder; for a folder too deep for a Unix
    socket path, a name made from the folder in the runtime folder."""
    folder = os.path.abspath(data_dir)
    path = os.path.join(folder, "gunicorn.ctl")
    if len(os.fsencode(path)) <= UNIX_PATH_MAX:
        return path
    digest = hashlib.sha256(os.fsencode(folder)).hexdigest()[:16]
    runtime = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return os.path.join(runtime, f"image-repo-{digest}.ctl")


control_socket = control_socket_path(_config["DATA_DIR"])


def on_starting(server) -> None:
    """Migrate before any worker starts, on the embedded default or when asked."""
    if _config["EMBEDDED_DATABASE"] or _config["AUTO_MIGRATE"]:
        from image_repo.db.migrate import upgrade
        from image_repo.services import build_services

        services = build_services(_config)
        try:
            upgrade(services.engine)
        finally:
            services.close()  # no connection of the master's is left for the workers


def child_exit(server, worker) -> None:
    """Fold a dead worker's metrics into the totals (prometheus multiprocess mode)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


_advertisement = None


def when_ready(server) -> None:
    """With IMAGE_REPO_ADVERTISE, the master publishes the instance over mDNS."""
    global _advertisement
    if not _config["ADVERTISE"]:
        return
    from image_repo.services.discovery import Advertisement

    tcp = [a for a in server.address if isinstance(a, tuple)]
    if not tcp:
        server.log.warning("IMAGE_REPO_ADVERTISE: no TCP address to advertise")
        return
    host, port = tcp[0][:2]
    _advertisement = Advertisement(str(host), int(port), _config["API_VERSION"]).__enter__()


def on_exit(server) -> None:
    if _advertisement is not None:
        _advertisement.close()
    if _OWN_METRICS_DIR:
        import shutil

        shutil.rmtree(_OWN_METRICS_DIR, ignore_errors=True)
