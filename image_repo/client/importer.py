"""Bulk import: upload files and folders to a running Image Repo over HTTP.

This is a client of the API, not a database writer: it needs nothing but a
URL and a key that may upload, works against any instance (local or behind a
load balancer), and every file goes through exactly what one upload goes
through (decoding checks, quota, rate limits, metrics). Re-running is safe
because the server deduplicates by SHA-256: bytes the tenant already has
answer 200 (a duplicate), new ones 201 (imported).

``import_paths`` is the framework-free core; ``import_command`` is the click
command (``image-repo import``) built on it. The command needs no Flask app.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import mimetypes
import os
import random
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import click
import requests
import tenacity

from image_repo.cli.wording import counted

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

API_KEY_ENV = "IMAGE_REPO_API_KEY"
DEFAULT_WORKERS = 4
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_S = 0.5
# Connect fast or give up; reading may take long, as the server decodes the
# whole file before it answers.
TIMEOUT_S = (10.0, 300.0)
# A 429 is waited out, but not forever: a budget that never comes back (or a
# proxy answering 429 to everything) must end as a failure, not a hang.
MAX_RETRY_AFTER_S = 300.0
MAX_RATE_LIMIT_WAITS = 20
USER_AGENT = "image-repo-import/1"
UPLOAD_PERMISSION = "images:write"

Outcome = Literal["imported", "duplicate", "rejected", "failed", "skipped"]
ProgressCallback = Callable[["FileResult"], None]


# --- results -----------------------------------------------------------------


@dataclass(frozen=True)
class FileResult:
    """What became of one file."""

    path: str
    outcome: Outcome
    status: int | None = None  # HTTP status of the last answer; None: no answer
    message: str = ""
    image_id: str | None = None

    def as_dict(self) -> dict:
        return {"path": self.path, "status": self.status, "message": self.message}


@dataclass
class ImportReport:
    """The outcome of a run, files in the order they were found."""

    files: int = 0
    imported: list[FileResult] = field(default_factory=list)
    duplicates: list[FileResult] = field(default_factory=list)
    rejected: list[FileResult] = field(default_factory=list)
    failed: list[FileResult] = field(default_factory=list)
    # Not sent because the run stopped early (see ``aborted``).
    skipped: list[FileResult] = field(default_factory=list)
    aborted: str | None = None

    @property
    def ok(self) -> bool:
        """Nothing failed. Rejections are answers about the files, not failures."""
        return not self.failed and not self.skipped and self.aborted is None

    def add(self, result: FileResult) -> None:
        bucket = {
            "imported": self.imported,
            "duplicate": self.duplicates,
            "rejected": self.rejected,
            "failed": self.failed,
            "skipped": self.skipped,
        }[result.outcome]
        bucket.append(result)

    def to_json(self) -> dict:
        return {
            "imported": len(self.imported),
            "duplicates": len(self.duplicates),
            "rejected": [r.as_dict() for r in self.rejected],
            "failed": [r.as_dict() for r in self.failed],
            "files": self.files,
            "skipped": len(self.skipped),
            "aborted": self.aborted,
        }


class ImportAborted(Exception):
    """The run cannot start: the server, the URL or the key is not usable."""


class ServerUnreachable(ImportAborted):
    pass


class NotAnImageRepo(ImportAborted):
    pass


class KeyRefused(ImportAborted):
    pass


class _Stopped(Exception):
    """The run was told to stop before this file was sent."""


# --- finding files -----------------------------------------------------------


def collect_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The regular files named by ``paths`` or under them, each once, in a stable order.

    Folders are walked in sorted order; hidden entries (``.name``) are
    skipped, and so are symlinked folders (not followed: they can leave the
    tree or loop), sockets, FIFOs and devices. A file named explicitly is
    taken even if hidden. The same file reached twice (overlapping arguments,
    hard links) is sent once. Raises FileNotFoundError for a missing path.
    """
    seen: set[tuple[int, int]] = set()
    found: list[Path] = []
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise FileNotFoundError(f"{root}: no such file or folder")
        candidates = _walk(root) if root.is_dir() else iter([root])
        for path in candidates:
            identity = _regular_file_identity(path)
            if identity is not None and identity not in seen:
                seen.add(identity)
                found.append(path)
    return found


def _walk(root: Path) -> Iterator[Path]:
    # followlinks=False: a symlinked folder shows up in dirnames but is not entered.
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        # Editing dirnames in place is how os.walk is told what to enter, and in which order.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath, name)


def _regular_file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a regular file (following a file symlink), else None."""
    try:
        info = path.stat()
    except OSError:
        return None  # dangling symlink, or gone since the walk saw it
    # Reading a FIFO or a device would block or never end.
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


# --- talking to the server ---------------------------------------------------


def normalise_url(url: str) -> str:
    """The base URL without trailing slashes, so ``base + "/images"`` is right either way."""
    base = url.strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s) URL like http://127.0.0.1:5000")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r}: give the service's base URL, without ? or #")
    return base


class _Throttle:
    """One pause shared by every worker.

    A 429 means the key's budget is spent for all threads alike: when one
    worker is told to wait, the others wait too instead of spending requests
    on more 429s.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resume_at = 0.0

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    def wait(self, stop: threading.Event) -> None:
        while True:
            with self._lock:
                remaining = self._resume_at - time.monotonic()
            # Loop: another worker may have pushed the time back meanwhile.
            if remaining <= 0 or stop.wait(remaining):
                return


class _Sessions:
    """A requests.Session per thread: sessions keep connections alive but are not thread-safe."""

    def __init__(self, api_key: str) -> None:
        self._headers = {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[requests.Session] = []

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update(self._headers)
            self._local.session = session
            with self._lock:
                self._all.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._all:
                session.close()
            self._all.clear()


@dataclass
class _Run:
    """What every worker shares during one run."""

    base: str
    sessions: _Sessions
    workers: int
    retries: int
    backoff_s: float
    throttle: _Throttle = field(default_factory=_Throttle)
    stop: threading.Event = field(default_factory=threading.Event)
    abort_reason: str | None = None
    _abort_lock: threading.Lock = field(default_factory=threading.Lock)

    def abort(self, reason: str) -> None:
        with self._abort_lock:
            self.abort_reason = self.abort_reason or reason  # the first reason is the cause
        self.stop.set()

    def pause(self, seconds: float) -> None:
        """Sleep, but wake (and give up on the file) as soon as the run stops."""
        if self.stop.wait(seconds):
            raise _Stopped

    def backoff(self, attempt: int) -> float:
        # Jitter spreads the retries of parallel workers so that a server
        # coming back up is not hit by all of them at the same instant.
        return self.backoff_s * 2 ** (attempt - 1) * random.uniform(0.75, 1.25)  # noqa: S311


RETRYABLE_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def _send_with_retries(send: Callable[[], requests.Response], run: _Run) -> requests.Response:
    """Send until there is a final answer.

    Connection errors and 5xx are retried ``run.retries`` times with
    exponential, jittered backoff (tenacity); a 5xx's Retry-After is waited
    out if longer. A 429 is waited out (Retry-After) without spending a
    retry, and holds every worker. Sending an upload again is safe: the
    server deduplicates, so a repeat of bytes that did arrive only turns
    into a 200.
    """
    for rate_limit_waits in itertools.count(1):
        response = _retrying(run)(_after_throttle(send, run))
        if response.status_code != 429 or rate_limit_waits > MAX_RATE_LIMIT_WAITS:
            return response
        run.throttle.hold(_retry_after_s(response) or run.backoff(rate_limit_waits))
    raise AssertionError("unreachable")  # pragma: no cover


def _after_throttle(send: Callable[[], requests.Response], run: _Run):
    def attempt() -> requests.Response:
        run.throttle.wait(run.stop)
        if run.stop.is_set():
            raise _Stopped
        return send()

    return attempt


def _retrying(run: _Run) -> tenacity.Retrying:
    def wait(state: tenacity.RetryCallState) -> float:
        delay = run.backoff(state.attempt_number)
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            delay = max(delay, _retry_after_s(outcome.result()) or 0.0)
        return delay

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(run.retries + 1),
        wait=wait,
        # A pause that ends early because the run stopped gives up on the file.
        sleep=run.pause,
        retry=(
            tenacity.retry_if_exception_type(RETRYABLE_ERRORS)
            | tenacity.retry_if_result(lambda response: response.status_code >= 500)
        ),
        # Out of attempts: the last answer (a 5xx) or the last error, as is.
        retry_error_callback=lambda state: state.outcome.result(),
    )


def _retry_after_s(response: requests.Response) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), capped; None when absent."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _server_message(response: requests.Response) -> str:
    """The ``message`` of the service's error envelope, or the best the answer offers."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    # Not our envelope (a proxy's page, say): the status phrase says more than HTML would.
    return response.reason or f"HTTP {response.status_code}"


def _error_reason(exc: BaseException) -> str:
    """A short cause ("Connection refused"), not requests' page of nested reprs."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    # requests wraps urllib3, which wraps the socket's error: look inside,
    # preferring the OS's own words, then the innermost plain exception.
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    plain: str | None = None
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        if type(current).__module__.partition(".")[0] not in ("requests", "urllib3"):
            plain = f"{type(current).__name__}: {str(current).strip()}"
        nested = [getattr(current, "reason", None), current.__cause__, current.__context__]
        pending += [e for e in [*nested, *current.args] if isinstance(e, BaseException)]
    text = plain or str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


# --- the checks before the run -----------------------------------------------


def _check_server(run: _Run) -> None:
    """Ask ``GET /me`` once, so that a wrong URL or key stops the run before any upload.

    Raises ServerUnreachable, NotAnImageRepo or KeyRefused.
    """
    session = run.sessions.get()
    try:
        response = _send_with_retries(
            lambda: session.get(f"{run.base}/me", timeout=TIMEOUT_S, allow_redirects=False), run
        )
    except requests.RequestException as exc:
        raise ServerUnreachable(f"cannot reach {run.base}: {_error_reason(exc)}") from exc
    _judge_me(run.base, response)


def _judge_me(base: str, response: requests.Response) -> None:
    status = response.status_code
    if status == 401:
        raise KeyRefused(f"the server refused the API key (401): {_server_message(response)}")
    if status == 403:
        return  # the key is valid but may not read /me; the uploads will tell
    if 300 <= status < 400:
        where = response.headers.get("Location", "elsewhere")
        raise NotAnImageRepo(f"{base}/me redirects to {where}: give the final address as --url")
    if status >= 500:
        raise ServerUnreachable(f"{base} answers {status}: {_server_message(response)}")
    try:
        me = response.json() if status == 200 else None
    except ValueError:
        me = None
    if not isinstance(me, dict):
        raise NotAnImageRepo(
            f"{base} does not look like an Image Repo API (GET /me answered {status})"
        )
    permissions = me.get("permissions")
    if isinstance(permissions, list) and UPLOAD_PERMISSION not in permissions:
        raise KeyRefused(
            f"the API key (group {me.get('group')!r}) may not upload images: "
            f"it lacks {UPLOAD_PERMISSION}"
        )


# --- uploading ---------------------------------------------------------------


def _upload_name(path: Path) -> str:
    # Undecodable bytes in a file name (surrogate escapes) cannot go into a
    # multipart header; the server only uses the name as a label.
    return path.name.encode("utf-8", "replace").decode("utf-8")


def _content_type(path: Path) -> str:
    # Only a hint: the server decides by decoding the bytes, never by type or name.
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _upload_one(path: Path, run: _Run) -> FileResult:
    session = run.sessions.get()
    images_url = f"{run.base}/images"

    def send() -> requests.Response:
        # Opened per attempt: a retry must send the file from its start.
        with path.open("rb") as stream:
            files = {"image": (_upload_name(path), stream, _content_type(path))}
            # No redirects: requests would turn a redirected POST into a GET.
            return session.post(images_url, files=files, timeout=TIMEOUT_S, allow_redirects=False)

    try:
        response = _send_with_retries(send, run)
    except _Stopped:
        return FileResult(str(path), "skipped", message="not sent: the run stopped")
    except requests.RequestException as exc:
        return FileResult(str(path), "failed", message=_error_reason(exc))
    except OSError as exc:  # after RequestException, which is an OSError too
        return FileResult(str(path), "failed", message=f"cannot read: {exc.strerror or exc}")
    return _classify(path, response, run)


def _classify(path: Path, response: requests.Response, run: _Run) -> FileResult:
    status = response.status_code
    name = str(path)
    if status in (200, 201):
        image_id = _image_id(response)
        return FileResult(name, "imported" if status == 201 else "duplicate", status, "", image_id)
    message = _server_message(response)
    if status in (401, 403):
        # The key, not the file: every further upload would be refused the same way.
        run.abort(f"the server refused the API key ({status}): {message}")
        return FileResult(name, "failed", status, message)
    if 400 <= status < 500 and status != 429:
        return FileResult(name, "rejected", status, message)
    if 300 <= status < 400:
        message = f"redirected to {response.headers.get('Location', '?')}"
    return FileResult(name, "failed", status, message)


def _image_id(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("id") if isinstance(body, dict) else None


def _upload_all(
    files: Sequence[Path], run: _Run, on_progress: ProgressCallback | None
) -> list[FileResult]:
    """Upload with ``run.workers`` threads; the results in the order of ``files``."""
    results: list[FileResult | None] = [None] * len(files)
    pool = ThreadPoolExecutor(max_workers=min(run.workers, len(files)), thread_name_prefix="import")
    try:
        futures = {pool.submit(_upload_one, path, run): index for index, path in enumerate(files)}
        # Results are gathered here, in the calling thread, so that the
        # progress callback never runs on a worker thread.
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            if on_progress is not None:
                on_progress(result)
    finally:
        # On Ctrl-C (or a bug) nothing that has not started may still be sent.
        run.stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    return [result for result in results if result is not None]


def import_paths(
    paths: Iterable[str | os.PathLike[str]],
    url: str,
    api_key: str,
    *,
    workers: int = DEFAULT_WORKERS,
    on_progress: ProgressCallback | None = None,
    retries: int = DEFAULT_RETRIES,
    backoff_s: float = DEFAULT_BACKOFF_S,
) -> ImportReport:
    """Upload every file under ``paths`` to the service at ``url``; return what became of each.

    Raises ValueError for a bad URL, FileNotFoundError for a missing path,
    and ImportAborted when the server cannot be reached or refuses the key
    (checked once before any upload). A key refused during the run stops it:
    the report then has ``aborted`` set and the unsent files in ``skipped``.
    ``on_progress`` is called in the calling thread after each file.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    run = _Run(normalise_url(url), _Sessions(api_key), workers, retries, backoff_s)
    try:
        _check_server(run)
        files = collect_files(paths)
        results = _upload_all(files, run, on_progress) if files else []
    finally:
        run.sessions.close()
    report = ImportReport(files=len(files), aborted=run.abort_reason)
    for result in results:
        report.add(result)
    return report


# --- the command -------------------------------------------------------------


class _CannotStart(click.ClickException):
    """Exit 2, as for bad usage: nothing was imported, and retrying as is will not help."""

    exit_code = 2


@contextmanager
def _progress_bar(total: int, *, hidden: bool) -> Iterator[ProgressCallback]:
    """Advance click's bar on stderr once per finished file.

    The bar is drawn from the first finished file on, so that a run refused
    up front (unreachable server, bad key) leaves no empty bar behind.
    """
    with ExitStack() as stack:
        bars: list[ProgressBar[int]] = []

        def advance(_result: FileResult) -> None:
            if not bars:
                bar = click.progressbar(
                    length=total, label="importing", file=sys.stderr, hidden=hidden
                )
                bars.append(stack.enter_context(bar))
            bars[0].update(1)

        yield advance


def _stderr_is_terminal() -> bool:
    return hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def format_summary(report: ImportReport) -> str:
    """The human summary: counts, then each rejection and failure grouped by status."""
    lines = [
        f"{counted(report.files, 'file')}: {len(report.imported)} imported, "
        f"{counted(len(report.duplicates), 'duplicate')}, {len(report.rejected)} rejected, "
        f"{len(report.failed)} failed"
        + (f", {len(report.skipped)} not sent" if report.skipped else "")
    ]
    if report.aborted:
        lines.append(f"stopped early: {report.aborted}")
    lines += _grouped("rejected", report.rejected)
    lines += _grouped("failed", report.failed)
    return "\n".join(lines)


def _grouped(title: str, results: list[FileResult]) -> list[str]:
    if not results:
        return []
    lines = [f"{title}:"]

    def by_status(result: FileResult) -> int:
        return result.status or 0  # no answer at all (network) sorts first

    for status, group in groupby(sorted(results, key=by_status), key=by_status):
        members = list(group)
        lines.append(f"  {_status_label(status)} ({len(members)}):")
        lines += [f"    {r.path}: {r.message}" for r in members]
    return lines


def _status_label(status: int) -> str:
    if not status:
        return "no answer"
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--url",
    required=True,
    help="Base URL of the running service, e.g. http://127.0.0.1:5000 (image-repo serve's).",
)
@click.option(
    "--api-key",
    envvar=API_KEY_ENV,
    show_envvar=True,
    help="API key allowed to upload (images:write). Prefer the variable: "
    "an option shows up in the process list.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=DEFAULT_WORKERS,
    show_default=True,
    help="Uploads in parallel.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=DEFAULT_RETRIES,
    show_default=True,
    help="Retries of a file after a connection error or 5xx.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def import_command(
    paths: tuple[Path, ...],
    url: str,
    api_key: str | None,
    workers: int,
    retries: int,
    as_json: bool,
) -> None:
    """Upload image files and folders (recursively) to a running Image Repo.

    Safe to re-run: bytes the tenant already has count as duplicates. Exits 0
    when nothing failed (rejected files are not failures), 1 when a file
    could not be sent, 2 when the run cannot start (usage, unreachable
    server, refused key).
    """
    if not api_key:
        raise click.UsageError(f"give --api-key or set {API_KEY_ENV}")
    try:
        base = normalise_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from exc
    # Walked here as well as in import_paths: the bar needs the total up front.
    files = collect_files(paths)
    hidden = as_json or not _stderr_is_terminal()
    try:
        with _progress_bar(len(files), hidden=hidden) as advance:
            report = import_paths(
                files, base, api_key, workers=workers, on_progress=advance, retries=retries
            )
    except ImportAborted as exc:
        raise _CannotStart(str(exc)) from exc
    click.echo(json.dumps(report.to_json()) if as_json else format_summary(report))
    if not report.ok:
        sys.exit(1)
