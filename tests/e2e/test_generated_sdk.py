"""The spec is the contract: a client generated from it drives every operation.

openapi-python-client turns ``openapi/openapi.json`` into a package in a temp
folder; the test imports it and walks a real gunicorn through every operation
the spec lists (``OperationLog`` maps each request back to its operationId).
An operation this test does not know yet fails the test, by name: add a step.

The generator runs with its default settings, as anyone generating a client
from the published spec would, and must not warn: a warning means it left
something of the spec out of the client. Where the generated client cannot do
something the spec promises, the test takes the narrowest way round it
through the same client (a client-wide header) and prints a note, so that
fixing the spec turns the note off without touching the test.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import io
import secrets
import zipfile

import httpx
import pytest
import requests
from PIL import Image as PILImage

from tests.support.corpus import corpus_path
from tests.support.faces import face_path
from tests.support.live_server import cli, gunicorn_server
from tests.support.sdk_support import (
    OperationLog,
    forget_client,
    generate_client,
    load_spec,
    spec_operations,
)

JPEG = corpus_path("valid/hopper.jpg")
PNG = corpus_path("valid/hopper.png")  # the same picture: a near duplicate of JPEG
OPERATOR_SECRET = secrets.token_urlsafe(32)
FACE_PHOTOS = ("obama.jpg", "biden.jpg", "two_people.jpg")

# Every operation the test below calls. Renditions, similar images, health and
# metrics run when the spec has them; every operation in the spec must be here.
KNOWN_OPERATIONS = {
    "getLanding",
    "createTenant", "listTenants",
    "getCurrentKey", "listKeys", "createKey", "getKey", "revokeKey",
    "uploadImage", "listImages", "getImage", "getImageFile", "updateImage",
    "getTimeline", "deleteImage",
    "listTrash", "restoreImage", "purgeImage", "emptyTrash",
    "createCollection", "getCollection", "listCollections", "updateCollection",
    "deleteCollection", "addImageToCollection", "listCollectionImages",
    "removeImageFromCollection",
    "getThumbnail", "renderImage", "listSimilarImages",
    "getLiveness", "getReadiness", "getMetrics",
    "signImageUrl", "createShare", "listShares", "getShare", "deleteShare",
}  # fmt: skip
# Faces and people (drive_faces below).
FACE_OPERATIONS = {
    "getFaceSettings", "updateFaceSettings", "listImageFaces", "getFace", "updateFace",
    "getFaceThumbnail", "listPeople", "getPerson", "updatePerson", "mergePeople",
}  # fmt: skip
KNOWN_OPERATIONS |= FACE_OPERATIONS
# ZIP downloads (drive_archives below).
KNOWN_OPERATIONS |= {"downloadCollectionArchive", "downloadImagesArchive"}


@pytest.fixture(scope="module")
def sdk(tmp_path_factory):
    client = generate_client(tmp_path_factory.mktemp("sdk"))
    yield client
    forget_client(client)


@pytest.fixture
def live_env(tmp_path) -> dict[str, str]:
    return {
        "IMAGE_REPO_DATA_DIR": str(tmp_path / "data"),
        "IMAGE_REPO_OPERATOR_KEY_SHA256": hashlib.sha256(OPERATOR_SECRET.encode()).hexdigest(),
        "IMAGE_REPO_FACES": "true",
    }


@pytest.fixture
def live(tmp_path, live_env):
    """A gunicorn on a migrated, empty database that knows the operator credential."""
    env = live_env
    cli(env, "db", "upgrade")
    with gunicorn_server(env, workers=2, log_path=tmp_path / "gunicorn.log") as base:
        yield base


class Driver:
    """Calls through the generated client, logging each operation and oddity."""

    def __init__(self, sdk, base: str, log: OperationLog):
        self.sdk = sdk
        self.base = base
        self.log = log
        self.types = importlib.import_module(f"{sdk.package.__name__}.types")
        self.notes: list[str] = []

    def connect(self, token: str | None = None, *, x_api_key: bool = False, headers=None):
        """A fresh client: anonymous, ``Authorization: Bearer`` or ``X-API-Key``."""
        options = {
            "base_url": self.base,
            "timeout": httpx.Timeout(30),
            "headers": dict(headers or {}),
            "httpx_args": self.log.httpx_args(),
            "raise_on_unexpected_status": True,
        }
        if token is None:
            return self.sdk.package.Client(**options)
        if x_api_key:
            options |= {"auth_header_name": "X-API-Key", "prefix": ""}
        return self.sdk.package.AuthenticatedClient(token=token, **options)

    def call(self, operation_id: str, client, status: int, *args, **kwargs):
        response = self.sdk.api(operation_id).sync_detailed(*args, client=client, **kwargs)
        assert response.status_code == status, (
            f"{operation_id}: {response.status_code}, expected {status}: {response.content[:300]!r}"
        )
        return response

    def fetch_bytes(self, operation_id: str, client, *args, **kwargs) -> tuple[bytes, str]:
        """An image-bytes operation through ``sync_detailed()`` and ``sync()``.

        Both parse the 200 as a ``File`` holding the bytes; ``sync_detailed()``
        also has the headers, whose Content-Type names the image type. Answers
        the bytes and that type.
        """
        module = self.sdk.api(operation_id)
        File = self.types.File
        detailed = self.call(operation_id, client, 200, *args, **kwargs)
        assert isinstance(detailed.parsed, File), (operation_id, type(detailed.parsed))
        body = detailed.parsed.payload.read()
        assert body == detailed.content and body, operation_id
        content_type = detailed.headers["Content-Type"]
        method, path = spec_operations(self.log.spec)[operation_id]
        listed = self.log.spec["paths"][path][method.lower()]["responses"]["200"]["content"]
        assert content_type.startswith("image/") and content_type in listed, (
            f"{operation_id} answered {content_type}; its spec lists {sorted(listed)}"
        )
        # openapi-python-client's File has a mime_type, which its template leaves unset.
        assert detailed.parsed.mime_type in (None, content_type), detailed.parsed
        parsed = module.sync(*args, client=client, **kwargs)
        assert isinstance(parsed, File), (operation_id, type(parsed))
        assert parsed.payload.read() == body, f"{operation_id}: sync() answered other bytes"
        return body, content_type

    def update_with_if_match(self, token: str, etag: str, status: int, *args, **kwargs):
        """updateImage sending ``If-Match: etag``, as a parameter if the client has one."""
        module = self.sdk.api("updateImage")
        if "if_match" in inspect.signature(module.sync_detailed).parameters:
            return self.call(
                "updateImage", self.connect(token), status, *args, if_match=etag, **kwargs
            )
        if not any("If-Match" in note for note in self.notes):
            self.notes.append(
                "updateImage: the generated function has no If-Match parameter; sent it as a "
                "client-wide header from a client made for this one call"
            )
        # Not client.with_headers(): on a client already used it adds the header to
        # that client's httpx session for good.
        client = self.connect(token, headers={"If-Match": etag})
        return self.call("updateImage", client, status, *args, **kwargs)


def drive_archives(run, admin, image, collection) -> None:
    """ZIPs of an album and of a selection, as bytes from the generated client."""
    for operation_id, args, kwargs in (
        ("downloadCollectionArchive", (collection.id,), {}),
        ("downloadImagesArchive", (), {"ids": [image.id]}),
    ):
        archive = run.call(operation_id, admin, 200, *args, **kwargs)
        with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
            assert len(opened.namelist()) == 1 and opened.testzip() is None


def drive_faces(run, admin, upload, env: dict[str, str], tenant_name: str) -> None:
    """Faces and people: the switch, analysis (by the command line), merge, move, rename."""
    model = run.sdk.model
    on = run.call(
        "updateFaceSettings", admin, 200, body=model("FaceSettingsUpdate")(enabled=True)
    ).parsed
    assert (on.enabled, on.available, on.active) == (True, True, True)
    ids = {name: upload(face_path(name), "image/jpeg", 201).id for name in FACE_PHOTOS}
    cli(env, "faces", "analyze", "--tenant", tenant_name)
    [obama] = run.call("listImageFaces", admin, 200, ids["obama.jpg"]).parsed.items
    [biden] = run.call("listImageFaces", admin, 200, ids["biden.jpg"]).parsed.items
    pair = run.call("listImageFaces", admin, 200, ids["two_people.jpg"]).parsed.items
    assert [face.person_id for face in pair] == [obama.person_id, biden.person_id]
    assert obama.person_id != biden.person_id
    shown = run.call("getFace", admin, 200, obama.id).parsed
    assert (shown.box.left, shown.box.width) == (obama.box.left, obama.box.width)
    # (The earlier uploads are a portrait of Grace Hopper: a third person.)
    people = run.call("listPeople", admin, 200).parsed.items
    assert {obama.person_id, biden.person_id} <= {p.id for p in people}
    assert run.call("getPerson", admin, 200, obama.person_id).parsed.face_count == 2
    renamed = run.call(
        "updatePerson", admin, 200, obama.person_id, body=model("PersonUpdate")(name="Barack")
    ).parsed
    assert renamed.name == "Barack"
    moved = run.call(
        "updateFace", admin, 200, biden.id, body=model("FaceUpdate")(person_id=obama.person_id)
    ).parsed
    assert moved.person_id == obama.person_id
    merged = run.call(
        "mergePeople", admin, 200, obama.person_id,
        body=model("PersonMerge")(people=[biden.person_id]),
    ).parsed  # fmt: skip
    assert (merged.name, merged.face_count) == ("Barack", 4)
    assert run.call("getPerson", admin, 404, biden.person_id).parsed.code == 404
    with_him = run.call("listImages", admin, 200, person=obama.person_id).parsed
    assert sorted(image.id for image in with_him.items) == sorted(ids.values())
    thumbnail, _ = run.fetch_bytes("getFaceThumbnail", admin, obama.id, size="small")
    with PILImage.open(io.BytesIO(thumbnail)) as picture:
        assert picture.size == (128, 128)
    off = run.call(
        "updateFaceSettings", admin, 200, body=model("FaceSettingsUpdate")(enabled=False)
    ).parsed
    assert (off.enabled, off.faces, off.people) == (False, 0, 0)
    assert run.call("listPeople", admin, 200).parsed.items == []
    assert run.call("getFaceSettings", admin, 200).parsed.faces == 0


def test_generated_client_drives_every_operation(sdk, live, live_env):
    spec = load_spec()
    operations = spec_operations(spec)
    log = OperationLog(spec)
    run = Driver(sdk, live, log)
    model = sdk.model
    UNSET = run.types.UNSET
    File = run.types.File

    # Landing, without a key.
    anonymous = run.connect()
    landing = run.call("getLanding", anonymous, 200, name="SDK").parsed
    assert landing.hello == "SDK"
    if "getLiveness" in operations:
        assert run.call("getLiveness", anonymous, 200).parsed.status == "ok"
    if "getReadiness" in operations:
        ready = run.call("getReadiness", anonymous, 200).parsed
        assert ready.status == "ok", ready

    # Tenants, with the operator credential; the new tenant's admin key drives the rest.
    operator = run.connect(OPERATOR_SECRET)
    new_tenant = run.call(
        "createTenant", operator, 201, body=model("TenantCreate")(name="sdk-corp")
    ).parsed
    assert new_tenant.name == "sdk-corp"
    tenants = run.call("listTenants", operator, 200).parsed
    assert "sdk-corp" in [tenant.name for tenant in tenants.items]
    admin_key = new_tenant.admin_key.api_key
    admin = run.connect(admin_key, x_api_key=True)

    me = run.call("getCurrentKey", admin, 200).parsed
    assert (me.tenant_name, me.group) == ("sdk-corp", "admin")

    # Upload (multipart), twice; the same bytes again answer 200 with the same image.
    def upload(path, mime_type, status, **fields):
        body = model("ImageUpload")(
            image=File(
                payload=io.BytesIO(path.read_bytes()), file_name=path.name, mime_type=mime_type
            ),
            **fields,
        )
        return run.call("uploadImage", admin, status, body=body).parsed

    jpeg = upload(JPEG, "image/jpeg", 201, title="Hopper", tags=["portrait", "sdk"])
    assert (jpeg.title, jpeg.format_, jpeg.tags) == ("Hopper", "JPEG", ["portrait", "sdk"])
    png = upload(PNG, "image/png", 201, tags=["sdk"])
    assert png.format_ == "PNG"
    assert upload(JPEG, "image/jpeg", 200).id == jpeg.id

    # List one per page, following next_cursor; then filters.
    seen, cursor = [], UNSET
    for _ in range(5):
        page = run.call("listImages", admin, 200, limit=1, cursor=cursor).parsed
        assert len(page.items) <= 1
        seen += [image.id for image in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted([jpeg.id, png.id])
    by_tag = run.call("listImages", admin, 200, tag="portrait").parsed
    assert [image.id for image in by_tag.items] == [jpeg.id]
    by_format = run.call("listImages", admin, 200, format_=model("ListImagesFormat").PNG).parsed
    assert [image.id for image in by_format.items] == [png.id]

    # Metadata, then the original bytes.
    got = run.call("getImage", admin, 200, jpeg.id)
    assert got.parsed.sha256 == jpeg.sha256
    etag = got.headers["ETag"]
    original, original_type = run.fetch_bytes("getImageFile", admin, jpeg.id)
    assert (original, original_type) == (JPEG.read_bytes(), "image/jpeg")

    # PATCH with If-Match: the current ETag wins, a stale one gets 412.
    changes = model("ImageUpdate")(title="Renamed", tags=["portrait", "renamed"])
    updated = run.update_with_if_match(admin_key, etag, 200, jpeg.id, body=changes).parsed
    assert (updated.title, updated.tags) == ("Renamed", ["portrait", "renamed"])
    stale = run.update_with_if_match(admin_key, etag, 412, jpeg.id, body=changes).parsed
    assert stale.code == 412

    timeline = run.call(
        "getTimeline", admin, 200, granularity=model("GetTimelineGranularity").YEAR
    ).parsed
    assert timeline.granularity == "year"
    assert sum(bucket.count for bucket in timeline.buckets) == 2

    # Renditions and similar images, once the spec has them.
    if "getThumbnail" in operations:
        thumbnail, thumbnail_type = run.fetch_bytes(
            "getThumbnail", admin, jpeg.id, size="small", format_=model("GetThumbnailFormat").AVIF
        )
        assert thumbnail_type == "image/avif"
        with PILImage.open(io.BytesIO(thumbnail)) as picture:
            assert picture.format == "AVIF" and max(picture.size) <= 128
    if "renderImage" in operations:
        rendered, rendered_type = run.fetch_bytes(
            "renderImage", admin, jpeg.id, width=64, format_=model("RenderImageFormat").PNG
        )
        assert rendered_type == "image/png"
        with PILImage.open(io.BytesIO(rendered)) as picture:
            assert (picture.format, picture.width) == ("PNG", 64)
    if "listSimilarImages" in operations:
        similar = run.call("listSimilarImages", admin, 200, jpeg.id).parsed
        assert png.id in [match.image.id for match in similar.items]

    # Signed URLs and share links: what they open needs no key.
    if "signImageUrl" in operations:
        with_urls = run.call("getImage", admin, 200, jpeg.id, urls=True).parsed
        assert requests.get(with_urls.urls.thumbnail, timeout=30).status_code == 200
        signed = run.call(
            "signImageUrl", admin, 200, jpeg.id, body=model("SignUrl")(width=32, expires_in=60)
        ).parsed
        assert requests.get(signed.url, timeout=30).status_code == 200
    if "createShare" in operations:
        share = run.call(
            "createShare", admin, 201, body=model("ShareCreate")(image_id=jpeg.id, label="SDK")
        ).parsed
        page = requests.get(share.url, headers={"Accept": "application/json"}, timeout=30)
        assert page.json()["images"][0]["id"] == jpeg.id
        assert share.id in [s.id for s in run.call("listShares", admin, 200).parsed.items]
        assert run.call("getShare", admin, 200, share.id).parsed.label == "SDK"
        run.call("deleteShare", admin, 204, share.id)
        assert requests.get(share.url, timeout=30).status_code == 404

    # Collections: create, add, list, rename, remove, delete.
    collection = run.call(
        "createCollection", admin, 201,
        body=model("CollectionCreate")(name="Favourites", description="From the SDK"),
    ).parsed  # fmt: skip
    assert run.call("getCollection", admin, 200, collection.id).parsed.name == "Favourites"
    membership = run.call("addImageToCollection", admin, 200, collection.id, jpeg.id).parsed
    assert membership.added is True
    members = run.call("listCollectionImages", admin, 200, collection.id).parsed
    assert [image.id for image in members.items] == [jpeg.id]
    collections = run.call("listCollections", admin, 200).parsed
    assert [(c.id, c.image_count) for c in collections.items] == [(collection.id, 1)]
    renamed = run.call(
        "updateCollection", admin, 200, collection.id, body=model("CollectionUpdate")(name="Best")
    ).parsed
    assert renamed.name == "Best"
    drive_archives(run, admin, jpeg, collection)
    run.call("removeImageFromCollection", admin, 204, collection.id, jpeg.id)
    assert run.call("listCollectionImages", admin, 200, collection.id).parsed.items == []
    run.call("deleteCollection", admin, 204, collection.id)
    assert run.call("getCollection", admin, 404, collection.id).parsed.code == 404

    # Keys: list, create, show, revoke; the revoked key is refused.
    keys = run.call("listKeys", admin, 200).parsed
    assert new_tenant.admin_key.key_id in [key.key_id for key in keys.items]
    reader = run.call(
        "createKey", admin, 201, body=model("KeyCreate")(group="reader", name="sdk reader")
    ).parsed
    assert run.call("getKey", admin, 200, reader.key_id).parsed.group == "reader"
    reader_client = run.connect(reader.api_key)
    assert run.call("getCurrentKey", reader_client, 200).parsed.group == "reader"
    revoked = run.call("revokeKey", admin, 200, reader.key_id).parsed
    assert revoked.revoked_at is not None
    assert run.call("getCurrentKey", reader_client, 401).parsed.code == 401

    drive_faces(run, admin, upload, live_env, "sdk-corp")

    # Delete both images (to the trash), restore one, purge it and empty the trash.
    for image in (jpeg, png):
        run.call("deleteImage", admin, 204, image.id)
    assert run.call("getImage", admin, 404, jpeg.id).parsed.code == 404
    trash = run.call("listTrash", admin, 200, limit=10).parsed
    assert sorted(image.id for image in trash.items) == sorted([jpeg.id, png.id])
    assert all(image.purge_at > image.trashed_at for image in trash.items)
    restored = run.call("restoreImage", admin, 200, jpeg.id).parsed
    assert (restored.id, restored.title) == (jpeg.id, "Renamed")
    run.call("deleteImage", admin, 204, jpeg.id)
    run.call("purgeImage", admin, 204, jpeg.id)
    assert run.call("restoreImage", admin, 404, jpeg.id).parsed.code == 404
    assert run.call("emptyTrash", admin, 200).parsed.purged == 1
    assert run.call("listTrash", admin, 200).parsed.items == []

    if "getMetrics" in operations:
        # Public by default (its security allows none), though the generated
        # signature asks for an AuthenticatedClient.
        metrics = run.call("getMetrics", anonymous, 200).parsed
        assert "# TYPE" in metrics

    for line in run.notes:
        print(f"generated SDK: {line}")
    assert sdk.warnings() == [], "the generator left parts of the spec out of the client"
    assert log.unmatched == [], f"requests that match no operation in the spec: {log.unmatched}"
    assert log.server_errors == [], f"5xx answers: {log.server_errors}"
    unknown = sorted(set(operations) - KNOWN_OPERATIONS)
    assert not unknown, (
        "operations in openapi/openapi.json that this test does not drive yet (add a step that "
        "calls each through the generated client, and its operationId to KNOWN_OPERATIONS): "
        + ", ".join(f"{op} ({' '.join(operations[op])})" for op in unknown)
    )
    missed = sorted(set(operations) - log.called)
    assert not missed, f"operations never called through the generated client: {missed}"
