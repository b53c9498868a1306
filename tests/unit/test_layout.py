"""The package's layout is its flow: faces (the command line, the API) call the core, the core
chooses a route (ncfd.route) and opens the tunnel (ncfd.tunnel), both over ncfd.net; the shared
values (errors, the request, the deadline, the log) are below them all. Read from the imports
themselves with ast, every import counted: at the top, inside functions, and for type checking."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ncfd"
FACES = {"ncfd", "ncfd.__main__", "ncfd.api", "ncfd.cli", "ncfd.fdrecv", "ncfd.manual", "ncfd.options",
         "ncfd.password"}  # fmt: skip
CORE = {"ncfd.connection", "ncfd.diagnose"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(name: str) -> set[str]:
    return {module for module in _read_imports(MODULES[name].read_text()) if module != name}


def _read_imports(source: str) -> set[str]:
    """The ncfd modules source imports: `from ncfd.x import y` counts y when it is a module, else x."""
    tree = ast.parse(source)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                inner = f"{node.module}.{alias.name}"
                found.add(inner if inner in MODULES else node.module)
    return {module for module in found if module in MODULES}


GRAPH = {name: _imports(name) for name in MODULES}


def _layer(name: str) -> str:
    if name in FACES:
        return "face"
    if name in CORE:
        return "core"
    for package in ("route", "tunnel", "net"):
        if name == f"ncfd.{package}" or name.startswith(f"ncfd.{package}."):
            return package
    return "shared"


# What each layer may import, besides itself.
ALLOWED = {
    "face": {"face", "core", "net", "shared"},
    "core": {"core", "route", "tunnel", "net", "shared"},
    "route": {"net", "shared"},
    "tunnel": {"net", "shared"},
    "net": {"shared"},
    "shared": set(),
}


def test_the_layers_are_known() -> None:
    assert {"ncfd.route.choice", "ncfd.tunnel.chain", "ncfd.net.dial", "ncfd.request", "ncfd.cli"} <= set(MODULES)
    assert set(MODULES) >= FACES | CORE


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_import_follows_the_flow(name: str) -> None:
    layer = _layer(name)
    against = sorted(f"{name} ({layer}) imports {other} ({_layer(other)})" for other in GRAPH[name]
                     if _layer(other) != layer and _layer(other) not in ALLOWED[layer])  # fmt: skip
    assert not against


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports in graph, as the modules along it, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        path.append(name)
        for other in sorted(graph[name]):
            found = visit(other)
            if found:
                return found
        path.pop()
        done.add(name)
        return None

    return next((found for name in sorted(graph) if (found := visit(name))), None)


def test_the_imports_form_no_circle() -> None:
    assert _circle(GRAPH) is None


def test_a_circle_is_seen_however_long() -> None:
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("package", ["ncfd.route", "ncfd.tunnel", "ncfd.net"])
def test_a_packages_init_holds_a_docstring_and_nothing_else(package: str) -> None:
    body = ast.parse(MODULES[package].read_text()).body
    assert len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)


def test_an_import_inside_a_function_or_for_type_checking_counts(tmp_path: Path) -> None:
    source = "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from ncfd.cli import main\n"
    source += "def f():\n    from ncfd.route import choice\n    import ncfd.net.dial\n"
    assert _read_imports(source) == {"ncfd.cli", "ncfd.route.choice", "ncfd.net.dial"}
