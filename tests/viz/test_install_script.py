"""scripts/install_viz_deps.sh decides what is missing and prints the exact command (fake dpkg)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from calib.common.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "install_viz_deps.sh"


def _fake_bin(tmp_path: Path, installed: set[str], uid: int) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dpkg-query").write_text(
        "#!/bin/sh\nfor p in " + " ".join(sorted(installed)) + "; do\n"
        '  [ "$p" = "$3" ] && { printf "install ok installed"; exit 0; }\ndone\nexit 1\n'
    )
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "apt-get $*" >> {tmp_path}/apt.log\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _run(env, *args):
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30)


def test_nothing_to_do_when_all_present(tmp_path):
    env = _fake_bin(tmp_path, {"libegl1", "libgl1", "libusb-1.0-0", "libegl-mesa0", "libgl1-mesa-dri"}, 1000)
    out = _run(env)
    assert out.returncode == 0 and "present" in out.stdout
    assert not (tmp_path / "apt.log").exists()


def test_non_root_prints_the_exact_command(tmp_path):
    env = _fake_bin(tmp_path, {"libegl1", "libgl1", "libegl-mesa0", "libgl1-mesa-dri"}, 1000)
    out = _run(env, "--window")
    assert out.returncode == 0
    assert "apt-get install -y --no-install-recommends libusb-1.0-0 libvulkan1 mesa-vulkan-drivers" in out.stderr
    assert _run(env, "--strict").returncode == 1
    assert not (tmp_path / "apt.log").exists()


def test_root_installs_only_the_missing_packages(tmp_path):
    env = _fake_bin(tmp_path, {"libegl1", "libgl1", "libegl-mesa0", "libgl1-mesa-dri"}, 0)
    out = _run(env, "--xvfb")
    assert out.returncode == 0, out.stderr
    log = (tmp_path / "apt.log").read_text()
    assert "install -y -qq --no-install-recommends libusb-1.0-0 xvfb xauth" in log


def test_unknown_option_is_refused(tmp_path):
    out = _run(_fake_bin(tmp_path, set(), 1000), "--gpu")
    assert out.returncode == 2 and "unknown option" in out.stderr


@pytest.mark.skipif(not SCRIPT.exists(), reason="script missing")
def test_script_is_executable():
    assert os.access(SCRIPT, os.X_OK)
