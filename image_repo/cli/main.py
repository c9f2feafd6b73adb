"""The ``image-repo`` program (also ``python -m image_repo``): Flask's command
group around ``create_app``, with the commands of ``image_repo.cli`` (which
the app registers) and the bulk importer, which needs no app."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup, FlaskGroup, routes_command

from image_repo.client.importer import import_command
from image_repo.config import ConfigError
from image_repo.http.app import create_app


def _make_app() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:
        # One line naming what to fix, not a traceback.
        click.echo(f"image-repo: {exc}", err=True)
        sys.exit(2)


class ImageRepoGroup(FlaskGroup):
    """Flask's command group, with this program's commands and options only.

    FlaskGroup builds the app with ``create_app`` and runs the commands the
    app registers in its context. What it adds for Flask projects in general
    does not apply here and is left out: its ``--app``, ``--env-file`` and
    ``--debug`` options and ``--version`` (Flask's), its ``run`` and ``shell``
    commands (``serve`` is ours) and the commands installed packages plug in.
    Flask's ``routes`` stays.
    """

    def __init__(self, **extra) -> None:
        super().__init__(
            add_default_commands=False,
            add_version_option=False,
            load_dotenv=False,
            set_debug_flag=False,
            **extra,
        )
        self.params = [p for p in self.params if p.name not in FLASK_OPTIONS]
        self.context_settings.pop("auto_envvar_prefix", None)  # no FLASK_* option values
        self._loaded_plugin_commands = True  # skip the flask.commands entry points
        self.add_command(routes_command)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # FlaskGroup's own looks for --app and --env-file first; there are none.
        return AppGroup.parse_args(self, ctx, args)


FLASK_OPTIONS = frozenset({"env_file", "app", "debug"})


@click.group(cls=ImageRepoGroup, create_app=_make_app)
@click.version_option(
    package_name="image-repo",
    prog_name="image-repo",
    message="%(prog)s %(version)s",
    help="Show the version and exit.",
)
def cli() -> None:
    """Image Repo: a self-hostable image repository."""


# On the top-level group, not app.cli: it is an HTTP client of a running
# server and needs no app, so a local config error does not stop it.
cli.add_command(import_command)


def main() -> None:
    cli(prog_name="image-repo")
