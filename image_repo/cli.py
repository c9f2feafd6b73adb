"""The ``image-repo`` command line (also ``python -m image_repo``).

Built on Flask's CLI: every command runs with an application made by
``create_app`` from the environment, and commands that extensions register
(``openapi write``) come along. ``register_commands`` puts ours on each app,
so Flask's test runner sees them too.
"""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from .config import ConfigError


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@with_appcontext
def serve(host: str, port: int) -> None:
    """Run the development server (use gunicorn in production)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    click.echo(f"Image Repo on http://{host}:{port}/ (API docs at /docs)")
    app.run(host=host, port=port, debug=False, load_dotenv=False)


def register_commands(app: Flask) -> None:
    app.cli.add_command(serve)


def _make_app() -> Flask:
    from .app_factory import create_app

    try:
        return create_app()
    except ConfigError as exc:
        # One line naming what to fix, not a traceback.
        click.echo(f"image-repo: {exc}", err=True)
        sys.exit(2)


@click.group(cls=FlaskGroup, create_app=_make_app, load_dotenv=False, set_debug_flag=False)
def cli() -> None:
    """Image Repo: a self-hostable image repository."""


def main() -> None:
    cli(prog_name="image-repo")
