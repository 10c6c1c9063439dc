"""No import cycles between the project's modules, counting imports inside functions too (ast)."""

from __future__ import annotations

import ast
from pathlib import Path

from calib.common.paths import REPO_ROOT

PACKAGES = ("app", "capture", "engine", "viz", "training", "calib")


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its file (module level or in a function).

    ``from a.b import c`` counts as importing ``a.b.c`` when that is a module, else ``a.b``; a
    package's ``__init__`` is not counted as a dependency of its submodules (Python runs it, but a
    light ``__init__`` cannot close a cycle through code that runs later).
    """
    files = {_module_name(p, root): p for pkg in PACKAGES if (root / pkg).is_dir() for p in (root / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for t in targets:
                while t and t not in files:
                    t = t.rpartition(".")[0]
                if t and t != mod:
                    graph[mod].add(t)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_project_has_no_import_cycles():
    assert find_cycles(import_graph(REPO_ROOT)) == []


def test_a_cycle_hidden_in_a_function_is_found(tmp_path):
    (tmp_path / "calib").mkdir()
    (tmp_path / "calib" / "__init__.py").write_text("")
    (tmp_path / "calib" / "a.py").write_text("from calib.b import f\n")
    (tmp_path / "calib" / "b.py").write_text("def f():\n    from . import c\n")
    (tmp_path / "calib" / "c.py").write_text("def g():\n    import calib.a\n")
    (tmp_path / "calib" / "d.py").write_text("import calib.a\n")
    assert find_cycles(import_graph(tmp_path)) == [["calib.a", "calib.b", "calib.c"]]
