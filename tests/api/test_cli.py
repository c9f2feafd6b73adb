import socket
import subprocess
import sys
from importlib import metadata

import pytest
from sqlalchemy import create_engine, inspect

from image_repo import create_app
from image_repo.cli import serve
from image_repo.client.importer import FileResult, ImportReport, format_summary, import_command
from image_repo.http.context import services_of
from tests.conftest import needs_postgres, postgres_schema
from tests.support.live_server import cli_run


def test_python_m_image_repo_lists_commands():
    result = subprocess.run(
        [sys.executable, "-m", "image_repo", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for command in ("serve", "openapi"):
        assert command in result.stdout


def test_serve_has_host_and_port_options(runner):
    result = runner.invoke(args=["serve", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "--port" in result.output


# -- the program's own version, commands and options -------------------------------


def test_version_is_the_package_version(tmp_path):
    result = cli_run({"IMAGE_REPO_DATA_DIR": str(tmp_path)}, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"image-repo {metadata.version('image-repo')}\n"


def test_help_lists_only_this_programs_commands_and_options(tmp_path):
    result = cli_run({"IMAGE_REPO_DATA_DIR": str(tmp_path)}, "--help")
    assert result.returncode == 0, result.stderr
    head, _, commands = result.stdout.partition("Commands:")
    listed = {line.split()[0] for line in commands.splitlines() if line.strip()}
    assert listed == {
        "db", "fsck", "gc", "import", "keys", "openapi", "previews", "routes", "secrets", "serve",
        "tenants", "discover", "worker", "analyze", "export", "import-archive", "migrate",
        "faces",
    }  # fmt: skip
    # Flask's own options are not this program's.
    for option in ("--app", "--env-file", "--debug", "Flask"):
        assert option not in head
    assert not list(tmp_path.iterdir())


def test_import_help_gives_the_port_serve_listens_on():
    port = next(p.default for p in serve.params if p.name == "port")
    help_text = next(p.help for p in import_command.params if p.name == "url")
    assert f"http://127.0.0.1:{port}" in help_text and "8000" not in help_text


# -- commands that need a database, on a folder or database that has none -------------

NEED_A_DATABASE = [
    ["gc"],
    ["fsck"],
    ["fsck", "--json"],
    ["previews"],
    ["tenants", "list"],
    ["tenants", "create", "acme", "--json"],
    ["keys", "list", "--tenant", "acme"],
    ["keys", "create", "--tenant", "acme", "--group", "reader"],
    ["keys", "revoke", "key_aaaaaaaaaaaaaaaaaaaa"],
]


@pytest.mark.parametrize("args", NEED_A_DATABASE, ids=" ".join)
def test_commands_on_a_data_folder_without_database_say_what_to_run(tmp_path, args):
    data = tmp_path / "data"
    app = create_app({"DATA_DIR": data, "DATABASE_URL": None, "REDIS_URL": None})
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    message = result.stderr
    assert str(data) in message and str(data / "image-repo.db") in message
    assert "image-repo db upgrade" in message and "image-repo serve" in message
    assert len(message.splitlines()) == 1
    assert not data.exists()  # nothing created: no folder, no database


def test_a_command_without_database_prints_one_line_and_creates_nothing(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    result = cli_run({"IMAGE_REPO_DATA_DIR": str(data)}, "gc")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert str(data / "image-repo.db") in result.stderr
    assert list(data.iterdir()) == []
    # Once migrated, the same command works.
    assert cli_run({"IMAGE_REPO_DATA_DIR": str(data)}, "db", "upgrade").returncode == 0
    assert cli_run({"IMAGE_REPO_DATA_DIR": str(data)}, "gc").returncode == 0


def test_an_empty_sqlite_file_is_named_as_not_migrated(tmp_path):
    database = tmp_path / "image-repo.db"
    database.write_bytes(b"")  # what such a command used to leave behind
    app = create_app({"DATA_DIR": tmp_path, "DATABASE_URL": None, "REDIS_URL": None})
    result = app.test_cli_runner().invoke(args=["tenants", "list"])
    assert result.exit_code == 2
    assert str(database) in result.stderr and "image-repo db upgrade" in result.stderr
    assert "no Image Repo tables" in result.stderr


@needs_postgres
@pytest.mark.parametrize("args", [["gc"], ["tenants", "list"]], ids=" ".join)
def test_a_reachable_postgresql_database_that_is_not_migrated(tmp_path, args):
    with postgres_schema("unmigrated") as url:
        app = create_app({"DATA_DIR": tmp_path / "data", "DATABASE_URL": url, "REDIS_URL": None})
        result = app.test_cli_runner().invoke(args=args)
        services_of(app).engine.dispose()
        assert result.exit_code == 2, result.output
        assert "no Image Repo tables" in result.stderr
        assert "image-repo db upgrade" in result.stderr
        assert "postgresql" in result.stderr
        engine = create_engine(url)
        try:
            assert inspect(engine).get_table_names() == []  # nothing created
        finally:
            engine.dispose()


# -- serve on a taken port ------------------------------------------------------------


def test_serve_on_a_taken_port_says_so_and_how_to_pick_another(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli_run(
            {"IMAGE_REPO_DATA_DIR": str(tmp_path / "data")}, "serve", "--port", str(port)
        )
    assert result.returncode != 0
    assert "Image Repo on" not in result.stdout  # no announcement of a server that is not
    assert "Traceback" not in result.stderr
    assert f"port {port}" in result.stderr and "taken" in result.stderr
    assert "--port" in result.stderr


# -- counts in words --------------------------------------------------------------------


def test_import_summary_counts_in_the_right_number():
    one = ImportReport(files=1)
    one.add(FileResult("a.jpg", "duplicate", 200))
    assert format_summary(one).splitlines()[0] == (
        "1 file: 0 imported, 1 duplicate, 0 rejected, 0 failed"
    )
    two = ImportReport(files=2)
    two.add(FileResult("a.jpg", "imported", 201))
    two.add(FileResult("b.jpg", "imported", 201))
    assert format_summary(two).splitlines()[0] == (
        "2 files: 2 imported, 0 duplicates, 0 rejected, 0 failed"
    )
