"""Official checkpoint layouts (SPEC_STATE_DICT.txt) and our own checkpoint round trips."""

from __future__ import annotations

import re

import pytest
import torch

from calib.common.paths import REPO_ROOT
from engine.checkpoints import COCO_TO_PANOPTIC, load_model_file, load_weights, save_checkpoint
from engine.config import load_preset
from engine.errors import CheckpointError
from engine.model import build_model

from .conftest import tiny_config

SPEC_FILE = REPO_ROOT.parent / "shared" / "SPEC_STATE_DICT.txt"


def _spec_layout() -> dict[str, tuple[tuple[int, ...], str]]:
    if not SPEC_FILE.is_file():
        pytest.skip(f"{SPEC_FILE} not found")
    out = {}
    for line in SPEC_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, shape, dtype = re.match(r"(\S+) \((.*)\) (\S+)$", line.strip()).groups()
        out[key] = (tuple(int(s) for s in shape.split(",") if s.strip()), dtype)
    return out


@pytest.fixture(scope="module")
def official_sd() -> dict[str, torch.Tensor]:
    """A state dict built from the spec listing alone (independent of our model code).

    Every tensor is a distinct random constant broadcast to its shape (a one-element storage), so
    the files stay tiny and fast to write while every key still carries its own value.
    """
    gen = torch.Generator().manual_seed(0)
    sd = {}
    for key, (shape, dtype) in _spec_layout().items():
        if dtype == "int64":
            value = torch.randint(0, 1000, (1,) * len(shape), generator=gen)
        else:
            value = torch.randn((1,) * len(shape), generator=gen)
        sd[key] = value.expand(shape)
    return sd


@pytest.fixture(scope="module")
def released():
    return build_model(load_preset("released"))


def test_model_state_dict_matches_official_layout_and_counts(released):
    spec = _spec_layout()
    sd = released.state_dict()
    assert len(spec) == 790 and set(sd) == set(spec)
    wrong = [k for k in spec if tuple(sd[k].shape) != spec[k][0]]
    assert not wrong
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(released) == 55_934_862
    assert count(released.backbone) == 33_999_183
    assert count(released.backbone) + count(released.root_net) == 37_240_272
    assert count(released.attn) == 15_376_207


def _assert_loaded(model, sd, prefix=""):
    msd = model.state_dict()
    for k, v in sd.items():
        assert torch.equal(msd[prefix + k], v), k


def test_four_official_file_forms_load(tmp_path, official_sd, released):
    back = {k: v for k, v in official_sd.items() if k.startswith("backbone.")}
    root = {k: v for k, v in official_sd.items() if k.startswith(("backbone.", "root_net."))}
    assert len(back) == 338 and len(root) == 494
    coco = {k[len("backbone.") :]: v for k, v in back.items()}
    coco["final_layer.weight"] = torch.randn(17, 256, 1, 1)
    coco["final_layer.bias"] = torch.randn(17)
    files = {
        "pose_resnet_50_384x288.pth": coco,
        "backbone_epoch20.pth.tar": back,
        "cam5_rootnet_epoch2.pth.tar": {"state_dict": root},
        "cam5_posenet.pth.tar": {f"module.{k}": v for k, v in official_sd.items()},
    }
    for name, obj in files.items():
        torch.save(obj, tmp_path / name)

    r = load_weights(released, tmp_path / "pose_resnet_50_384x288.pth")
    assert r.kind == "coco-backbone" and r.parts == ["backbone"]
    idx = torch.tensor(COCO_TO_PANOPTIC)
    torch.testing.assert_close(released.backbone.final_layer.weight, coco["final_layer.weight"][idx])
    torch.testing.assert_close(released.backbone.final_layer.bias[2], coco["final_layer.bias"][11])  # mid-hip <- L-hip

    assert load_weights(released, tmp_path / "backbone_epoch20.pth.tar").parts == ["backbone"]
    _assert_loaded(released, back)
    r = load_weights(released, tmp_path / "cam5_rootnet_epoch2.pth.tar")
    assert sorted(r.parts) == ["backbone", "root_net"] and any("state_dict" in n for n in r.notes)
    _assert_loaded(released, root)
    model, reports = load_model_file(tmp_path / "cam5_posenet.pth.tar")
    assert sorted(reports[0].parts) == ["attn", "backbone", "pose_net", "root_net"]
    assert any("module." in n for n in reports[0].notes)
    _assert_loaded(model, official_sd)

    # backbone + root files only: the pose net has no weights -> error naming the part
    with pytest.raises(CheckpointError, match="pose_net"):
        load_model_file([tmp_path / "backbone_epoch20.pth.tar", tmp_path / "cam5_rootnet_epoch2.pth.tar"])
    # a model built without the attention net ignores attn.* and says so
    tiny = build_model(tiny_config())
    attn = {k: v for k, v in official_sd.items() if k.startswith("attn.")}
    torch.save({**tiny.state_dict(), **attn}, tmp_path / "with_attn.pth")
    r = load_weights(tiny, tmp_path / "with_attn.pth")
    assert "attn" not in r.parts and len(r.ignored) == 140 and "ignored" in " ".join(r.notes)


def test_missing_unexpected_and_misshaped_keys_name_file_keys_and_fix(tmp_path, official_sd, released):
    sd = dict(official_sd)
    del sd["root_net.v2v_net.output_layer.bias"]
    torch.save(sd, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"missing\.pth.*root_net.*output_layer\.bias.*preset"):
        load_weights(released, tmp_path / "missing.pth")
    sd = dict(official_sd)
    sd["pose_net.extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"extra\.pth.*unexpected keys \[extra\.weight\]"):
        load_weights(released, tmp_path / "extra.pth")
    sd = dict(official_sd)
    sd["backbone.final_layer.bias"] = torch.zeros(17)
    torch.save(sd, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"shape\.pth.*final_layer\.bias file \(17,\) vs model \(15,\)"):
        load_weights(released, tmp_path / "shape.pth")
    torch.save({"junk.weight": torch.zeros(1)}, tmp_path / "junk.pth")
    with pytest.raises(CheckpointError, match="not a SelfPose3d checkpoint"):
        load_weights(released, tmp_path / "junk.pth")


def test_unsafe_pickles_are_refused(tmp_path, tiny):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(CheckpointError, match="weights-only"):
        load_weights(build_model(tiny), tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="not found"):
        load_weights(build_model(tiny), tmp_path / "nope.pth")


def test_our_checkpoint_round_trip_rebuilds_model_from_stored_config(tmp_path):
    cfg = tiny_config(name="tiny-rt")
    model = build_model(cfg)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    path = save_checkpoint(tmp_path / "ours.pt", model, {"epoch": 3})
    loaded, reports = load_model_file(path)
    assert loaded.config == cfg and reports[0].kind == "ours"
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    other = build_model(tiny_config(name="other", pose_net=cfg.pose_net.__class__(bins=(8, 8, 8))))
    with pytest.raises(CheckpointError, match="differs"):
        load_weights(other, path)
