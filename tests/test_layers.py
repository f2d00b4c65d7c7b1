"""The house stays standing: one namespace, the layer rules, no cycles, no private reaches.

Read from the source with `ast` (nothing is imported), so these run in
milliseconds and a failure names the file and line that broke the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# repository folder -> the package it installs as
ROOMS = {"halo_live": "halo_live", "exporter": "halo_live.exporter", "indexer": "halo_live.indexer",
         "engine": "halo_live.engine", "demo": "halo_live.demo"}
BARE = ("exporter", "indexer", "engine", "demo")
# room -> the rooms it must never import (DESIGN.md, "Packages")
FORBIDDEN = {
    "halo_live.exporter": ("halo_live.indexer", "halo_live.engine", "halo_live.demo", "halo_live.cli"),
    "halo_live.indexer": ("halo_live.engine", "halo_live.demo", "halo_live.cli"),
    "halo_live.engine": ("halo_live.demo", "halo_live.cli"),
    "halo_live.demo": ("halo_live.cli",),
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = [ROOMS[rel.parts[0]], *rel.with_suffix("").parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    """Every module of the package, by its installed name."""
    return {_module_name(p): p for room in ROOMS for p in sorted((ROOT / room).rglob("*.py"))}


MODULES = _sources()


def _imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, imported name or None) for every import statement in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, node.module, alias.name) for alias in node.names]
    return found


def _targets(module: str, name: str | None, modules: dict[str, Path]) -> str:
    """The project module an import statement loads: `from pkg import sub` is `pkg.sub`."""
    if name is not None and f"{module}.{name}" in modules:
        return f"{module}.{name}"
    return module


def _room(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for _, module, imported in _imports(path):
            target = _targets(module, imported, modules)
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def layer_violations(modules: dict[str, Path]) -> list[str]:
    bad = []
    for name, path in modules.items():
        for line, module, imported in _imports(path):
            target = _targets(module, imported, modules)
            for forbidden in FORBIDDEN.get(_room(name), ()):
                if target == forbidden or target.startswith(forbidden + "."):
                    bad.append(f"{path.name}:{line}: {_room(name)} imports {target}")
    return bad


def import_cycles(modules: dict[str, Path]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph = _graph(modules)
    cycles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def _python_files_everywhere() -> list[Path]:
    return [p for folder in (*ROOMS, "tests", "bench") for p in sorted((ROOT / folder).rglob("*.py"))]


def test_the_namespace_has_every_folder():
    assert {"halo_live", "halo_live.exporter", "halo_live.indexer", "halo_live.engine",
            "halo_live.demo"} <= set(MODULES)


@pytest.mark.parametrize("path", _python_files_everywhere(), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_imports_a_bare_top_level_package(path):
    bad = [f"{path.relative_to(ROOT)}:{line}: import {module}"
           for line, module, _ in _imports(path) if module.split(".")[0] in BARE]
    assert not bad, "import through halo_live instead:\n" + "\n".join(bad)


def test_the_layer_rules_hold():
    bad = layer_violations(MODULES)
    assert not bad, "\n".join(bad)


def test_no_module_reaches_into_another_rooms_private_names():
    bad = []
    for name, path in MODULES.items():
        for line, module, imported in _imports(path):
            if (imported and imported.startswith("_") and not imported.startswith("__")
                    and module.startswith("halo_live") and _room(module) != _room(name)):
                bad.append(f"{path.relative_to(ROOT)}:{line}: from {module} import {imported}")
    assert not bad, "\n".join(bad)


def test_there_are_no_import_cycles():
    cycles = import_cycles(MODULES)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checks_see_a_broken_house(tmp_path):
    """The rules themselves: a bare import, a layer broken and a cycle are all caught."""
    files = {
        "halo_live.exporter.a": "from halo_live.engine import tools\nimport engine.tools\n",
        "halo_live.engine.tools": "from halo_live.engine import store\n",
        "halo_live.engine.store": "def f():\n    from halo_live.engine.tools import x\n",
    }
    modules = {}
    for name, source in files.items():
        path = tmp_path / f"{name}.py"
        path.write_text(source, encoding="utf-8")
        modules[name] = path
    assert [m for _, m, _ in _imports(modules["halo_live.exporter.a"])] == [
        "halo_live.engine", "engine.tools"]
    assert layer_violations(modules) == ["halo_live.exporter.a.py:1: halo_live.exporter imports "
                                         "halo_live.engine.tools"]
    assert import_cycles(modules) == [["halo_live.engine.store", "halo_live.engine.tools"]]
