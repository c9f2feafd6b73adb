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

from image_repo.cli import JSON_OPTION, needs_database
from image_repo.cli.wording import counted
from image_repo.domain.errors import DomainError
from image_repo.http.context import current_services
from image_repo.imaging.limits import DecodeLimits
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


def register_transfer_commands(app: Flask) -> None:
    for command in (export_command, import_archive_command):
        app.cli.add_command(command)
