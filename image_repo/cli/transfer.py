"""``image-repo export``, ``import-archive`` and ``migrate``: data in and out of an instance.

The work is in ``image_repo.transfer``; these commands give it the app's
database, blob store and upload settings, a progress bar on stderr (none
with ``--json``, which prints one summary object) and exit codes: 0 done,
1 done with files left out (listed), 2 nothing usable (the message says why).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from image_repo.cli import JSON_OPTION, needs_database
from image_repo.cli.wording import counted
from image_repo.db.engine import make_engine
from image_repo.domain.errors import DomainError
from image_repo.http.context import current_services
from image_repo.imaging.limits import DecodeLimits
from image_repo.storage import StorageError
from image_repo.transfer import migrate as migration
from image_repo.transfer.archive_format import ArchiveError
from image_repo.transfer.export import export_tenant
from image_repo.transfer.import_archive import UploadRules, import_archive


class _Bar:
    """A click progress bar over bytes, opened when the total is known."""

    def __init__(self, stack: ExitStack, label: str, hidden: bool) -> None:
        self.stack, self.label, self.hidden = stack, label, hidden
        self.bar = None

    def start(self, files: int, size: int) -> None:
        self.bar = self.stack.enter_context(
            click.progressbar(
                length=max(size, 1),
                label=f"{self.label} {counted(files, 'file')}",
                file=sys.stderr,
                hidden=self.hidden,
            )
        )

    def step(self, size: int) -> None:
        if self.bar is not None:
            self.bar.update(size)


def _fail(message: str) -> None:
    click.echo(f"image-repo: {message}", err=True)
    sys.exit(2)


@click.command("export")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@JSON_OPTION
@with_appcontext
@needs_database
def export_command(name: str, file: Path, as_json: bool) -> None:
    """Write tenant NAME's images, albums and originals to FILE (a tar archive).

    Images in the trash are included, marked with when they went there.
    API keys are never exported.
    """
    services = current_services()
    partial = file.with_name(file.name + ".partial")
    try:
        with ExitStack() as stack, services.sessions() as session:
            out = stack.enter_context(partial.open("wb"))
            bar = _Bar(stack, "exporting", as_json)
            summary = export_tenant(
                session, services.blob_store, name, out, on_start=bar.start, on_file=bar.step
            )
        # Only a complete archive gets the name asked for.
        os.replace(partial, file)
    except (ArchiveError, DomainError, OSError) as exc:
        partial.unlink(missing_ok=True)
        _fail(f"export of {name!r} failed: {getattr(exc, 'message', exc)}")
    payload = {**summary.as_dict(), "file": str(file)}
    text = (
        f"exported {counted(summary.images, 'image')} ({summary.trashed} in the trash), "
        f"{counted(summary.albums, 'album')} and {counted(summary.files, 'original')} "
        f"({summary.bytes} bytes) of {summary.tenant} to {file}"
    )
    click.echo(json.dumps(payload) if as_json else text)


def upload_rules(app: Flask) -> UploadRules:
    config = app.config
    return UploadRules(
        max_bytes=config["MAX_UPLOAD_BYTES"],
        max_pixels=config["MAX_PIXELS"],
        make_preview=config["RENDITION_PREVIEWS"],
        limits=DecodeLimits.from_config(config),
    )


@click.command("import-archive")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--tenant", "tenant_name", help="Import into this tenant (default: the archived name)."
)
@JSON_OPTION
@with_appcontext
@needs_database
def import_archive_command(file: Path, tenant_name: str | None, as_json: bool) -> None:
    """Read an archive made by `image-repo export` into this instance.

    The tenant is created when missing. Every original is checked against its
    SHA-256 and validated as an upload; images the tenant has already are
    skipped, so an interrupted import finishes when run again. Exits 1 when
    some files were left out (listed), 2 when the archive is unusable.
    """
    services = current_services()
    try:
        with ExitStack() as stack:
            archive = stack.enter_context(file.open("rb"))
            bar = _Bar(stack, "importing", as_json)
            summary = import_archive(
                services.sessions,
                services.blob_store,
                archive,
                rules=upload_rules(current_app),
                tenant_name=tenant_name,
                on_start=bar.start,
                on_file=bar.step,
            )
    except (ArchiveError, DomainError) as exc:
        _fail(f"cannot import {file}: {getattr(exc, 'message', exc)}")
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
    else:
        lines = [
            f"{summary.tenant}{' (created)' if summary.tenant_created else ''}: "
            f"imported {counted(summary.images_imported, 'image')}, "
            f"{summary.images_skipped} already there; "
            f"{counted(summary.albums_created, 'album')} created, "
            f"{counted(summary.memberships_added, 'album membership')} added"
        ]
        lines += [f"left out {item['member']}: {item['reason']}" for item in summary.failed]
        if summary.tenant_created:
            lines.append(
                f"the tenant has no API key yet: `image-repo keys create --tenant "
                f"{summary.tenant} --group admin`"
            )
        click.echo("\n".join(lines))
    if not summary.ok:
        sys.exit(1)


@click.command("migrate")
@click.option(
    "--to-database",
    "database_url",
    required=True,
    help="Target database URL, e.g. postgresql+psycopg://user:pw@host/imagerepo.",
)
@click.option(
    "--to-store",
    "store_spec",
    required=True,
    help="Target store: a data folder (its blobs/ is used) or s3://bucket/prefix.",
)
@click.option("--to-s3-endpoint-url", help="S3 endpoint of the target (MinIO, R2, ...).")
@click.option("--to-s3-region", help="S3 region of the target.")
@click.option(
    "--to-s3-addressing-style", type=click.Choice(["path", "virtual", "auto"]), help="S3 style."
)
@click.option(
    "--include-renditions", is_flag=True, help="Copy cached renditions too (else made on demand)."
)
@JSON_OPTION
@with_appcontext
@needs_database
def migrate_command(
    database_url: str,
    store_spec: str,
    to_s3_endpoint_url: str | None,
    to_s3_region: str | None,
    to_s3_addressing_style: str | None,
    include_renditions: bool,
    as_json: bool,
) -> None:
    """Copy this whole instance (every table, originals, previews) to another
    database and store; safe to interrupt and run again (what is there is
    skipped). Ends with a check of the target; exits 1 if it fails.

    Stop writes to this instance first (see the README's production guide).
    Target S3 credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
    (or the instance role).
    """
    services = current_services()
    if make_url(database_url) == services.engine.url:
        _fail("the target database is this instance's own")
    try:
        store = migration.target_store(
            store_spec,
            endpoint_url=to_s3_endpoint_url,
            region=to_s3_region,
            addressing_style=to_s3_addressing_style,
        )
    except (ValueError, StorageError) as exc:
        _fail(f"cannot use the target store {store_spec}: {exc}")
    target = make_engine(database_url)
    try:
        report = _migrate(services, target, store, include_renditions, as_json)
    except (SQLAlchemyError, StorageError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        _fail(f"migration stopped (run it again to go on from here): {reason}")
    finally:
        target.dispose()
    payload = report.as_dict()
    if as_json:
        click.echo(json.dumps(payload))
    else:
        check = report.check
        lines = [
            f"copied {counted(report.rows_copied, 'row')} and {counted(report.blobs_copied, 'blob')} "
            f"({report.bytes_copied} bytes); {report.blobs_present} blobs were there already",
            f"target check: {counted(check.checked, 'image')}, {len(check.missing)} missing, "
            f"{len(check.corrupt)} corrupt; row counts "
            + ("match" if report.counts_match else "DIFFER"),
        ]
        lines += [f"damaged in the source, not copied: {key}" for key in report.blobs_corrupt]
        lines += [
            f"{name}: {t.rows} rows here, {t.target_rows} in the target"
            for name, t in report.tables.items()
            if t.rows != t.target_rows
        ]
        click.echo("\n".join(lines))
    if not report.ok:
        sys.exit(1)


def _migrate(services, target, store, include_renditions: bool, as_json: bool):
    migration.prepare_target(target)
    source_counts = migration.count_rows(services.engine)
    report = migration.MigrationReport()
    with click.progressbar(
        length=max(sum(source_counts.values()), 1), label="rows", file=sys.stderr, hidden=as_json
    ) as bar:
        report.tables = migration.copy_tables(services.engine, target, on_rows=bar.update)
    keys = migration.blob_keys(services.blob_store, include_renditions=include_renditions)
    with click.progressbar(
        length=max(len(keys), 1), label="blobs", file=sys.stderr, hidden=as_json
    ) as bar:
        migration.copy_blobs(
            services.blob_store, store, keys, report, on_blob=lambda: bar.update(1)
        )
    with Session(target) as session:
        rows = migration.count_rows(target)
        with click.progressbar(
            length=max(rows.get("images", 0), 1), label="checking", file=sys.stderr, hidden=as_json
        ) as bar:
            migration.check_target(session, store, report, rows, progress=_ticking(bar))
    return report


def _ticking(bar):
    def progress(items):
        for item in items:
            yield item
            bar.update(1)

    return progress


def register_transfer_commands(app: Flask) -> None:
    for command in (export_command, import_archive_command, migrate_command):
        app.cli.add_command(command)
