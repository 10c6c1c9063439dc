"""Enforce DESIGN.md §2: which top-level package may import which (static, via ast)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "capture", "engine", "viz", "training", "calib")
ALLOWED = {
    "app": {"capture", "engine", "training", "viz", "calib"},
    "training": {"engine", "capture", "calib"},
    "viz": {"capture", "calib"},
    "engine": {"calib"},
    "capture": {"calib"},
    "calib": set(),
}
# Importable by any package: the pure-Python skeleton definition.
EXCEPTIONS = {"engine.skeleton"}
# Heavy libraries a package must never import (DESIGN.md §2).
FORBIDDEN_LIBS = {"engine": {"zmq", "open3d"}, "viz": {"torch"}, "calib": {"zmq", "open3d"}}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def _violations() -> list[str]:
    bad = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for name in _imports(path):
                top = name.split(".")[0]
                if name in EXCEPTIONS or any(name.startswith(e + ".") for e in EXCEPTIONS):
                    continue
                if top in PACKAGES and top != pkg and top not in ALLOWED[pkg]:
                    bad.append(f"{path.relative_to(ROOT)} imports {name} ({pkg} -> {top} not allowed)")
                if top in FORBIDDEN_LIBS.get(pkg, set()):
                    bad.append(f"{path.relative_to(ROOT)} imports {name} ({pkg} must not use {top})")
    return bad


def test_dependency_direction_is_respected():
    assert _violations() == []


def test_checker_detects_a_violation(tmp_path):
    """The checker itself must be able to fail: plant a forbidden import and see it reported."""
    fake_root = tmp_path
    for pkg in PACKAGES:
        (fake_root / pkg).mkdir()
    (fake_root / "calib" / "bad.py").write_text("import engine.model\nfrom training import x\n")
    (fake_root / "viz" / "bad.py").write_text("import torch\nfrom engine.skeleton import PANOPTIC15\n")
    global ROOT
    saved = ROOT
    ROOT = fake_root
    try:
        found = _violations()
    finally:
        ROOT = saved
    assert any("calib/bad.py imports engine.model" in v for v in found)
    assert any("calib/bad.py imports training" in v for v in found)
    assert any("viz must not use torch" in v for v in found)
    assert not any("engine.skeleton" in v for v in found)


@pytest.mark.parametrize("pkg", ["calib", "engine", "capture", "viz", "training", "app"])
def test_package_init_is_light(pkg):
    """Importing a package must not pull in torch/open3d/zmq (DESIGN.md §2)."""
    import subprocess
    import sys

    code = (
        f"import sys, {pkg}; heavy = [m for m in ('torch', 'open3d', 'zmq') if m in sys.modules]; "
        "print(','.join(heavy)); sys.exit(1 if heavy else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, f"import {pkg} pulled in: {out.stdout.strip()} {out.stderr[-300:]}"
