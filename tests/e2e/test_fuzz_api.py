"""Property-based fuzzing of every operation of the committed spec with schemathesis.

Requests are generated from ``openapi/openapi.json`` (the contract clients are
built from) and sent in-process to a real app (SQLite, local folder, rate
limiter on), with an API key of the *least-privileged* group that holds each
operation's permission: every handler is reached past authorisation, and the
permission map is checked from below. A shallower pass then calls every
operation with every other group and the operator credential and checks the
403 boundary from both sides.

Each response is checked for: no 5xx, a status the spec documents, the
documented content type, headers and body schema, invalid requests refused,
valid ones not refused (with the semantic 4xx each operation may answer, listed
in ``SEMANTIC_REFUSALS``), and auth that is enforced (``ignored_auth`` re-sends
without a key and with a bad one). Ids of real images, collections and keys
(and, now and then, the other tenant's, which must answer 404) are swapped into
path parameters; upload bodies are mostly real images from the test corpus (tests/data).

Settings (environment):

- ``IMAGE_REPO_FUZZ_EXAMPLES`` (15): Hypothesis examples per operation and
  generation mode (positive, negative);
- ``IMAGE_REPO_FUZZ_COVERAGE`` (80): boundary-value cases per operation
  (schemathesis' coverage phase), ``all`` for every one;
- ``IMAGE_REPO_FUZZ_BOUNDARY_EXAMPLES`` (3): examples per operation and caller
  in the permission-boundary pass;
- ``IMAGE_REPO_FUZZ_SEED``: unset, the run is derandomized (the same cases every
  time); a number, or ``random`` for a fresh one, which failures then name.

A longer run::

    IMAGE_REPO_FUZZ_EXAMPLES=500 IMAGE_REPO_FUZZ_COVERAGE=all IMAGE_REPO_FUZZ_SEED=random \
        .venv/bin/python -m pytest tests/e2e/test_fuzz_api.py
"""

from __future__ import annotations

import json
import os
import random
from itertools import islice
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.formats import unregister_string_format

from tests.conftest import needs_postgres, postgres_schema
from tests.support.fuzz_support import (
    GROUPS,
    OPERATOR_GROUP,
    FuzzWorld,
    build_schema,
    date_times,
    image_bytes,
)

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
SPEC = json.loads(SPEC_PATH.read_text())
HTTP_METHODS = ("get", "put", "post", "patch", "delete")
OPERATIONS = [
    pytest.param(op["operationId"], method.upper(), path, id=op["operationId"])
    for path, item in SPEC["paths"].items()
    for method, op in item.items()
    if method in HTTP_METHODS
]

EXAMPLES = int(os.environ.get("IMAGE_REPO_FUZZ_EXAMPLES", "15"))
_COVERAGE = os.environ.get("IMAGE_REPO_FUZZ_COVERAGE", "80")
COVERAGE_CASES = None if _COVERAGE == "all" else int(_COVERAGE)
BOUNDARY_EXAMPLES = int(os.environ.get("IMAGE_REPO_FUZZ_BOUNDARY_EXAMPLES", "3"))
_SEED = os.environ.get("IMAGE_REPO_FUZZ_SEED")
# None: derandomized. Each xdist worker draws its own "random" seed; failures name it.
SEED = None if _SEED is None else random.getrandbits(32) if _SEED == "random" else int(_SEED)

CHECKS = [
    getattr(schemathesis.checks, name)
    for name in (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "missing_required_header",
        "ignored_auth",
        "unsupported_method",
        "allow_header_conformance",
    )
]
BOUNDARY_CHECKS = CHECKS[:5]

# Statuses a schema-valid request may still get, beyond the generic
# 2xx/3xx/401/403/404/409/429: refusals that depend on state or configuration
# the static schema cannot express. Anything else is a finding.
SEMANTIC_REFUSALS = {
    # An opaque cursor: only the service's own cursors are valid.
    "listImages": ["422"],
    "listCollections": ["422"],
    "listCollectionImages": ["422"],
    "listTrash": ["422"],
    # Presets come from IMAGE_REPO_THUMBNAIL_SIZES.
    "getThumbnail": ["422"],
    # Upscaling depends on IMAGE_REPO_RENDER_ALLOW_UPSCALE, sizes on IMAGE_REPO_RENDER_MAX_SIDE.
    "renderImage": ["422"],
    # Groups come from IMAGE_REPO_GROUP_PERMISSIONS.
    "createKey": ["422"],
    # The file is judged by decoding it: not an image 415, broken 422, too big 413.
    "uploadImage": ["413", "415", "422"],
    # Conditional requests: a stale If-Match, an unsatisfiable Range. A capture
    # time must exist in UTC, which no format says: 0001-01-01T00:30:00+23:59 is 422.
    "updateImage": ["412", "422"],
    "updateCollection": ["412"],
    "getImageFile": ["416"],
    "listShares": ["422"],
    # Which parameters apply depends on `rendition`; sizes, presets and the longest
    # life on IMAGE_REPO_RENDER_MAX_SIDE, _THUMBNAIL_SIZES and _SIGNED_URL_MAX_TTL.
    "signImageUrl": ["422"],
    # Exactly one of image_id or collection_id, of the tenant's own; the longest
    # life is IMAGE_REPO_SHARE_MAX_TTL.
    "createShare": ["422"],
    "listPeople": ["422"],
    # Presets come from IMAGE_REPO_THUMBNAIL_SIZES.
    "getFaceThumbnail": ["422"],
    # The selection must name the tenant's own images (any other id is unknown).
    "downloadImagesArchive": ["422"],
}
GENERIC_ACCEPTANCE = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]

# Operations whose main pass must reach a 2xx at least once (the happy path);
# everything else is listed with the reason it may not.
NO_HAPPY_PATH_NEEDED: dict[str, str] = {
    # The fuzzed tenants have no faces: finding some takes real portraits and
    # both face switches on; tests/api/test_faces.py and the SDK test drive these.
    "updateFace": "no faces in the fuzzed tenants",
    "updatePerson": "no people in the fuzzed tenants",
}


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "operations": [
                {
                    "include-operation-id": operation_id,
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": GENERIC_ACCEPTANCE + statuses
                        }
                    },
                }
                for operation_id, statuses in SEMANTIC_REFUSALS.items()
            ],
        }
    )


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def database_url(request):
    """SQLite in the data folder, or a PostgreSQL schema of its own (as conftest does)."""
    if request.param == "sqlite":
        yield None
        return
    with postgres_schema("fuzz") as url:
        yield url


@pytest.fixture(scope="module")
def world(tmp_path_factory, database_url):
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    data_dir.mkdir()
    world = FuzzWorld(data_dir, database_url)
    yield world
    world.close()
    # What the run reached, per operation and caller (shown with -s).
    for (operation_id, caller), statuses in sorted(world.statuses.items()):
        print(f"{operation_id:28} {caller:22} {dict(sorted(statuses.items()))}")


@pytest.fixture(scope="module")
def schema(world):
    # The only `format: binary` a request carries is the upload's `image` part.
    schemathesis.openapi.format("binary", image_bytes())
    schemathesis.openapi.format("date-time", date_times())
    yield build_schema(world, SPEC, _config())
    unregister_string_format("binary")
    unregister_string_format("date-time")


def _settings(examples: int):
    options = {
        "max_examples": examples,
        "deadline": None,
        "database": None,
        "suppress_health_check": list(HealthCheck),
        "phases": [Phase.explicit, Phase.generate, Phase.shrink],
    }
    return settings(**options, derandomize=SEED is None)


def _seeded(test):
    return test if SEED is None else seed(SEED)(test)


# Drawn with each case: per id parameter, keep the generated id (1 in 8), take the other
# tenant's (1 in 8) or one of this tenant's; also whether to steer the query and to drop
# conditional headers.
PICKS = st.lists(st.integers(0, 1 << 16), min_size=4, max_size=4)
CONDITIONAL_HEADERS = ("If-Match", "If-None-Match", "Range")


def run_case(world, schema, operation_id, case, picks, checks=CHECKS, label=""):
    """Send one case (after swapping in real ids) and validate the answer."""
    foreign = False
    if picks is not None:
        foreign = world.swap_ids(case, picks)
        if picks[2] % 2 == 0:
            world.steer(case, picks[2] // 2)
        if picks[-1] % 3 == 0 and case.headers:
            # A random If-Match or Range only ever answers 412/416: drop it now and then.
            for name in CONDITIONAL_HEADERS:
                case.headers.pop(name, None)
    response = case.call()
    world.record(operation_id, case, response, label)
    try:
        case.validate_response(response, checks=checks)
    except BaseExceptionGroup as failures:
        failures.add_note(describe(case))
        raise
    if foreign:
        assert response.status_code not in range(200, 400), (
            f"{case.method} {case.formatted_path}: another tenant's id answered "
            f"{response.status_code}\n{case.as_curl_command()}"
        )
    return response


def describe(case) -> str:
    """The request in short (curl truncates bodies with images in them)."""
    body = case.body
    if isinstance(body, dict):
        body = {
            name: f"<{len(value.data if hasattr(value, 'data') else value)} bytes>"
            if isinstance(value, bytes) or hasattr(value, "data")
            else value
            for name, value in body.items()
        }
    data = case.meta.phase.data if case.meta else None
    return (
        f"Request: {case.method} {case.formatted_path} query={case.query!r} body={body!r:.1000}\n"
        f"Generated as: {case.meta.generation.mode.value if case.meta else '?'}, "
        f"{getattr(data, 'description', None) or getattr(data, 'scenario', '')}"
    )


def _modes_strategy(operation):
    return st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )


class Failures:
    """Every distinct failure of a test, not only the first: the report lists them all."""

    def __init__(self, operation_id: str):
        self.operation_id = operation_id
        self.errors: list[BaseException] = []
        self._kinds: set[tuple] = set()

    @staticmethod
    def _kind(error: BaseException) -> tuple:
        failures = getattr(error, "exceptions", None)
        if failures:
            return tuple(
                sorted((getattr(f, "code", ""), getattr(f, "title", "")) for f in failures)
            )
        return (type(error).__name__, str(error)[:200])

    def run(self, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (Exception, BaseExceptionGroup) as error:
            if self._kind(error) not in self._kinds:
                self._kinds.add(self._kind(error))
                self.errors.append(error)
            return None

    def raise_all(self) -> None:
        if not self.errors:
            return
        error = self.errors[0]
        if len(self.errors) > 1:
            error = BaseExceptionGroup(
                f"{self.operation_id}: {len(self.errors)} distinct failures", self.errors
            )
        if SEED is not None:
            error.add_note(f"Run again with IMAGE_REPO_FUZZ_SEED={SEED}")
        raise error


@pytest.mark.parametrize(("operation_id", "method", "path"), OPERATIONS)
def test_fuzz_operation(world, schema, operation_id, method, path):
    """Fuzz one operation as the weakest group allowed to call it."""
    operation = schema[path][method]
    world.group = world.least_privileged_group(method, path)
    world.replenish()
    failures = Failures(operation_id)

    # Random cases (Hypothesis), positive and negative. Failures are collected rather
    # than raised, so one bug does not hide the next (and nothing is shrunk).
    @_seeded
    @_settings(EXAMPLES * 2)
    @given(case=_modes_strategy(operation), picks=PICKS)
    def fuzz(case, picks):
        failures.run(run_case, world, schema, operation_id, case, picks)

    failures.run(fuzz)

    # Boundary values and request-shape probes (schemathesis' coverage phase), deterministic.
    cases = schema.iter_coverage_cases(
        operation,
        generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        generation_config=schema.config.generation_for(operation=operation),
    )
    context = schemathesis.AuthContext(operation=operation, app=world.app)
    for index, case in enumerate(islice(cases, COVERAGE_CASES)):
        if world.group is not None and not schema.is_security_param_negated(case):
            schema.auth.set(case, context)
        # Every other case gets real ids.
        picks = [index * 8 + 2, index * 8 + 3, index, index] if index % 2 else None
        failures.run(run_case, world, schema, operation_id, case, picks)

    statuses = world.statuses[(operation_id, world.group or "public")]
    if operation_id not in NO_HAPPY_PATH_NEEDED and not any(200 <= s < 300 for s in statuses):
        failures.errors.append(
            AssertionError(f"{operation_id} never succeeded as {world.group}: {dict(statuses)}")
        )
    if operation_id == "uploadImage" and not (statuses[201] and statuses[200]):
        failures.errors.append(
            AssertionError(f"uploads never stored, or never deduplicated: {dict(statuses)}")
        )
    failures.raise_all()


BOUNDARY = [
    pytest.param(*operation.values, group, id=f"{operation.id}-{group}")
    for operation in OPERATIONS
    for group in (*GROUPS, OPERATOR_GROUP)
]


@pytest.mark.parametrize(("operation_id", "method", "path", "group"), BOUNDARY)
def test_permission_boundary(world, schema, operation_id, method, path, group):
    """Any caller: 403 exactly when its group lacks the operation's permission."""
    if world.is_public(method, path):
        pytest.skip("public operation")
    operation = schema[path][method]
    world.group = group
    allowed = world.allows(group, method, path)

    failures = Failures(f"{operation_id} as {group}")

    def check(case, picks):
        response = run_case(
            world, schema, operation_id, case, picks, checks=BOUNDARY_CHECKS, label="boundary"
        )
        assert response.status_code != 401, f"{group} key refused as unknown"
        if allowed:
            assert response.status_code != 403, f"{group} refused {operation_id}"
        else:
            assert response.status_code == 403, (
                f"{group} lacks the permission of {operation_id} but got {response.status_code}"
            )

    @_seeded
    @_settings(BOUNDARY_EXAMPLES)
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE), picks=PICKS)
    def fuzz(case, picks):
        failures.run(check, case, picks)

    failures.run(fuzz)
    failures.raise_all()
