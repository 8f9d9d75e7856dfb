"""The core keeps its layers: every module is placed in the table of
docs/architecture.md ("## Layers"), and imports only from its own layer or lower ones,
without cycles inside a layer. Imports inside functions count; only those under
``if TYPE_CHECKING:`` (type hints) are free."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

CORE = REPO_ROOT / "core" / "fourfold"
ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"


def _modules() -> dict[str, Path]:
    """Dotted name (``fourfold.index.layout``; a package by its ``__init__``) → file."""
    out = {}
    for path in sorted(CORE.rglob("*.py")):
        parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _table() -> list[tuple[int, list[str]]]:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        m = re.match(r"^\|\s*(\d+)\s*\|[^|]*\|(.*)\|\s*$", line)
        if m:
            rows.append((int(m.group(1)), re.findall(r"`([^`]+)`", m.group(2))))
    return rows


def _placements() -> dict[str, list[int]]:
    """Each module → the layers the table gives it (a module named on its own wins over
    its package's ``pkg.*``)."""
    exact: dict[str, list[int]] = {}
    packages: dict[str, list[int]] = {}
    for layer, names in _table():
        for name in names:
            full = "fourfold" if name == "fourfold" else f"fourfold.{name}"
            if full.endswith(".*"):
                packages.setdefault(full[:-2], []).append(layer)
            else:
                exact.setdefault(full, []).append(layer)
    out: dict[str, list[int]] = {}
    for module in MODULES:
        if module in exact:
            out[module] = exact[module]
            continue
        parts = module.split(".")
        for i in range(len(parts), 1, -1):
            if ".".join(parts[:i]) in packages:
                out[module] = packages[".".join(parts[:i])]
                break
        else:
            out[module] = []
    return out


PLACED = _placements()
LAYER = {module: layers[0] for module, layers in PLACED.items() if len(layers) == 1}


@dataclass(frozen=True)
class Import:
    module: str  # the importer
    line: int
    target: str  # the fourfold module imported
    lazy: bool  # inside a function


def _target(name: str) -> str | None:
    """The module ``name`` is, or lives in (``fourfold.index.refresh`` → ``fourfold.index``)."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in MODULES:
            return ".".join(parts)
        parts.pop()
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> list[Import]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def add(line: int, name: str, lazy: bool) -> None:
        target = _target(name)
        if target is not None and target != module:
            found.append(Import(module, line, target, lazy))

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:  # the else branch runs
                    visit(other, lazy)
                continue
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "fourfold":
                        add(child.lineno, alias.name, lazy)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    source = ".".join(base + ([child.module] if child.module else []))
                else:
                    source = child.module or ""
                if source.split(".")[0] != "fourfold":
                    continue
                for alias in child.names:
                    # ``from fourfold.index import layout`` imports the module
                    # fourfold.index.layout; ``from fourfold.index import refresh``, the package
                    add(child.lineno, f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source, lazy)
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


IMPORTS = {module: _imports(module) for module in MODULES}


def test_the_table_places_modules_that_exist():
    named = {f"fourfold.{n}" if n != "fourfold" else n for _, names in _table() for n in names}
    missing = sorted(n for n in named if n.removesuffix(".*") not in MODULES)
    assert not missing, f"docs/architecture.md's layer table names modules that do not exist: {missing}"


def test_every_module_has_exactly_one_layer():
    unplaced = sorted(m for m, layers in PLACED.items() if not layers)
    twice = sorted(f"{m} (layers {layers})" for m, layers in PLACED.items() if len(layers) > 1)
    assert not unplaced, (
        f"modules not placed in a layer: {unplaced}; add each to the table under '## Layers' in docs/architecture.md"
    )
    assert not twice, f"modules placed in more than one layer: {twice}"


def test_no_module_imports_from_a_higher_layer():
    wrong = [
        f"{i.module}:{i.line} imports {i.target} (layer {LAYER[i.target]}) from layer {LAYER[i.module]}"
        for imports in IMPORTS.values()
        for i in imports
        if i.module in LAYER and i.target in LAYER and LAYER[i.target] > LAYER[i.module]
    ]
    assert not wrong, "imports against the layer order (docs/architecture.md, '## Layers'):\n" + "\n".join(wrong)


def test_no_import_cycle_inside_a_layer_at_module_level():
    graph = {
        m: sorted({i.target for i in imports if not i.lazy and LAYER.get(i.target) == LAYER.get(m)})
        for m, imports in IMPORTS.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            # a package importing its own modules is how a package exposes them
            if nxt.startswith(node + ".") and MODULES[node].name == "__init__.py":
                continue
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module)
    assert not cycles, "modules importing each other at module level:\n" + "\n".join(" → ".join(c) for c in cycles)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from fourfold.domain import Domain\n", "fourfold.domain"),
        ("def f():\n    from fourfold import domain\n", "fourfold.domain"),
        ("import fourfold\n", "fourfold"),
        ("from fourfold import __version__\n", "fourfold"),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fourfold.domain import Domain\n", None),
    ],
)
def test_the_check_sees_every_kind_of_import(tmp_path, monkeypatch, source, expected):
    module = "fourfold.errors"
    file = tmp_path / "errors.py"
    file.write_text(source, encoding="utf-8")
    monkeypatch.setitem(MODULES, module, file)
    targets = [i.target for i in _imports(module)]
    assert targets == ([expected] if expected else [])
