"""The ``image-repo`` command line's commands (the program itself is ``cli.main``).

Built on Flask's CLI: every command runs with an application made by
``create_app`` from the environment, and takes the services it needs from
it; commands that extensions register (``openapi write``) come along.
``register_commands`` puts ours on each app, so Flask's test runner sees
them too. With ``--json`` a command prints one JSON object; commands that
create a key put its secret in ``api_key`` and its id in ``key_id``.
"""

from __future__ import annotations

import errno
import functools
import json
import re
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.serving import (
    WSGIRequestHandler,
    get_sockaddr,
    make_server,
    select_address_family,
)

from image_repo.cli.wording import counted
from image_repo.config import default_data_dir
from image_repo.db import migrate
from image_repo.db.engine import sqlite_path
from image_repo.db.models import Image
from image_repo.domain import analyses, maintenance, signing, tenancy, trash
from image_repo.domain.errors import DomainError
from image_repo.http.context import current_services, services_of
from image_repo.http.keys.schemas import KeySchema, NewKeySchema
from image_repo.http.tenants.schemas import TenantSchema
from image_repo.imaging.limits import DecodeLimits
from image_repo.jobs import consumer, queue
from image_repo.services import discovery

DURATION = re.compile(r"^(\d+)([smhdw])$")
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _app() -> Flask:
    return current_app._get_current_object()  # type: ignore[attr-defined]


@contextmanager
def _session() -> Iterator[Session]:
    """A command's unit of work: committed when the block ends, rolled back on an error."""
    session = current_services().sessions()
    try:
        yield session
        session.commit()
    except DomainError as exc:
        session.rollback()
        raise click.ClickException(exc.message) from exc
    finally:
        session.close()


def _groups() -> frozenset[str]:
    return frozenset(current_services().group_permissions)


# Keys and tenants are shown as the API shows them (a key with its tenant's id too).
KEY_SCHEMA, NEW_KEY_SCHEMA, TENANT_SCHEMA = KeySchema(), NewKeySchema(), TenantSchema()


def _key_dict(key) -> dict:
    return {**KEY_SCHEMA.dump(key), "tenant_id": key.tenant_id}


def _emit(as_json: bool, payload: dict, text: str) -> None:
    click.echo(json.dumps(payload) if as_json else text)


def parse_duration(value: str) -> timedelta:
    match = DURATION.match(value.strip())
    if not match:
        raise click.BadParameter(f"{value!r}: use a duration like 30m, 12h or 2d")
    amount, unit = int(match.group(1)), DURATION_UNITS[match.group(2)]
    return timedelta(**{unit: amount})


def parse_expiry(value: str | None) -> datetime | None:
    """``30d``, ``12h``, ... from now, or an ISO-8601 time with offset."""
    if not value:
        return None
    if DURATION.match(value.strip()):
        return datetime.now(UTC) + parse_duration(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("use a duration like 30d or 12h, or an ISO-8601 time") from exc
    if parsed.tzinfo is None:
        raise click.BadParameter("give the time with its offset, e.g. 2027-01-01T00:00:00+00:00")
    return parsed


def httpie_hint(host: str, port: int, api_key: str) -> str:
    where = f":{port}" if host in ("127.0.0.1", "localhost") else f"{host}:{port}"
    return f"http {where}/me 'Authorization:Bearer {api_key}'"


# --- the database the commands need -------------------------------------------

DB_UPGRADE = "image-repo db upgrade"


def _data_folder(app: Flask) -> str:
    folder = app.config["DATA_DIR"]
    if folder == default_data_dir():
        return f"the default data folder {folder} (IMAGE_REPO_DATA_DIR names another)"
    return f"the data folder {folder}"


def database_problem(app: Flask) -> str | None:
    """Why the app's database cannot be used as it is, in a sentence or two; None when
    it is migrated. Looks without creating anything: a missing SQLite file is not opened."""
    engine = services_of(app).engine
    embedded = app.config["EMBEDDED_DATABASE"]
    path = sqlite_path(engine)
    if path is not None and not path.exists():
        where = f"in {_data_folder(app)}" if embedded else "at IMAGE_REPO_DATABASE_URL"
        return f"no database {where}: {path} does not exist. Create it with `{DB_UPGRADE}`" + (
            " (`image-repo serve` does so when it starts)." if embedded else "."
        )
    shown = str(path) if path is not None else engine.url.render_as_string(hide_password=True)
    if embedded:
        shown += f" in {_data_folder(app)}"
    try:
        current = migrate.current_revision(engine)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return f"cannot open the database {shown}: {reason}"
    head = migrate.head_revision(engine)
    if current is None:
        return f"the database {shown} has no Image Repo tables: run `{DB_UPGRADE}` first."
    if current != head:
        return (
            f"the database {shown} is at schema revision {current}, this version needs "
            f"{head}: run `{DB_UPGRADE}` first."
        )
    return None


def _require_database(app: Flask) -> None:
    problem = database_problem(app)
    if problem:
        click.echo(f"image-repo: {problem}", err=True)
        sys.exit(2)


def needs_database(command: Callable) -> Callable:
    """Run ``command`` only on a migrated database; else say which and what to run, exit 2."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        _require_database(_app())
        return command(*args, **kwargs)

    return run


# --- serve -------------------------------------------------------------------


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--advertise",
    is_flag=True,
    help="Publish the server on the local network over mDNS (also IMAGE_REPO_ADVERTISE).",
)
@with_appcontext
def serve(host: str, port: int, advertise: bool) -> None:
    """Run the development server (use gunicorn in production).

    On the embedded default the database is migrated first, and on first run
    a default tenant and an admin key are created and the key printed once.
    """
    app = _app()
    server = _listen(app, host, port)  # first: a taken port stops here, with nothing done
    if app.config["EMBEDDED_DATABASE"]:
        migrate.upgrade(services_of(app).engine)
        if app.config["ENV"] == "development":
            _first_run(host, server.port)
    else:
        _require_database(app)
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"Image Repo on http://{shown_host}:{server.port}/ (API docs at /docs)")
    _start_jobs(app)
    if not (advertise or app.config["ADVERTISE"]):
        server.serve_forever()
        return
    with discovery.Advertisement(host, server.port, app.config["API_VERSION"]) as published:
        click.echo(f"Advertised on the local network as {published.instance_name!r}")
        server.serve_forever()


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's handler without its access log: the app logs one JSON line per request."""

    def log_request(self, code="-", size="-") -> None:
        return None


def _listen(app: Flask, host: str, port: int):
    """werkzeug's threaded server on a socket bound here, so that a port already
    taken is one line naming the way out (werkzeug would print and exit itself)."""
    try:
        family = select_address_family(host, port)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(get_sockaddr(host, port, family))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        click.echo(f"image-repo: {_listen_problem(host, port, exc)}", err=True)
        sys.exit(2)
    try:
        return make_server(
            host, port, app, threaded=True, request_handler=_RequestHandler, fd=sock.fileno()
        )
    finally:
        sock.close()  # the server listens on its own duplicate


def _listen_problem(host: str, port: int, exc: OSError) -> str:
    another = f"pick another with --port, e.g. `image-repo serve --port {port + 1}`"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is taken (another program listens there): {another}."
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on port {port} on {host}: {another}."
    reason = exc.strerror or str(exc)
    return f"cannot listen on {host} port {port} ({reason}): check --host, or {another}."


def _first_run(host: str, port: int) -> None:
    with _session() as session:
        if tenancy.list_tenants(session):
            return
        new = tenancy.create_tenant_with_admin_key(session, "default", groups=_groups())
    click.echo("First run: created tenant 'default' and an admin API key (shown only now):")
    click.echo(f"\n    {new.admin_key.api_key}\n")
    click.echo(f"Try it:  {httpie_hint(host, port, new.admin_key.api_key)}\n")


# --- db ----------------------------------------------------------------------

db_cli = AppGroup("db", help="Database schema.")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations the database lacks."""
    migrate.upgrade(current_services().engine)
    click.echo("database is up to date")


# --- tenants -----------------------------------------------------------------

tenants_cli = AppGroup("tenants", help="Tenants: isolated client organisations.")
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


@tenants_cli.command("create")
@click.argument("name")
@click.option(
    "--max-images", type=click.IntRange(0, tenancy.MAX_IMAGES_QUOTA), help="Quota: most images."
)
@click.option(
    "--max-bytes",
    type=click.IntRange(0, tenancy.MAX_BYTES_QUOTA),
    help="Quota: most bytes of originals.",
)
@JSON_OPTION
@needs_database
def tenants_create(name: str, max_images: int | None, max_bytes: int | None, as_json: bool):
    """Create a tenant and its first admin key."""
    with _session() as session:
        new = tenancy.create_tenant_with_admin_key(
            session, name, groups=_groups(), max_images=max_images, max_bytes=max_bytes
        )
    payload = {
        **TENANT_SCHEMA.dump(new.tenant),
        "key_id": new.admin_key.id,
        "api_key": new.admin_key.api_key,
        "group": "admin",
    }
    text = (
        f"tenant {new.name} ({new.id})\n"
        f"admin key {new.admin_key.id} (shown only now):\n  {new.admin_key.api_key}"
    )
    _emit(as_json, payload, text)


@tenants_cli.command("list")
@JSON_OPTION
@needs_database
def tenants_list(as_json: bool) -> None:
    """List tenants."""
    with _session() as session:
        tenants = TENANT_SCHEMA.dump(tenancy.list_tenants(session), many=True)
    text = "\n".join(f"{t['tenant_id']}  {t['name']}  {t['status']}" for t in tenants)
    _emit(as_json, {"items": tenants}, text or "no tenants")


@tenants_cli.command("update")
@click.argument("name")
@click.option(
    "--faces",
    type=click.Choice(["on", "off"]),
    help="The tenant's face analysis (also needs IMAGE_REPO_FACES); off deletes its faces, "
    "descriptors and people.",
)
@JSON_OPTION
@needs_database
def tenants_update(name: str, faces: str | None, as_json: bool) -> None:
    """Change a tenant's settings."""
    from image_repo.domain import faces as face_domain

    deleted = (0, 0)
    with _session() as session:
        tenant = tenancy.get_tenant(session, name=name)
        if faces is not None:
            deleted = face_domain.set_enabled(session, tenant.id, faces == "on")
        payload = {**TENANT_SCHEMA.dump(tenant), "faces_enabled": tenant.faces_enabled}
    payload |= {"faces_deleted": deleted[0], "people_deleted": deleted[1]}
    text = f"tenant {name}: faces {'on' if payload['faces_enabled'] else 'off'}"
    if deleted != (0, 0):
        text += (
            f" (deleted {counted(deleted[0], 'face')}, {counted(deleted[1], 'person', 'people')})"
        )
    _emit(as_json, payload, text)


# --- keys --------------------------------------------------------------------

keys_cli = AppGroup("keys", help="API keys of a tenant.")


@keys_cli.command("create")
@click.option("--tenant", "tenant_name", required=True, help="Tenant name.")
@click.option("--group", required=True, help="reader, contributor, editor, admin, ...")
@click.option("--name", help="A label to tell keys apart.")
@click.option("--expires", help="Expiry: a duration like 30d, or an ISO-8601 time.")
@JSON_OPTION
@needs_database
def keys_create(
    tenant_name: str, group: str, name: str | None, expires: str | None, as_json: bool
) -> None:
    """Create an API key; its secret is printed once."""
    expires_at = parse_expiry(expires)
    with _session() as session:
        tenant = tenancy.get_tenant(session, name=tenant_name)
        new = tenancy.create_key(
            session, tenant, group=group, groups=_groups(), name=name, expires_at=expires_at
        )
    payload = {**NEW_KEY_SCHEMA.dump(new), "tenant_id": tenant.id, "tenant": tenant_name}
    _emit(as_json, payload, f"key {new.id} ({group}), shown only now:\n  {new.api_key}")


@keys_cli.command("list")
@click.option("--tenant", "tenant_name", required=True, help="Tenant name.")
@JSON_OPTION
@needs_database
def keys_list(tenant_name: str, as_json: bool) -> None:
    """List a tenant's keys (never their secrets)."""
    with _session() as session:
        tenant = tenancy.get_tenant(session, name=tenant_name)
        keys = [_key_dict(k) for k in tenancy.list_keys(session, tenant.id)]
    text = "\n".join(
        f"{k['key_id']}  {k['group']:<12} {k['name']}" + ("  (revoked)" if k["revoked_at"] else "")
        for k in keys
    )
    _emit(as_json, {"items": keys}, text or "no keys")


@keys_cli.command("revoke")
@click.argument("key_id")
@JSON_OPTION
@needs_database
def keys_revoke(key_id: str, as_json: bool) -> None:
    """Revoke a key at once."""
    with _session() as session:
        key = tenancy.revoke_key(session, key_id)
        payload = _key_dict(key)
    _emit(as_json, payload, f"key {key_id} revoked")


# --- storage maintenance ------------------------------------------------------


def _store():
    return current_services().blob_store


def _ticking(bar):
    """A progress callback for maintenance: passes items through, one tick each."""

    def progress(items):
        for item in items:
            yield item
            bar.update(1)

    return progress


@click.command("gc")
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    help="Keep unreferenced bytes younger than this (uploads in flight): 30m, 1h, 2d, ...",
)
@click.option(
    "--trash-days",
    type=click.IntRange(min=0),
    help="Purge images in the trash this many days or longer (default: IMAGE_REPO_TRASH_DAYS; "
    "0 empties every tenant's trash).",
)
@JSON_OPTION
@with_appcontext
@needs_database
def gc_command(grace: str, trash_days: int | None, as_json: bool) -> None:
    """Purge images whose time in the trash is over, then remove bytes (and
    renditions) that no image refers to."""
    period = parse_duration(grace)
    if trash_days is None:
        trash_days = _app().config["TRASH_DAYS"]
    with _session() as session:
        purged = trash.purge_expired(session, days=trash_days)
        report = maintenance.collect_garbage(session, _store(), grace=period)
    payload = {
        "trash_purged": purged,
        "originals_removed": len(report.originals_removed),
        "renditions_removed": report.renditions_removed,
        "kept_young": report.kept_young,
        "temp_removed": report.temp_removed,
    }
    text = (
        f"purged {counted(purged, 'image')} from the trash (there {trash_days} days or more); "
        f"removed {counted(payload['originals_removed'], 'original')} and "
        f"{counted(report.renditions_removed, 'rendition')}; "
        f"kept {report.kept_young} younger than {grace}"
    )
    _emit(as_json, payload, text)


@click.command("fsck")
@JSON_OPTION
@with_appcontext
@needs_database
def fsck_command(as_json: bool) -> None:
    """Check that every image has its bytes with the right hash; list orphaned bytes.

    Exits 1 when an image's bytes are missing or corrupt.
    """
    with _session() as session:
        rows = maintenance.image_rows(session)
        with click.progressbar(
            length=len(rows), label="checking", file=sys.stderr, hidden=as_json
        ) as bar:
            report = maintenance.fsck(session, _store(), rows, progress=_ticking(bar))
    payload = {
        "checked": report.checked,
        "missing": report.missing,
        "corrupt": report.corrupt,
        "orphans": report.orphans,
        "ok": report.ok,
    }
    _emit(as_json, payload, fsck_text(report, dict(rows)))
    if not report.ok:
        sys.exit(1)


def fsck_text(report: maintenance.FsckReport, sha_of: dict[str, str]) -> str:
    """The summary, then each damaged image and what is wrong with it, and the orphans."""
    lines = [
        f"checked {counted(report.checked, 'image')}: {len(report.missing)} missing, "
        f"{len(report.corrupt)} corrupt, {counted(len(report.orphans), 'orphaned blob')}"
    ]
    lines += [
        f"{image_id}: its bytes are missing (sha256 {sha_of[image_id]})"
        for image_id in report.missing
    ]
    lines += [
        f"{image_id}: its bytes are corrupt (they no longer hash to sha256 {sha_of[image_id]})"
        for image_id in report.corrupt
    ]
    lines += [
        f"orphaned blob {sha}: no image refers to it (`image-repo gc` removes it)"
        for sha in report.orphans
    ]
    return "\n".join(lines)


@click.command("previews")
@JSON_OPTION
@with_appcontext
@needs_database
def previews_command(as_json: bool) -> None:
    """Make the previews that large JPEGs lack (uploaded before previews, or with them off).

    Exits 1 when an original is missing or refused by a decode now (run fsck).
    """
    with _session() as session:
        hashes = maintenance.preview_candidates(session)
    with click.progressbar(
        length=len(hashes), label="previews", file=sys.stderr, hidden=as_json
    ) as bar:
        config = _app().config
        report = maintenance.make_previews(
            _store(),
            hashes,
            max_pixels=config["MAX_PIXELS"],
            limits=DecodeLimits.from_config(config),
            progress=_ticking(bar),
        )
    payload = {
        "made": report.made,
        "present": report.present,
        "skipped": report.skipped,
        "missing": report.missing,
        "failed": report.failed,
    }
    text = (
        f"made {counted(report.made, 'preview')}, {report.present} already there, "
        f"{report.skipped} not needed; {counted(len(report.missing), 'original')} missing, "
        f"{len(report.failed)} refused by a decode now (corrupt, or over "
        "IMAGE_REPO_MAX_PIXELS or a decode limit)"
    )
    _emit(as_json, payload, text)
    if report.missing or report.failed:
        sys.exit(1)


# --- faces ---------------------------------------------------------------------

faces_cli = AppGroup(
    "faces", help="Faces and people (needs IMAGE_REPO_FACES and the tenant's switch)."
)


@faces_cli.command("analyze")
@click.option("--tenant", "tenant_name", required=True, help="Tenant name.")
@JSON_OPTION
@needs_database
def faces_analyze(tenant_name: str, as_json: bool) -> None:
    """Find the faces of the tenant's images that have none recorded, here and now."""
    from image_repo.domain import faces as face_domain

    config = _app().config
    with _session() as session:
        tenant = tenancy.get_tenant(session, name=tenant_name)
        tenant_id, on = tenant.id, face_domain.analysis_on(config["FACES"], tenant)
        pending = face_domain.unanalysed_images(session, tenant_id) if on else []
    if not on:
        raise click.ClickException(
            "face analysis is off for this tenant: it needs IMAGE_REPO_FACES=true and "
            f"`image-repo tenants update {tenant_name} --faces on`"
        )
    found = 0
    with click.progressbar(pending, label="faces", file=sys.stderr, hidden=as_json) as bar:
        for image_id in bar:
            # One image per transaction: what is done stays done if a later one fails.
            with _session() as session:
                found += face_domain.analyse_image(
                    session,
                    _store(),
                    tenant_id,
                    image_id,
                    operator_setting=config["FACES"],
                    limits=DecodeLimits.from_config(config),
                ).faces
                # A "faces" job already queued for the image then has nothing to do.
                face_domain.mark_done(session, image_id)
    payload = {"images": len(pending), "faces": found}
    _emit(as_json, payload, f"analysed {counted(len(pending), 'image')}: {counted(found, 'face')}")


@faces_cli.command("regroup")
@click.option("--tenant", "tenant_name", required=True, help="Tenant name.")
@JSON_OPTION
@needs_database
def faces_regroup(tenant_name: str, as_json: bool) -> None:
    """Re-cluster all of the tenant's faces into people (names and hidden flags are kept)."""
    from image_repo.domain import people as people_domain

    with _session() as session:
        tenant = tenancy.get_tenant(session, name=tenant_name)
        groups = people_domain.regroup(session, tenant.id)
    _emit(as_json, {"people": groups}, f"{counted(groups, 'person', 'people')}")


# --- secrets -----------------------------------------------------------------

secrets_cli = AppGroup("secrets", help="Server-side secrets.")


@secrets_cli.command("rotate-url-key")
@needs_database
def secrets_rotate_url_key() -> None:
    """Replace the secret that signs image URLs: every signed URL handed out stops working."""
    with _session() as session:
        signing.rotate_secret(session)
    click.echo("URL signing secret rotated: URLs signed before no longer work")


# --- discover -----------------------------------------------------------------


@click.command("discover")
@click.option("--timeout", default=3.0, show_default=True, help="Seconds to listen.")
@click.option(
    "--host",
    default="0.0.0.0",  # noqa: S104 - where to listen for answers, every interface
    show_default=True,
    help="Listen on this interface's address (127.0.0.1: this machine only).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def discover_command(timeout: float, host: str, as_json: bool) -> None:
    """List the Image Repo instances advertising themselves on the local network."""
    found = discovery.discover(timeout=timeout, host=host)
    lines = [f"{i['name']}  {i['url']}  (version {i['version']})" for i in found]
    _emit(as_json, {"instances": found}, "\n".join(lines) or "no instance heard")


# --- background jobs ------------------------------------------------------------


def _start_jobs(app: Flask) -> None:
    """``serve`` on the embedded queue runs its jobs itself, in threads."""
    services = services_of(app)
    if not queue.is_embedded(app.config):
        click.echo("Jobs queue in Redis: run `image-repo worker` to process them.")
        return
    threads = app.config["QUEUE_THREADS"]
    if consumer.start_embedded(services, threads) is not None:
        click.echo(f"Running queued jobs in {counted(threads, 'thread')}.")


@click.command("worker")
@click.option(
    "--threads",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Jobs run at once by this process.",
)
@with_appcontext
@needs_database
def worker_command(threads: int) -> None:
    """Run queued jobs (previews, ...) until stopped.

    Run as many as you like, on any machine that reaches the database, the
    blob store and the queue (IMAGE_REPO_QUEUE_URL or IMAGE_REPO_REDIS_URL;
    on the embedded default the queue is a file in the data folder). Ctrl-C
    finishes the jobs in hand; SIGTERM stops at once (those jobs run again).
    """
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    services = services_of(_app())
    click.echo(f"image-repo worker: {counted(threads, 'thread')} on {_queue_shown(_app())}")
    consumer.run_worker(services, threads)


def _queue_shown(app: Flask) -> str:
    url = queue.queue_url(app.config)
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    return re.sub(r"//[^@/]*@", "//***@", url)  # no password in the output


@click.command("analyze")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Queue every analysis of every image again (default: --missing).",
)
@click.option(
    "--missing",
    is_flag=True,
    help="Queue only what images lack, or what failed (the default).",
)
@JSON_OPTION
@with_appcontext
@needs_database
def analyze_command(everything: bool, missing: bool, as_json: bool) -> None:
    """Queue background analyses (previews, ...) for images already stored."""
    if everything and missing:
        raise click.UsageError("--all and --missing exclude each other.")
    services = current_services()
    with _session() as session:
        total = len(analyses.library_ids(session, limit=None))
    images_seen = queued = 0
    by_kind: dict[str, int] = {}
    after = None
    with click.progressbar(length=total, label="analyze", file=sys.stderr, hidden=as_json) as bar:
        while True:
            with _session() as session:
                ids = analyses.library_ids(session, after=after)
                for image_id in ids:
                    image = session.get(Image, image_id)
                    kinds = analyses.reanalyse(session, services, image, everything=everything)
                    for kind in kinds:
                        by_kind[kind] = by_kind.get(kind, 0) + 1
                    queued += len(kinds)
                # Committed here: the after-commit hook queues this batch.
            if not ids:
                break
            images_seen += len(ids)
            after = ids[-1]
            bar.update(len(ids))
    payload = {"images": images_seen, "queued": queued, "by_kind": by_kind}
    kinds_text = ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items())) or "nothing"
    text = f"looked at {counted(images_seen, 'image')}; queued {kinds_text}"
    _emit(as_json, payload, text)


def register_commands(app: Flask) -> None:
    for command in (
        serve,
        db_cli,
        tenants_cli,
        keys_cli,
        gc_command,
        fsck_command,
        previews_command,
        faces_cli,
        secrets_cli,
        discover_command,
        worker_command,
        analyze_command,
    ):
        app.cli.add_command(command)
