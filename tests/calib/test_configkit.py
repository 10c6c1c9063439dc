"""The typed-config kit: strict loading, overrides, validation, resolved dump."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from calib.configkit import ConfigError, apply_overrides, dump_yaml, from_dict, load, require, write_resolved


@dataclass(frozen=True)
class Inner:
    size_mm: tuple[float, float, float] = (8000.0, 8000.0, 2000.0)
    voxels: tuple[int, int, int] = (80, 80, 20)

    def __post_init__(self):
        require(all(v % 4 == 0 for v in self.voxels), "voxels", f"each must be divisible by 4, got {self.voxels}")


@dataclass(frozen=True)
class Outer:
    name: str = "demo"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    threads: int = 2
    out: Optional[Path] = None
    space: Inner = field(default_factory=Inner)


def test_defaults_and_nested_conversion():
    cfg = from_dict(Outer, {"space": {"size_mm": [1, 2, 3]}, "out": "runs/x"})
    assert cfg.space.size_mm == (1.0, 2.0, 3.0) and isinstance(cfg.space.size_mm[0], float)
    assert cfg.out == Path("runs/x")
    assert cfg.precision == "fp32"


def test_unknown_key_suggests():
    with pytest.raises(ConfigError, match=r"space.voxel: unknown key \(did you mean 'voxels'\?\)"):
        from_dict(Outer, {"space": {"voxel": [4, 4, 4]}})


def test_literal_and_types_name_the_field():
    with pytest.raises(ConfigError, match=r"precision: 'bf61' is not one of"):
        from_dict(Outer, {"precision": "bf61"})
    with pytest.raises(ConfigError, match=r"threads: expected an integer"):
        from_dict(Outer, {"threads": "two"})
    with pytest.raises(ConfigError, match=r"space.size_mm: expected 3 items"):
        from_dict(Outer, {"space": {"size_mm": [1, 2]}})


def test_post_init_validation_names_the_field():
    with pytest.raises(ConfigError, match=r"space: voxels: each must be divisible by 4"):
        from_dict(Outer, {"space": {"voxels": [80, 80, 21]}})


def test_overrides_parse_yaml_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: a\nspace:\n  voxels: [8, 8, 8]\n")
    cfg = load(Outer, path, ["space.size_mm=[10, 20, 30]", "precision=bf16", "threads=4"])
    assert cfg.space.voxels == (8, 8, 8) and cfg.space.size_mm == (10.0, 20.0, 30.0)
    assert cfg.precision == "bf16" and cfg.threads == 4
    assert load(Outer, path, ["space.size_mm=[1e-5, 2, 3]"]).space.size_mm[0] == 1e-5  # YAML 1.1 string
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["precision"])
    with pytest.raises(ConfigError, match="'name' is a value, not a section"):
        apply_overrides({"name": "x"}, ["name.first=y"])


def test_bad_files_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load(Outer, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(Outer, bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load(Outer, lst)
    typo = tmp_path / "typo.yaml"
    typo.write_text("nmae: x\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: nmae: unknown key \(did you mean 'name'\?\)"):
        load(Outer, typo)


def test_resolved_round_trip(tmp_path):
    cfg = from_dict(Outer, {"precision": "bf16", "space": {"voxels": [64, 64, 64]}})
    path = write_resolved(cfg, tmp_path / "run")
    assert path.name == "config.resolved.yaml"
    assert load(Outer, path) == cfg
    assert "precision: bf16" in dump_yaml(cfg)
