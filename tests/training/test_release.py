"""Release files: float16 storage, no training-only attention net, loadable as an fp32 model."""

from __future__ import annotations

import pytest
import torch

from engine.checkpoints import load_model_file, save_checkpoint
from engine.config import load_preset
from engine.errors import CheckpointError
from engine.model import SelfPose3dModel
from calib.configkit import ConfigError
from training.ssl.release import release_model


def test_release_is_half_size_loads_as_fp32_and_drops_attention(tmp_path):
    torch.manual_seed(0)
    model = SelfPose3dModel(load_preset("light"))
    for p in model.parameters():
        p.data.normal_(0, 0.1)
    src = save_checkpoint(
        tmp_path / "run.pt", model, {"stage": "finetune", "attention_state_dict": {"w": torch.ones(1000, 100)}}
    )
    out = tmp_path / "models" / "rel.pt"
    assert release_model(src, out, evaluate=False) == {}
    assert out.stat().st_size < 0.6 * src.stat().st_size
    raw = torch.load(out, weights_only=True)
    assert "attention_state_dict" not in raw["meta"] and raw["meta"]["stage"] == "finetune"
    assert "selfpose3d train" in raw["meta"]["reproduce"]
    loaded, _ = load_model_file(out)
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert b.dtype == a.dtype, k
        if a.is_floating_point():
            torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4)


def test_release_of_a_foreign_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.pt"
    torch.save({"state_dict": {}}, bad)
    with pytest.raises(CheckpointError, match="not a selfpose3d model file"):
        release_model(bad, tmp_path / "o.pt", evaluate=False)


def test_refinement_is_set_at_release_and_on_a_re_release_keeping_weights_and_meta(tmp_path):
    torch.manual_seed(0)
    model = SelfPose3dModel(load_preset("light"))
    assert model.config.pose_net.refine.radius_mm == 80.0  # the light preset refines
    src = save_checkpoint(tmp_path / "run.pt", model, {"stage": "posenet"})
    out = tmp_path / "rel.pt"
    release_model(src, out, evaluate=False, refine_radius_mm=0)
    assert load_model_file(out)[0].config.pose_net.refine.radius_mm == 0.0
    before = torch.load(out, weights_only=True)
    release_model(out, out, evaluate=False, refine_radius_mm=60.0)  # a release file re-released in place
    after = torch.load(out, weights_only=True)
    assert after["config"]["pose_net"]["refine"]["radius_mm"] == 60.0
    assert after["meta"]["stage"] == "posenet"
    assert all(torch.equal(before["state_dict"][k], after["state_dict"][k]) for k in before["state_dict"])
    with pytest.raises(ConfigError, match="radius_mm"):
        release_model(out, out, evaluate=False, refine_radius_mm=-1.0)
    assert torch.load(out, weights_only=True)["config"]["pose_net"]["refine"]["radius_mm"] == 60.0  # file untouched
