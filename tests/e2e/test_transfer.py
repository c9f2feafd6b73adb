"""Tenant export and import between instances: SQLite + a folder out, PostgreSQL
(or SQLite) + S3 in, through the real commands; hostile and interrupted imports."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, func, select

from image_repo.db.models import Image
from image_repo.http.context import services_of
from tests.conftest import create_tenant, make_app, needs_postgres, postgres_schema
from tests.support.live_server import REPO_ROOT
from tests.support.s3_server import (
    CREDENTIALS,
    REGION,
    new_bucket,
    raw_client,
)
from tests.support.transfer import FILES, rewrite, seed, snapshot


def local_config(tmp_path, name: str) -> dict:
    return {
        "TESTING": True,
        "ENV": "development",
        "DATA_DIR": tmp_path / name,
        "DATABASE_URL": f"sqlite:///{tmp_path / name}.db",
        "REDIS_URL": None,
    }


def s3_settings(endpoint: str) -> dict:
    return {
        "S3_BUCKET": new_bucket(raw_client(endpoint)),
        "S3_PREFIX": "moved/",
        "S3_ENDPOINT_URL": endpoint,
        "S3_REGION": REGION,
        "S3_ACCESS_KEY_ID": CREDENTIALS["access_key_id"],
        "S3_SECRET_ACCESS_KEY": CREDENTIALS["secret_access_key"],
    }


@contextmanager
def target_database(kind: str, tmp_path):
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'target.db'}"
        return
    with postgres_schema("transfer") as url:
        yield url


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tenant seeded on SQLite + a folder, exported once: (archive path, snapshot)."""
    tmp_path = tmp_path_factory.mktemp("source")
    app = make_app(local_config(tmp_path, "source"))
    tenant = create_tenant(app, "acme")
    client = app.test_client()
    seed(client, tenant.headers())
    archive = tmp_path / "acme.tar"
    result = app.test_cli_runner().invoke(args=["export", "acme", str(archive), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary == {
        "tenant": "acme",
        "images": len(FILES),
        "trashed": 1,
        "albums": 2,
        "files": len(FILES),
        "bytes": summary["bytes"],
        "file": str(archive),
    }
    return archive, snapshot(client, tenant.headers())


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def key_headers(app, tenant: str) -> dict:
    result = run(app, "keys", "create", "--tenant", tenant, "--group", "admin", "--json")
    assert result.exit_code == 0, result.output
    return {"Authorization": f"Bearer {json.loads(result.output)['api_key']}"}


def test_the_archive_holds_no_secret_and_every_hash(exported):
    archive, before = exported
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))
        images = json.load(tar.extractfile("images.json"))["images"]
        everything = b"".join(tar.extractfile(m).read() for m in tar.getmembers())
    assert names[:3] == ["manifest.json", "images.json", "albums.json"]
    originals = sorted(n.removeprefix("originals/") for n in names[3:])
    assert len(originals) == len(FILES) and set(before["served"]) < set(originals)
    assert {m["name"] for m in manifest["members"]} == set(names[1:])
    assert sum(1 for image in images if image["trashed_at"]) == 1
    assert b"secret" not in everything and b"key_" not in everything


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def test_round_trip_to_s3_lists_the_same(exported, s3_endpoint, tmp_path, database):
    archive, before = exported
    with target_database(database, tmp_path) as url:
        app = make_app(
            {**local_config(tmp_path, "target"), "DATABASE_URL": url, **s3_settings(s3_endpoint)}
        )
        result = run(app, "import-archive", str(archive), "--tenant", "copy", "--json")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output)
        assert summary["tenant_created"] and summary["ok"]
        assert (summary["images_imported"], summary["images_skipped"]) == (len(FILES), 0)
        assert (summary["albums_created"], summary["memberships_added"]) == (2, 3)
        headers = key_headers(app, "copy")
        after = snapshot(app.test_client(), headers)
        assert after == before
        assert not (tmp_path / "target" / "blobs").exists()  # the bytes went to S3

        again = run(app, "import-archive", str(archive), "--tenant", "copy", "--json")
        assert again.exit_code == 0, again.output
        summary = json.loads(again.output)
        assert (summary["images_imported"], summary["images_skipped"]) == (0, len(FILES))
        assert (summary["albums_created"], summary["memberships_added"]) == (0, 0)
        assert snapshot(app.test_client(), headers) == before
        services_of(app).engine.dispose()


@pytest.fixture
def target(tmp_path):
    app = make_app(local_config(tmp_path, "target"))
    yield app
    services_of(app).engine.dispose()


def image_count(app) -> int:
    with services_of(app).sessions() as session:
        return session.scalar(select(func.count(Image.id)))


def _originals(info) -> bool:
    return info.name.startswith("originals/")


HOSTILE = {
    "bad json": (
        lambda info, data: [(info, b"{not json" if info.name == "images.json" else data)],
        "images.json does not match its SHA-256",
    ),
    "path traversal": (
        lambda info, data: (
            [(info, data)]
            + ([(tarfile.TarInfo("../../etc/evil"), b"x")] if info.name == "albums.json" else [])
        ),
        "unexpected member '../../etc/evil'",
    ),
    "symlink": (
        lambda info, data: [(_symlink(info), b"") if _originals(info) else (info, data)],
        "is not a regular file",
    ),
    "member twice": (
        lambda info, data: [(info, data)] * (2 if _originals(info) else 1),
        "holds originals/",
    ),
}


def _symlink(info):
    link = tarfile.TarInfo(info.name)
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return link


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_clearly(exported, target, tmp_path, case):
    archive, _ = exported
    change, message = HOSTILE[case]
    hostile = tmp_path / "hostile.tar"
    rewrite(archive, hostile, change)
    result = run(target, "import-archive", str(hostile))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert image_count(target) <= (1 if case == "member twice" else 0)


def test_json_that_is_not_json_is_refused_before_anything_is_written(target, tmp_path, exported):
    archive, _ = exported

    def change(info, data):
        if info.name == "manifest.json":
            return [(info, b"[1, 2")]
        return [(info, data)]

    hostile = tmp_path / "hostile.tar"
    rewrite(archive, hostile, change)
    result = run(target, "import-archive", str(hostile))
    assert result.exit_code == 2
    assert "manifest.json is not valid JSON" in result.output
    not_a_tar = tmp_path / "not.tar"
    not_a_tar.write_bytes(b"\x89PNG not a tar at all" * 100)
    result = run(target, "import-archive", str(not_a_tar))
    assert result.exit_code == 2 and "not a tar archive" in result.output
    assert image_count(target) == 0
    assert run(target, "tenants", "list", "--json").output.count('"name"') == 0


def test_a_damaged_original_is_left_out_alone(exported, target, tmp_path):
    archive, before = exported
    damaged_sha = sorted(before["served"])[0]

    def change(info, data):
        if info.name == f"originals/{damaged_sha}":
            data = data[:-1] + bytes([data[-1] ^ 1])
        return [(info, data)]

    damaged = tmp_path / "damaged.tar"
    rewrite(archive, damaged, change)
    result = run(target, "import-archive", str(damaged), "--json")
    assert result.exit_code == 1, result.output
    summary = json.loads(result.output)
    assert summary["failed"] == [
        {
            "member": f"originals/{damaged_sha}",
            "reason": f"its bytes do not match its SHA-256 {damaged_sha} (damaged)",
        }
    ]
    assert summary["images_imported"] == len(FILES) - 1
    # The good archive finishes the job.
    result = run(target, "import-archive", str(archive), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["images_imported"], summary["images_skipped"]) == (1, len(FILES) - 1)
    assert snapshot(target.test_client(), key_headers(target, "acme")) == before


def test_an_oversized_original_is_refused_without_reading_it(exported, tmp_path):
    archive, _ = exported
    app = make_app({**local_config(tmp_path, "small"), "MAX_UPLOAD_BYTES": 10_000})
    result = run(app, "import-archive", str(archive), "--json")
    assert result.exit_code == 1
    summary = json.loads(result.output)
    assert summary["failed"] and all(
        "more than this instance accepts" in item["reason"] for item in summary["failed"]
    )
    assert summary["images_imported"] == len(FILES) - len(summary["failed"])


def _end_of_original(archive, count: int) -> int:
    """Byte offset just past the ``count``-th original's data (padded to a block)."""
    with tarfile.open(archive) as tar:
        member = [m for m in tar.getmembers() if _originals(m)][count - 1]
    return -(-(member.offset_data + member.size) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def test_an_archive_cut_short_keeps_what_it_imported_and_a_rerun_finishes(
    exported, target, tmp_path
):
    archive, before = exported
    cut = tmp_path / "cut.tar"
    # In the middle of the third original's bytes (past its 512-byte header).
    cut.write_bytes(archive.read_bytes()[: _end_of_original(archive, 2) + 600])
    result = run(target, "import-archive", str(cut))
    assert result.exit_code == 2
    assert "damaged or cut short" in result.output
    assert image_count(target) == 2
    # Cut between two members: tar cannot tell, the manifest can.
    cut.write_bytes(archive.read_bytes()[: _end_of_original(archive, 3)])
    result = run(target, "import-archive", str(cut), "--json")
    assert result.exit_code == 1
    missing = json.loads(result.output)["failed"]
    assert len(missing) == len(FILES) - 3
    assert {item["reason"] for item in missing} == {"missing from the archive"}
    assert image_count(target) == 3
    result = run(target, "import-archive", str(archive), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["images_imported"], summary["images_skipped"]) == (len(FILES) - 3, 3)
    assert snapshot(target.test_client(), key_headers(target, "acme")) == before


def test_an_import_killed_midway_finishes_when_run_again(exported, tmp_path):
    """A real interruption: the importer reads through a pipe, is killed (SIGKILL)
    after its third image is committed, and a second run completes."""
    archive, before = exported
    config = local_config(tmp_path, "killed")
    app = make_app(config)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMAGE_REPO_")},
        "IMAGE_REPO_DATA_DIR": str(config["DATA_DIR"]),
        "IMAGE_REPO_DATABASE_URL": config["DATABASE_URL"],
    }
    fifo = tmp_path / "archive.pipe"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "image_repo", "import-archive", str(fifo)],
        env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    data = archive.read_bytes()
    first = data[: _end_of_original(archive, 3)]
    # The importer takes the first three originals, then waits for more bytes.
    writer = threading.Thread(target=_write_and_hold, args=(fifo, first, proc))
    writer.start()
    engine = create_engine(config["DATABASE_URL"])
    try:
        _wait_for_images(engine, 3, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        writer.join(timeout=30)
        engine.dispose()
    assert image_count(app) == 3
    result = run(app, "import-archive", str(archive), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["images_imported"], summary["images_skipped"]) == (len(FILES) - 3, 3)
    assert snapshot(app.test_client(), key_headers(app, "acme")) == before


def _write_and_hold(fifo, data: bytes, proc) -> None:
    with open(fifo, "wb") as pipe:
        pipe.write(data)
        pipe.flush()
        proc.wait()  # keep the pipe open (no EOF) until the importer is gone


def _wait_for_images(engine, count: int, proc) -> None:
    """Until ``count`` images are committed (the importer then blocks on the pipe)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        with engine.connect() as connection:
            if connection.scalar(select(func.count(Image.id))) >= count:
                return
        time.sleep(0.05)  # polling a condition, with a deadline
    raise AssertionError(f"the importer did not commit {count} images")


def test_an_export_stops_on_damaged_bytes_and_leaves_no_file(tmp_path):
    app = make_app(local_config(tmp_path, "damaged"))
    tenant = create_tenant(app, "acme")
    seed(app.test_client(), tenant.headers())
    original = next(p for p in sorted((tmp_path / "damaged" / "blobs").rglob("*")) if p.is_file())
    original.write_bytes(original.read_bytes()[:-1] + b"?")
    archive = tmp_path / "acme.tar"
    result = run(app, "export", "acme", str(archive))
    assert result.exit_code == 2
    assert "run `image-repo fsck`" in result.output
    assert not archive.exists() and not list(tmp_path.glob("acme.tar*"))
    assert run(app, "export", "nobody", str(archive)).exit_code == 2


def test_a_document_claiming_to_be_huge_is_refused_before_it_is_read(exported, target, tmp_path):
    archive, _ = exported
    with tarfile.open(archive) as tar:
        manifest = tar.getmember("manifest.json")
        manifest_data = tar.extractfile(manifest).read()
    huge = tarfile.TarInfo("images.json")
    huge.size = 600 * 1024 * 1024  # claimed only: the archive ends right after the header
    hostile = tmp_path / "huge.tar"
    with tarfile.open(hostile, "w") as tar:
        tar.addfile(manifest, io.BytesIO(manifest_data))
    data = hostile.read_bytes()
    end = data.rstrip(b"\0")
    padded = end + b"\0" * (-len(end) % tarfile.BLOCKSIZE)
    hostile.write_bytes(padded + huge.tobuf(tarfile.PAX_FORMAT))
    result = run(target, "import-archive", str(hostile))
    assert result.exit_code == 2, result.output
    assert "images.json is 629145600 bytes, more than" in result.output
    assert image_count(target) == 0


def test_export_and_zip_hold_one_piece_of_a_large_original_at_a_time(tmp_path):
    """A 20 MB original goes into the tar and the ZIP without ever being whole in memory."""
    import tracemalloc

    from PIL import Image as PILImage

    from image_repo.transfer import zip_archive
    from tests.support.images import upload

    side = 2600
    noise = PILImage.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    encoded = io.BytesIO()
    noise.save(encoded, "PNG", compress_level=0)
    size = len(encoded.getvalue())
    assert size > 20_000_000
    app = make_app({**local_config(tmp_path, "large"), "MAX_UPLOAD_BYTES": 50_000_000})
    tenant = create_tenant(app, "acme")
    image = upload(app.test_client(), tenant.headers(), encoded.getvalue(), "noise.png").json
    del noise, encoded

    archive = tmp_path / "large.tar"
    tracemalloc.start()
    try:
        result = run(app, "export", "acme", str(archive), "--json")
        _, export_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with app.app_context(), services_of(app).sessions() as session:
            plan = zip_archive.selection_plan(session, tenant.tenant_id, [image["id"]])
        zipped = sum(
            len(piece)
            for piece in zip_archive.zip_stream(services_of(app).blob_store, plan.members)
        )
        _, zip_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    assert archive.stat().st_size > size and zipped > size
    # A few 1 MiB pieces at most, far below the file's size.
    assert export_peak < size / 4 and zip_peak < size / 4, (export_peak, zip_peak)
