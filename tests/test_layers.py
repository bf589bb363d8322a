"""The imports of ``src/hivethink`` go one way: every module imports only its own layer or lower
ones, and no modules or packages import one another in a circle.

The imports are read with ``ast`` (nothing is imported), every one of them: at the top of a
module, under ``TYPE_CHECKING`` and inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import networkx as nx
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "hivethink"

# The layers, lowest first: a module may import its own layer and the layers before it. A module
# belongs to the longest entry that is its name or a package above it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),  # the one error type and its formatter
    ("names", "answers", "trace", "display", "sandbox", "sandbox_child", "memory"),  # shared leaves
    ("prompts",),  # the prompt books: text files, their manifest
    ("models",),  # model code and weights
    ("engine",),  # the shared-cache engine (hive jobs render from prompt books)
    ("backends",),  # generate/score over the engine, a server or a script
    ("tasks",),  # data, scorers, typed outcomes (the mission judge asks a backend)
    ("metrics",),  # pure functions of a trace and a task
    ("substrates",),  # the coordination solvers (they read a metric view or two)
    ("lab",),  # grids, one sample's execution, the runner, records, judges
    # ``hivethink prompts import`` reads the authors' code and declares every book (substrates,
    # the engine, the judge): a package of its own above the lab, kept in the prompts folder.
    ("prompts.importers",),
    ("report",),  # tables, plots, the viewer, from a run's records
    ("serve",),  # the OpenAI-compatible server over the engine
    ("cli",),  # the commands
)
RANK = {f"{ROOT}.{name}": rank for rank, names in enumerate(LAYERS) for name in names}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / ROOT).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The hivethink modules ``name`` imports: ``from pkg import sub`` names the submodule when
    there is one, else the package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                out.add(sub if sub in MODULES else module)
    return {m for m in out if m == ROOT or m.startswith(ROOT + ".")}


GRAPH = nx.DiGraph()
GRAPH.add_nodes_from(MODULES)
GRAPH.add_edges_from((name, dep) for name, path in MODULES.items() for dep in _imports(name, path))


def layer_of(module: str) -> str | None:
    """The entry of :data:`LAYERS` that ``module`` belongs to (its longest prefix)."""
    prefixes = [p for p in RANK if module == p or module.startswith(p + ".")]
    return max(prefixes, key=len) if prefixes else None


def _cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    graph = nx.DiGraph(e for e in edges if e[0] != e[1])
    return [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]


def test_every_module_is_in_a_layer() -> None:
    assert [m for m in MODULES if m != ROOT and layer_of(m) is None] == []


def test_no_module_imports_a_higher_layer() -> None:
    upward = [
        f"{a} -> {b} ({layer_of(a)} is below {layer_of(b)})"
        for a, b in GRAPH.edges
        if (la := layer_of(a)) and (lb := layer_of(b)) and RANK[lb] > RANK[la]
    ]
    assert upward == []


def test_no_import_cycle_between_modules() -> None:
    assert _cycles(GRAPH.edges) == []


def _packages() -> list[str]:
    """Every package, the top one (a namespace package: no ``__init__``) first."""
    return [ROOT, *(m for m, path in MODULES.items() if path.name == "__init__.py")]


@pytest.mark.parametrize("package", _packages())
def test_no_import_cycle_between_the_parts_of_a_package(package: str) -> None:
    """Within ``package``, its modules and subpackages (each taken whole; the package's own
    ``__init__``, which re-exports them, left out) import one another without a circle. A part
    that :data:`LAYERS` makes a layer of its own counts as a unit of its own."""

    def unit(module: str) -> str | None:
        if not module.startswith(package + "."):
            return None
        head = module[: len(package) + 1 + len(module[len(package) + 1 :].split(".")[0])]
        layer = layer_of(module)
        return layer if layer is not None and len(layer) > len(head) else head

    edges = defaultdict(set)
    for a, b in GRAPH.edges:
        ua, ub = unit(a), unit(b)
        if ua and ub and ua != ub:
            edges[ua].add(ub)
    assert _cycles((a, b) for a, bs in edges.items() for b in bs) == []


def test_the_walker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The check can fail: an import inside a function is an edge, a relative one resolves."""
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f():\n    from hivethink.report import build\n    from . import trace\n")
    assert _imports("hivethink.metrics.lazy", lazy) == {"hivethink.report.build", "hivethink.metrics"}
    assert _cycles([("a", "b"), ("b", "a"), ("b", "c")]) == [["a", "b"]]
    assert RANK[layer_of("hivethink.report.build") or ""] > RANK[layer_of("hivethink.metrics.x") or ""]
