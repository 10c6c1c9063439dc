"""Enforce DESIGN.md §2: which top-level package may import which (static, via ast)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from calib.common.paths import REPO_ROOT

ROOT = REPO_ROOT
PACKAGES = ("app", "capture", "engine", "viz", "training", "calib")
ALLOWED = {
    "app": {"capture", "engine", "training", "viz", "calib"},
    "training": {"engine", "capture", "calib"},
    "viz": {"capture", "calib"},
    "engine": {"calib"},
    "capture": {"calib"},
    "calib": set(),
}
# Shared definitions live at the very bottom, in calib.common (skeletons, joint maps, the heatmap
# codec, paths, MPJPE, user errors): it may import only itself, so every package can import it.
BOTTOM = "calib.common"
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


def _violations(root: Path = ROOT) -> list[str]:
    bad = []
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            for name in _imports(path):
                top = name.split(".")[0]
                if (
                    path.is_relative_to(root / "calib" / "common")
                    and top in PACKAGES
                    and not (name == BOTTOM or name.startswith(BOTTOM + "."))
                ):
                    bad.append(f"{path.relative_to(root)} imports {name} (calib.common imports only itself)")
                if top in PACKAGES and top != pkg and top not in ALLOWED[pkg]:
                    bad.append(f"{path.relative_to(root)} imports {name} ({pkg} -> {top} not allowed)")
                if top in FORBIDDEN_LIBS.get(pkg, set()):
                    bad.append(f"{path.relative_to(root)} imports {name} ({pkg} must not use {top})")
    return bad


def test_dependency_direction_is_respected():
    assert _violations() == []


def test_checker_detects_a_violation(tmp_path):
    """The checker itself must be able to fail: plant a forbidden import and see it reported."""
    fake_root = tmp_path
    for pkg in PACKAGES:
        (fake_root / pkg).mkdir()
    (fake_root / "calib" / "bad.py").write_text("import engine.model\nfrom training import x\n")
    (fake_root / "viz" / "bad.py").write_text("import torch\nfrom calib.common.skeleton import PANOPTIC15\n")
    found = _violations(fake_root)
    assert any("calib/bad.py imports engine.model" in v for v in found)
    assert any("calib/bad.py imports training" in v for v in found)
    assert any("viz must not use torch" in v for v in found)
    assert not any("calib.common.skeleton" in v for v in found)
    (fake_root / "calib" / "common").mkdir()
    (fake_root / "calib" / "common" / "bad.py").write_text(
        "from calib.camera import Camera\nfrom calib.common import paths\n"
    )
    found = _violations(fake_root)
    assert any("calib/common/bad.py imports calib.camera" in v for v in found)
    assert not any("calib/common/bad.py imports calib.common" in v for v in found)


def _repo_root_computations(root: Path = ROOT) -> list[str]:
    """Library files that work out the checkout's folder themselves instead of using calib.common.paths."""
    bad = []
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            if path == root / "calib" / "common" / "paths.py":
                continue
            text = path.read_text(encoding="utf-8")
            if "Path(__file__)" in text and ".parents[" in text:
                bad.append(str(path.relative_to(root)))
    return bad


def test_repository_folders_are_computed_once(tmp_path):
    assert _repo_root_computations() == []
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "cfg.py").write_text("REPO = Path(__file__).resolve().parents[1]\n")
    assert _repo_root_computations(tmp_path) == ["training/cfg.py"]


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
