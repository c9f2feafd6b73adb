"""`image-repo gc` and `image-repo fsck`."""

from __future__ import annotations

import json

from image_repo.http.context import services_of
from image_repo.storage import blob_key
from tests.support.images import png_bytes, upload


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_gc_removes_bytes_no_image_refers_to(app, client, tenant, other_tenant):
    store = services_of(app).blob_store
    shared = png_bytes(1)
    mine = upload(client, tenant.headers(), shared).json
    upload(client, other_tenant.headers(), shared)
    lonely = upload(client, tenant.headers(), png_bytes(2)).json
    for image in (mine, lonely):  # deleted, then purged from the trash
        assert client.delete(f"/images/{image['id']}", headers=tenant.headers()).status_code == 204
        assert client.delete(f"/trash/{image['id']}", headers=tenant.headers()).status_code == 204

    # Within the grace period nothing goes: an upload may be in flight.
    young = json.loads(run(app, "gc", "--json").output)
    assert young["originals_removed"] == 0 and young["kept_young"] == 1
    assert store.exists(blob_key(lonely["sha256"]))

    done = json.loads(run(app, "gc", "--grace", "0s", "--json").output)
    assert done["originals_removed"] == 1
    assert not store.exists(blob_key(lonely["sha256"]))
    # Still used by the other tenant's image.
    assert store.exists(blob_key(mine["sha256"]))


def test_fsck_reports_missing_corrupt_and_orphaned_bytes(app, client, tenant):
    store = services_of(app).blob_store
    ok = upload(client, tenant.headers(), png_bytes(3)).json
    lost = upload(client, tenant.headers(), png_bytes(4)).json
    damaged = upload(client, tenant.headers(), png_bytes(5)).json
    healthy = json.loads(run(app, "fsck", "--json").output)
    assert healthy == {"checked": 3, "missing": [], "corrupt": [], "orphans": [], "ok": True}

    store.delete(blob_key(lost["sha256"]))
    path = store.local_path(blob_key(damaged["sha256"]))
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    orphan = png_bytes(6)
    import hashlib
    import io

    store.put(blob_key(hashlib.sha256(orphan).hexdigest()), io.BytesIO(orphan))

    result = run(app, "fsck", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["missing"] == [lost["id"]]
    assert report["corrupt"] == [damaged["id"]]
    assert report["orphans"] == [hashlib.sha256(orphan).hexdigest()]
    assert ok["id"] not in report["missing"] + report["corrupt"]
    # A missing original is a clear 404 for the client, not a 500.
    assert client.get(f"/images/{lost['id']}/file", headers=tenant.headers()).status_code == 404


def test_fsck_shows_progress_without_json(app, client, tenant):
    upload(client, tenant.headers(), png_bytes(7))
    result = run(app, "fsck")
    assert result.exit_code == 0
    assert "checked 1 image: 0 missing, 0 corrupt, 0 orphaned blobs" in result.output


def test_fsck_without_json_names_each_damaged_image_and_what_is_wrong(app, client, tenant):
    store = services_of(app).blob_store
    ok = upload(client, tenant.headers(), png_bytes(8)).json
    lost = upload(client, tenant.headers(), png_bytes(9)).json
    damaged = upload(client, tenant.headers(), png_bytes(10)).json
    store.delete(blob_key(lost["sha256"]))
    path = store.local_path(blob_key(damaged["sha256"]))
    path.write_bytes(path.read_bytes()[:-1] + b"!")

    result = run(app, "fsck")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "checked 3 images: 1 missing, 1 corrupt, 0 orphaned blobs"
    named = {line.split(":")[0]: line for line in lines[1:]}
    assert set(named) == {lost["id"], damaged["id"]}
    assert "missing" in named[lost["id"]] and lost["sha256"] in named[lost["id"]]
    assert "corrupt" in named[damaged["id"]] and damaged["sha256"] in named[damaged["id"]]
    assert ok["id"] not in result.stdout
