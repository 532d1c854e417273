"""The import graph of nlp/signals/timing: no circles between modules, and layers point one way.

Every import statement counts, at module level or inside a function (a function-level import is
still a dependency; deferring it only hides a circle), including ``if TYPE_CHECKING`` blocks.
"""
from __future__ import annotations

import ast
from functools import cache
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "nlp", "signals", "timing", "altsignal")
# A layer may import the layers before it, never the ones after (DESIGN.md).
LAYERS = {name: i for i, name in enumerate(PACKAGES)}


def project_modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that ``module`` imports anywhere in its source."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import sub` imports the submodule when there is one, else a name of pkg.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # `import a.b.c` of a non-module attribute: its module
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


@cache
def import_graph() -> dict[str, set[str]]:
    mods = project_modules()
    return {m: imported_modules(m, p, set(mods)) for m, p in mods.items()}


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "nlp.scoring.config" in graph["nlp.scoring.engine"]  # module level
    assert "nlp.models.artifact" in graph["nlp.scoring.engine"]  # inside __init__
    assert len(graph) > 60


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle, found one at a time: each found one is cut at one edge and the search goes on."""
    graph = {m: set(deps) for m, deps in graph.items()}
    cycles = []
    while True:
        try:
            tuple(TopologicalSorter(graph).static_order())
            return cycles
        except CycleError as exc:
            cycle = exc.args[1]
            cycles.append(cycle)
            a, b = cycle[0], cycle[1]
            graph[a].discard(b) if b in graph[a] else graph[b].discard(a)


def test_cycle_finder_finds_every_circle():
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(len(set(c)) for c in import_cycles(graph)) == [2, 3]


def test_no_import_cycles_between_modules():
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_layers_import_only_downwards():
    wrong = sorted(f"{m} imports {dep}" for m, deps in import_graph().items() for dep in deps
                   if LAYERS[dep.split(".")[0]] > LAYERS[m.split(".")[0]])
    assert not wrong, wrong


def room(module: str) -> str | None:
    """The room of a module inside its package: its sub-package, or the module itself when it sits
    at the package's top level; None for the package's own ``__init__``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else None


def two_way_ties(graph: dict[str, set[str]], package: str) -> list[tuple[str, str]]:
    edges = {(room(m), room(d)) for m, deps in graph.items() for d in deps
             if m.split(".")[0] == package == d.split(".")[0] and None not in (room(m), room(d)) and room(m) != room(d)}
    return sorted((a, b) for a, b in edges if a < b and (b, a) in edges)


def test_tie_finder_sees_rooms():
    graph = {"p.a.x": {"p.b"}, "p.b": {"p.a.y"}, "p.c": {"p.a.x"}, "p.a.y": {"p.a.x"}}
    assert two_way_ties(graph, "p") == [("p.a", "p.b")]


def test_no_two_way_ties_between_rooms_inside_a_package():
    ties = {pkg: two_way_ties(import_graph(), pkg) for pkg in ("nlp", "signals", "timing")}
    assert not any(ties.values()), ties
