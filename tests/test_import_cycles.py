"""No import circles among the engine, config and CLI modules (deferred imports count too:
a circle hidden inside a function still ties two modules together). Imports under
``if TYPE_CHECKING:`` are left out: they never run, and a back-reference for a type annotation
(a helper module typing the object that calls it) is not a circle at import time."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "labconsole"
CHECKED = ("labconsole.engine", "labconsole.config", "labconsole.cli", "labconsole.presets")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labconsole"):
                children = {f"{node.module}.{alias.name}" for alias in node.names} & modules.keys()
                graph[name] |= children or ({node.module} & modules.keys())
            elif isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names} & modules.keys()
    return graph


def _is_type_checking_block(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.AST]:
    """Every import statement that can run: at module level or deferred in a function, not
    under ``if TYPE_CHECKING:``."""
    found: list[ast.AST] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(node, ast.If) and _is_type_checking_block(node) and child in node.body:
                continue
            pending.append(child)
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_circle_finder_sees_a_deferred_import_circle() -> None:
    assert circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_type_checking_imports_are_left_out_and_deferred_ones_kept() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from labconsole.a import A\nelse:\n    from labconsole.b import B\n"
        "def f():\n    from labconsole.c import C\n"
    )
    modules = {n.module for n in _runtime_imports(tree) if isinstance(n, ast.ImportFrom)}
    assert modules == {"typing", "labconsole.b", "labconsole.c"}


def test_engine_config_and_cli_have_no_import_circles() -> None:
    bad = [c for c in circles(import_graph()) if any(m.startswith(CHECKED) for m in c)]
    assert not bad, f"import circles: {bad}"
