"""Helpers for the schemathesis fuzz test (tests/e2e/test_fuzz_api.py).

``FuzzWorld`` is one in-process app on a fresh SQLite database with a tenant,
one API key per group, the operator credential, a second tenant whose ids must
stay invisible, and pools of ids of real images, collections and keys that
the fuzzer swaps into path parameters so that more than 404s get exercised.
``image_bytes`` feeds the ``image`` part of uploads from the test corpus (tests/data).
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from pathlib import Path

from hypothesis import strategies as st

from image_repo.http.access import access_for
from image_repo.http.auth import OPERATOR
from image_repo.http.context import services_of
from tests.conftest import TenantHandle, create_tenant, make_app
from tests.support.corpus import corpus_files, corpus_path

GROUPS = ("reader", "contributor", "editor", "admin")
OPERATOR_GROUP = "operator"
OPERATOR_SECRET = "fuzz-operator-" + "o" * 32
ID_PARAMS = {
    "image_id": "images",
    "collection_id": "collections",
    "key_id": "keys",
    "share_id": "shares",
}
# Under /trash/, an image id is one of an image in the trash.
TRASH = "trash"
TRASHED_IMAGES = 2  # kept in each tenant's trash for restore and purge to act on

# Seeded per tenant: these survive the whole run (never offered to DELETE) ...
KEPT_IMAGES = (
    "valid/hopper.jpg",
    "valid/hopper.png",
    "valid/transparency.avif",
    "valid/iss634.gif",
    "valid/exif_gps.jpg",
    "orientation/hopper_orientation_6.jpg",
    "valid/pil_sample_cmyk.jpg",
)
# ... and these may be deleted by the fuzzer (as may everything it creates).
DISPOSABLE_IMAGES = ("valid/hopper.webp", "valid/hopper.bmp", "valid/flower.jpg")


def image_bytes() -> st.SearchStrategy[bytes]:
    """Bytes for the ``image`` part of an upload: mostly real images from the corpus.

    Real files as they are (a new image once, then the same bytes again), real
    files with a few bytes appended (new bytes, so a fresh 201 each time),
    truncated files, files the corpus says must be refused, and noise.
    """
    accepted = [corpus_path(name).read_bytes() for name in corpus_files("accept")]
    refused = [corpus_path(name).read_bytes() for name in corpus_files("reject")]
    real = st.sampled_from(accepted)
    return st.one_of(
        real,
        st.tuples(real, st.binary(min_size=1, max_size=16)).map(lambda pair: pair[0] + pair[1]),
        st.tuples(real, st.integers(1, 99)).map(lambda p: p[0][: len(p[0]) * p[1] // 100]),
        st.sampled_from(refused),
        st.binary(max_size=256),
    )


# Valid RFC 3339 times at the ends of what Python's datetime holds: shifted to
# UTC, some of them fall outside it.
EDGE_DATE_TIMES = (
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:30:00+23:59",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T12:00:00-23:59",
)


def date_times() -> st.SearchStrategy[str]:
    """RFC 3339 date-times with any offset, the edges of the calendar often."""
    anywhere = st.builds(
        lambda moment, minutes: moment.replace(
            tzinfo=timezone(timedelta(minutes=minutes))
        ).isoformat(),
        st.datetimes(),
        st.integers(-(24 * 60 - 1), 24 * 60 - 1),
    )
    return st.one_of(st.sampled_from(EDGE_DATE_TIMES), anywhere)


@dataclass
class Pool:
    """Ids of one kind of resource: some kept for the whole run, the rest disposable."""

    kept: list[str] = field(default_factory=list)
    disposable: list[str] = field(default_factory=list)

    def pick(self, number: int, *, for_delete: bool) -> str | None:
        choices = self.disposable if for_delete else self.kept + self.disposable
        return choices[number % len(choices)] if choices else None

    def discard(self, resource_id: str) -> None:
        if resource_id in self.disposable:
            self.disposable.remove(resource_id)


@dataclass
class Tenant:
    handle: TenantHandle
    keys: dict[str, str]  # group -> secret (their ids are never offered to the fuzzer)
    pools: dict[str, Pool]


class FuzzWorld:
    """The app under test, its callers, and the ids worth fuzzing with."""

    def __init__(self, data_dir: Path, database_url: str | None = None):
        self.app = make_app(
            {
                "ENV": "development",
                "DATA_DIR": data_dir,
                "DATABASE_URL": database_url or f"sqlite:///{data_dir / 'fuzz.db'}",
                "REDIS_URL": None,
                # The limiter stays on (its code path is part of every call), with
                # budgets no fuzz run reaches.
                "RATELIMIT_ENABLED": True,
                "RATELIMIT_READ": "1000000 per minute",
                "RATELIMIT_WRITE": "1000000 per minute",
                "OPERATOR_KEY_SHA256": hashlib.sha256(OPERATOR_SECRET.encode()).hexdigest(),
            }
        )
        self.client = self.app.test_client()
        self.permissions = dict(services_of(self.app).group_permissions)
        self.permissions[OPERATOR_GROUP] = OPERATOR.permissions
        self._urls = self.app.url_map.bind("localhost")
        self.home = self._seed_tenant("acme")
        self.foreign = self._seed_tenant("globex")
        # Which group's key the auth provider hands out; set per test.
        self.group: str | None = None
        # Status counts per (operationId, caller), for the tests' own assertions.
        self.statuses: dict[tuple[str, str], collections.Counter] = collections.defaultdict(
            collections.Counter
        )

    def close(self) -> None:
        services_of(self.app).engine.dispose()

    # -- callers ---------------------------------------------------------------

    def access(self, method: str, path: str):
        """The access declared for an operation of the spec (path with {placeholders})."""
        # A well-formed id for each placeholder (routes only match real id shapes).
        prefixes = {
            "image_id": "img",
            "collection_id": "col",
            "key_id": "key",
            "person_id": "per",
            "face_id": "fce",
            "share_id": "shr",
        }
        concrete = re.sub(
            r"\{([^}]+)\}", lambda m: f"{prefixes.get(m.group(1), 'x')}_{'a' * 20}", path
        )
        endpoint, _ = self._urls.match(concrete, method=method.upper())
        access = access_for(self.app, endpoint, method)
        assert access is not None, f"{method} {path} declares no access"
        return access

    def is_public(self, method: str, path: str) -> bool:
        access = self.access(method, path)
        return access.public or bool(access.public_when and self.app.config.get(access.public_when))

    def allows(self, group: str, method: str, path: str) -> bool:
        return self.access(method, path).permission in self.permissions[group]

    def least_privileged_group(self, method: str, path: str) -> str | None:
        """The weakest tenant group allowed to call the operation, or the operator; None if public."""
        if self.is_public(method, path):
            return None
        for group in (*GROUPS, OPERATOR_GROUP):
            if self.allows(group, method, path):
                return group
        raise AssertionError(f"nobody may call {method} {path}")

    def secret(self, group: str | None) -> str | None:
        if group is None:
            return None
        if group == OPERATOR_GROUP:
            return OPERATOR_SECRET
        return self.home.keys[group]

    # -- resources -------------------------------------------------------------

    def _seed_tenant(self, name: str) -> Tenant:
        handle = create_tenant(self.app, name)
        keys = {group: handle.key(group) for group in GROUPS[:-1]} | {"admin": handle.admin_key}
        tenant = Tenant(handle, keys, {kind: Pool() for kind in (*ID_PARAMS.values(), TRASH)})
        for image in KEPT_IMAGES:
            self._upload(tenant, corpus_path(image).read_bytes(), Path(image).name, kept=True)
        self._create_collection(tenant, "album", kept=True)
        self._create_share(tenant, kept=True)
        self.replenish(tenant)
        return tenant

    def replenish(self, tenant: Tenant | None = None) -> None:
        """Disposable images, collections and spare keys to spend, and a full album."""
        tenant = tenant or self.home
        pools = tenant.pools
        for image in DISPOSABLE_IMAGES[len(pools["images"].disposable) :]:
            # Bytes of its own each time: the same bytes again would be the same image.
            data = corpus_path(image).read_bytes() + os.urandom(8)
            self._upload(tenant, data, Path(image).name, kept=False)
        for _ in range(len(pools["collections"].disposable), 2):
            self._create_collection(tenant, f"disposable {os.urandom(4).hex()}", kept=False)
        for _ in range(len(pools["keys"].disposable), 3):
            self._add(tenant, "keys", tenant.handle.new_key("reader")["key_id"], kept=False)
        for _ in range(len(pools["shares"].disposable), 2):
            self._create_share(tenant, kept=False)
        for _ in range(len(pools[TRASH].disposable), TRASHED_IMAGES):
            self._trash_one(tenant)
        # Every image is in the album, so membership calls can succeed.
        album = pools["collections"].kept[0]
        for image_id in pools["images"].kept + pools["images"].disposable[:3]:
            response = self.client.put(
                f"/collections/{album}/images/{image_id}", headers=self._admin(tenant)
            )
            assert response.status_code in (200, 404), response.get_json()

    @staticmethod
    def _admin(tenant: Tenant) -> dict[str, str]:
        return {"Authorization": f"Bearer {tenant.keys['admin']}"}

    def _upload(self, tenant: Tenant, data: bytes, filename: str, *, kept: bool) -> None:
        response = self.client.post(
            "/images",
            data={"image": (io.BytesIO(data), filename), "tags": "seed"},
            headers=self._admin(tenant),
            content_type="multipart/form-data",
        )
        assert response.status_code == 201, response.get_json()
        self._add(tenant, "images", response.get_json()["id"], kept=kept)

    def _trash_one(self, tenant: Tenant) -> None:
        """A new image, deleted to the trash: for restoreImage and purgeImage."""
        data = corpus_path(DISPOSABLE_IMAGES[0]).read_bytes() + os.urandom(8)
        response = self.client.post(
            "/images",
            data={"image": (io.BytesIO(data), "trashed.webp")},
            headers=self._admin(tenant),
            content_type="multipart/form-data",
        )
        assert response.status_code == 201, response.get_json()
        image_id = response.get_json()["id"]
        deleted = self.client.delete(f"/images/{image_id}", headers=self._admin(tenant))
        assert deleted.status_code == 204, deleted.get_json()
        self._add(tenant, TRASH, image_id, kept=False)

    def _create_collection(self, tenant: Tenant, name: str, *, kept: bool) -> None:
        response = self.client.post(
            "/collections", json={"name": name}, headers=self._admin(tenant)
        )
        assert response.status_code == 201, response.get_json()
        self._add(tenant, "collections", response.get_json()["id"], kept=kept)

    def _create_share(self, tenant: Tenant, *, kept: bool) -> None:
        image_id = tenant.pools["images"].kept[0]
        response = self.client.post(
            "/shares", json={"image_id": image_id}, headers=self._admin(tenant)
        )
        assert response.status_code == 201, response.get_json()
        self._add(tenant, "shares", response.get_json()["id"], kept=kept)

    @staticmethod
    def _add(tenant: Tenant, kind: str, resource_id: str, *, kept: bool) -> None:
        pool = tenant.pools[kind]
        (pool.kept if kept else pool.disposable).append(resource_id)

    def swap_ids(self, case, picks: list[int]) -> bool:
        """Put ids of real resources into the case's id path parameters.

        ``picks`` (drawn by Hypothesis) decides, per id parameter, whether it
        stays as generated, takes an id of this tenant, or an id of the other
        tenant. Returns whether any foreign id was put in.
        """
        foreign = False
        for index, (name, kind) in enumerate(ID_PARAMS.items()):
            if name not in (case.path_parameters or {}):
                continue
            number = picks[index % len(picks)]
            if number % 8 == 0:
                continue  # keep the generated id
            tenant = self.foreign if number % 8 == 1 else self.home
            if case.path.startswith(f"/{TRASH}/"):
                kind = TRASH  # restore and purge act on images in the trash
            # Only the resource a DELETE removes must be a disposable one.
            for_delete = case.method.upper() == "DELETE" and case.path == f"/{kind}/{{{name}}}"
            chosen = tenant.pools[kind].pick(number // 8, for_delete=for_delete)
            if chosen is not None:
                case.path_parameters[name] = chosen
                foreign = foreign or tenant is self.foreign
        return foreign

    def steer(self, case, number: int) -> None:
        """Nudge query values towards what this deployment accepts (its own settings).

        Thumbnail presets and render sizes are configuration, not schema, so
        generated values are nearly always refused; this lets renditions of
        real images get computed too.
        """
        self._steer_body(case, number)
        query = case.query
        if not isinstance(query, dict):
            return
        if case.path.endswith("/thumbnail"):
            presets = sorted(self.app.config["THUMBNAIL_SIZES"])
            query["size"] = presets[number % len(presets)]
        elif case.path.endswith("/render"):
            for name in ("width", "height"):
                if isinstance(query.get(name), int) and query[name] > 0:
                    query[name] = query[name] % 1024 + 1
            query.pop("upscale", None)

    def _steer_body(self, case, number: int) -> None:
        """Share links need one real image or album id; signed URLs the parameters
        of their own rendition, within this deployment's sizes and lifetimes."""
        body = case.body
        if not isinstance(body, dict) or case.method.upper() != "POST":
            return
        config = self.app.config
        if case.path == "/shares":
            pools = self.home.pools
            body.pop("image_id", None)
            body.pop("collection_id", None)
            if number % 2:
                body["collection_id"] = pools["collections"].kept[0]
            else:
                images = pools["images"].kept
                body["image_id"] = images[number % len(images)]
            if isinstance(body.get("expires_in"), int):
                body["expires_in"] = body["expires_in"] % config["SHARE_MAX_TTL"] + 1
        elif case.path.endswith("/signed-url"):
            rendition = body.get("rendition", "render")
            allowed = {
                "original": {"download"},
                "thumbnail": {"size", "format"},
                "render": {"width", "height", "fit", "gravity", "format", "quality"},
            }.get(rendition, set())
            for name in list(body):
                if name not in allowed | {"rendition", "expires_in"}:
                    body.pop(name)
            if "size" in body:
                presets = sorted(config["THUMBNAIL_SIZES"])
                body["size"] = presets[number % len(presets)]
            for name in ("width", "height"):
                if isinstance(body.get(name), int) and body[name] > 0:
                    body[name] = body[name] % 1024 + 1
            if isinstance(body.get("expires_in"), int):
                body["expires_in"] = body["expires_in"] % config["SIGNED_URL_MAX_TTL"] + 1

    def record(self, operation_id: str, case, response, label: str = "") -> None:
        """Count the status, and keep the pools in step with what the call did."""
        caller = " ".join(filter(None, (self.group or "public", label)))
        self.statuses[(operation_id, caller)][response.status_code] += 1
        status = response.status_code
        created = {
            "uploadImage": "images",
            "createCollection": "collections",
            "createKey": "keys",
            "createShare": "shares",
        }
        deleted = {
            "deleteImage": ("images", "image_id"),
            "deleteCollection": ("collections", "collection_id"),
            "deleteShare": ("shares", "share_id"),
        }
        if operation_id in created and status == 201:
            body = json.loads(response.content)
            resource_id = body.get("id") or body.get("key_id")
            self._add(self.home, created[operation_id], resource_id, kept=False)
        elif operation_id in deleted and status == 204:
            kind, name = deleted[operation_id]
            self.home.pools[kind].discard(case.path_parameters[name])
            if operation_id == "deleteImage":  # to the trash
                self._add(self.home, TRASH, case.path_parameters[name], kept=False)
        elif operation_id == "restoreImage" and status == 200:
            self.home.pools[TRASH].discard(case.path_parameters["image_id"])
            self._add(self.home, "images", case.path_parameters["image_id"], kept=False)
        elif operation_id == "purgeImage" and status == 204:
            self.home.pools[TRASH].discard(case.path_parameters["image_id"])
        elif operation_id == "emptyTrash" and status == 200:
            self.home.pools[TRASH].disposable.clear()


def build_schema(world: FuzzWorld, spec: dict, config):
    """The spec loaded for in-process calls, with ``world.group``'s key as its auth."""
    import schemathesis

    schema = schemathesis.openapi.from_dict(spec, config=config)
    schema.app = world.app
    turns = iter(range(1 << 62))

    @schema.auth(refresh_interval=None)
    class GroupKey:
        """The key of ``world.group``, in either documented header by turns."""

        def get(self, case, context):
            return world.secret(world.group)

        def set(self, case, data, context):
            headers = {
                name: value
                for name, value in (case.headers or {}).items()
                if name.lower() not in ("authorization", "x-api-key")
            }
            if next(turns) % 2:
                headers["X-API-Key"] = data
            else:
                headers["Authorization"] = f"Bearer {data}"
            case.headers = headers

    @schema.hook
    def filter_failure(context, failure, case, response):
        return not multipart_artefact(failure, case)

    return schema


def multipart_artefact(failure, case) -> bool:
    """Whether an "invalid request accepted" failure is about data a form cannot carry.

    Two readings of multipart/form-data that the spec's JSON Schema cannot
    express, so schemathesis counts them as accepted invalid data:

    - a form has no types: every part is text, so a value of the "wrong type"
      (``tags=0``, ``tags=[292]``, ``title={}``) arrives as text the field may
      well accept (``"0"`` is a valid one-element tag list);
    - a form has no null and no empty list: the encoder leaves such a field
      out, and an empty form field means "not given" too (``DropEmptyFormFields``:
      Swagger UI's form sends cleared fields empty), so ``title=None``,
      ``taken_at=""`` or ``tags=[""]`` is an absent field, not an invalid one.

    Only this check's verdict is dropped: a 5xx or a wrong response still fails.
    """
    if getattr(failure, "code", None) != "ST201" or not case.meta:
        return False
    if not (case.media_type or "").startswith("multipart/") or not isinstance(case.body, dict):
        return False
    negated = _negated_fields(case.meta.phase.data)
    return bool(negated) and all(
        name in case.body and ("type" in keywords or _absent_in_a_form(case.body[name]))
        for name, keywords in negated
    )


def _negated_fields(data) -> list[tuple[str, set[str]]]:
    """(body field, violated keywords) of each mutation that made a case negative."""
    mutations = getattr(data, "mutations", None) or ()
    if mutations:
        return [(str(m.path[0]) if m.path else "", set(m.keywords)) for m in mutations]
    # Coverage cases carry a location instead, ending with the keyword.
    location = getattr(data, "location", None) or ""
    match = re.fullmatch(r"/properties/([^/]+)(/.*)?", location)
    if not match:
        return []
    named = re.findall(r"violates `(\w+)`", getattr(data, "description", None) or "")
    return [(match[1], {named[0] if named else location.rsplit("/", 1)[-1]})]


def _absent_in_a_form(value) -> bool:
    values = value if isinstance(value, list) else [value]
    return value == {} or all(item in ("", None) for item in values)
