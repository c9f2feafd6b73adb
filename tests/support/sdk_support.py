"""A Python client generated from the committed spec, and a log of the operations it called.

``generate_client`` runs openapi-python-client on ``openapi/openapi.json``
into a folder and imports the result; ``OperationLog`` maps every request the
client sends back to the spec's ``operationId``, through httpx event hooks.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT / "openapi" / "openapi.json"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def load_spec(path: Path = SPEC_PATH) -> dict:
    return json.loads(path.read_text())


def spec_operations(spec: dict) -> dict[str, tuple[str, str]]:
    """operationId -> (METHOD, path template) for every operation in the spec."""
    operations = {}
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is not None:
                operations[operation["operationId"]] = (method.upper(), path)
    return operations


def snake_case(operation_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


@dataclass
class GeneratedClient:
    """The imported package, and what the generator said while making it."""

    package: ModuleType
    root: Path
    output: str

    def api(self, operation_id: str) -> ModuleType:
        """The generated module of one operation (``api/<tag>/<snake_case id>.py``)."""
        name = snake_case(operation_id)
        found = sorted((self.root / "api").glob(f"*/{name}.py"))
        if len(found) != 1:
            raise LookupError(
                f"the generated client has {len(found)} modules for operation "
                f"{operation_id!r} (looked for api/*/{name}.py): is it still in the spec?"
            )
        tag = found[0].parent.name
        return importlib.import_module(f"{self.package.__name__}.api.{tag}.{name}")

    def model(self, name: str):
        return getattr(importlib.import_module(f"{self.package.__name__}.models"), name)

    def warnings(self) -> list[str]:
        """The generator's warnings, each once, with what it did about them."""
        found: list[str] = []
        where = ""
        for line in self.output.splitlines():
            line = re.sub(r"<[^<>]* object at 0x[0-9a-f]+>", "?", line.strip())
            if line.startswith("WARNING"):
                where = line.removeprefix("WARNING").strip().rstrip(".")
            elif line and where:
                if f"{where}: {line}" not in found:
                    found.append(f"{where}: {line}")
                where = ""
        return found


def generate_client(
    parent: Path, package: str = "image_repo_sdk", spec: Path = SPEC_PATH
) -> GeneratedClient:
    """Generate the client package ``parent/package`` from ``spec`` and import it.

    ``parent`` goes first on ``sys.path``; ``forget_client`` undoes that.
    """
    config = parent / "openapi-python-client.json"
    # No post hooks: the output does not depend on whether ruff is on PATH.
    # Nothing else: the spec alone must make a usable client.
    config.write_text(json.dumps({"post_hooks": []}))
    root = parent / package
    result = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate",
         "--path", str(spec), "--output-path", str(root), "--meta", "none",
         "--config", str(config)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"openapi-python-client failed:\n{output}"
    sys.path.insert(0, str(parent))
    importlib.invalidate_caches()
    return GeneratedClient(importlib.import_module(package), root, output)


def forget_client(client: GeneratedClient) -> None:
    name = client.package.__name__
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]
    sys.path.remove(str(client.root.parent))


@dataclass
class OperationLog:
    """Which operations requests went to, matched on method and path template."""

    spec: dict
    called: set[str] = field(default_factory=set)
    unmatched: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)

    def __post_init__(self):
        routes = []
        for operation_id, (method, path) in spec_operations(self.spec).items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))
            # Literal segments win over parameters: /images/timeline before /images/{id}.
            routes.append((path.count("{"), method, re.compile(f"^{pattern}$"), operation_id))
        self._routes = sorted(routes, key=lambda route: route[0])

    def operation_for(self, method: str, path: str) -> str | None:
        for _, route_method, pattern, operation_id in self._routes:
            if route_method == method and pattern.match(path):
                return operation_id
        return None

    def _on_request(self, request) -> None:
        operation_id = self.operation_for(request.method, request.url.path)
        if operation_id is None:
            self.unmatched.append(f"{request.method} {request.url.path}")
        else:
            self.called.add(operation_id)

    def _on_response(self, response) -> None:
        if response.status_code >= 500:
            request = response.request
            self.server_errors.append(
                f"{request.method} {request.url.path}: {response.status_code}"
            )

    def httpx_args(self) -> dict:
        """Pass as ``httpx_args`` to a generated ``Client`` / ``AuthenticatedClient``."""
        return {"event_hooks": {"request": [self._on_request], "response": [self._on_response]}}
