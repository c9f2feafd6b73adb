"""The house rules the layout stands on, checked by reading the source (no app).

Imports are read with ``ast``, function-level imports included (they run
too, only later); imports under ``if TYPE_CHECKING:`` are left out, as they
never run.
"""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "image_repo"
TESTS = ROOT / "tests"
# Framework-free layers: they may be used from a script, a job or a test without an app.
FRAMEWORK_FREE = ("domain", "imaging", "storage", "db", "services", "transfer")
FRAMEWORKS = ("flask", "flask_smorest", "flask_cors", "flask_swagger_ui", "webargs", "werkzeug")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every import statement that runs, at any depth, outside ``if TYPE_CHECKING:``."""
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        pending.extend(ast.iter_child_nodes(node))


@cache
def imports_of(module: str) -> frozenset[str]:
    """Absolute names ``module`` imports: our modules by their module name, others as given."""
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            # ``from pkg import module`` imports the module; ``from module import name`` the module.
            found.add(candidate if candidate in modules() else base)
    return frozenset(found)


def ours(names) -> set[str]:
    return {name for name in names if name in modules()}


def test_the_walk_sees_the_package():
    assert "image_repo.http.app" in modules()
    assert "image_repo.services" in imports_of("image_repo.http.app")
    # A function-level import counts.
    assert "image_repo.storage.s3" in imports_of("image_repo.storage")


def test_no_import_cycles():
    graph = {module: ours(imports_of(module)) for module in modules()}
    cycles = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _reachable(start: str) -> set[str]:
    seen, pending = set(), [start]
    while pending:
        module = pending.pop()
        for name in imports_of(module):
            if name in modules():
                if name not in seen:
                    seen.add(name)
                    pending.append(name)
            else:
                seen.add(name)
    return seen


@pytest.mark.parametrize("layer", FRAMEWORK_FREE)
def test_framework_free_layers_never_reach_flask(layer):
    for module in (m for m in modules() if m.split(".")[1:2] == [layer]):
        reached = _reachable(module)
        frameworks = sorted(name for name in reached if name.partition(".")[0] in FRAMEWORKS)
        http = sorted(
            name
            for name in reached
            if name.startswith(("image_repo.http", "image_repo.cli", "image_repo.client"))
        )
        assert not frameworks and not http, f"{module} reaches {frameworks + http}"


EXTENSION_SUBSCRIPT = re.compile(r"""extensions\[\s*["']image_repo["']\s*\]\s*\[""")


def test_services_are_read_through_the_accessors_only():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in [*PACKAGE.rglob("*.py"), *TESTS.rglob("*.py")]
        if path != Path(__file__)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if EXTENSION_SUBSCRIPT.search(line)
    ]
    assert not offenders, f'app.extensions["image_repo"][...] outside http.context: {offenders}'


def test_nothing_uses_flask_limiter():
    # Budgets are charged through the `limits` library (services.ratelimits).
    users = [module for module in modules() if "flask_limiter" in imports_of(module)]
    assert not users


def test_the_rendition_front_touches_no_private_attribute():
    """Outside its own ``self._...``, nothing private: of Flask, werkzeug or anything else."""
    path = PACKAGE / "http" / "front.py"
    private = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not (isinstance(node.value, ast.Name) and node.value.id == "self")
    ]
    assert not private


# Optional store features are declared in BlobStore with a default (storage/base.py).
ASKS_A_STORE = re.compile(r"\b(?:hasattr|getattr)\(\s*[\w.]*(?:store|blobs?)\b", re.IGNORECASE)


def test_no_code_asks_a_store_what_it_can_do():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ASKS_A_STORE.search(line)
    ]
    assert not offenders


def test_every_optional_store_feature_has_a_default():
    from image_repo.storage import BlobStore, blob_key

    # A store with only the required methods (doing nothing): what the defaults give.
    bare = type("Bare", (BlobStore,), dict.fromkeys(BlobStore.__abstractmethods__, print))()
    key = blob_key("0" * 64)
    assert not bare.has_local_files and bare.local_path(key) is None
    assert not bare.supports_presigned_urls and bare.presigned_url(key) is None
    assert bare.cleanup_temp(timedelta(0)) == 0


def test_domain_functions_never_commit():
    """The caller owns the unit of work (image_repo.domain's docstring says who)."""
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}"
        for path in (PACKAGE / "domain").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("commit", "rollback")
    ]
    assert not offenders
