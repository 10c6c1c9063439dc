"""What each stage trains, freezes and starts from (SPEC.md §1.2, §3.4).

=========  ==========================  ======================  ================================
stage      trainable                   frozen (eval-mode BN)   initialised from ``init``
=========  ==========================  ======================  ================================
backbone   backbone                    -                       backbone (optional; else scratch)
rootnet    root_net                    backbone                backbone
posenet    backbone, pose_net, attn    root_net                backbone, root_net
finetune   backbone, pose_net, attn    root_net                backbone, root_net, pose_net, attn
=========  ==========================  ======================  ================================

Heads and V2V nets that are not loaded keep upstream's N(0, 0.001²) training init.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from calib.configkit import ConfigError
from engine.checkpoints import FORMAT, load_model_file, load_weights, read_file
from engine.errors import CheckpointError
from engine.model import SelfPose3dModel, build_model

log = logging.getLogger(__name__)

ATTENTION_META_KEY = "attention_state_dict"


@dataclass(frozen=True)
class StagePolicy:
    """Parts trained, frozen and loaded in one stage.

    Attributes:
        name: stage name.
        trainable: model parts (and ``attention``) optimised.
        frozen: parts run in eval mode without gradient.
        init_parts: parts loaded from the ``init`` checkpoint.
        uses_attention: the stage has the attention net.
    """

    name: str
    trainable: tuple[str, ...]
    frozen: tuple[str, ...]
    init_parts: tuple[str, ...]
    uses_attention: bool


POLICIES: dict[str, StagePolicy] = {
    "backbone": StagePolicy("backbone", ("backbone",), (), ("backbone",), False),
    "rootnet": StagePolicy("rootnet", ("root_net",), ("backbone",), ("backbone",), False),
    "posenet": StagePolicy(
        "posenet", ("backbone", "pose_net", "attention"), ("root_net",), ("backbone", "root_net"), True
    ),
    "finetune": StagePolicy(
        "finetune",
        ("backbone", "pose_net", "attention"),
        ("root_net",),
        ("backbone", "root_net", "pose_net", "attention"),
        True,
    ),
}


def policy(stage: str) -> StagePolicy:
    """The policy of a stage name."""
    if stage not in POLICIES:
        raise ConfigError(f"unknown stage '{stage}'; use one of {list(POLICIES)}")
    return POLICIES[stage]


def _part(model: SelfPose3dModel, attention: nn.Module | None, name: str) -> nn.Module | None:
    return attention if name == "attention" else getattr(model, name, None)


def apply_modes(
    model: SelfPose3dModel, attention: nn.Module | None, pol: StagePolicy, frozen_bn: tuple[str, ...] = ()
) -> list[nn.Parameter]:
    """Set requires_grad and train/eval per part (re-apply after every ``model.train()``).

    Args:
        frozen_bn: trainable parts whose BatchNorm layers still run in eval mode (running
            statistics fixed), e.g. ``("backbone",)``.
    Returns:
        the trainable parameters.
    """
    params: list[nn.Parameter] = []
    parts = ("backbone", "root_net", "pose_net", "attention")
    for name in parts:
        module = _part(model, attention, name)
        if module is None:
            continue
        train = name in pol.trainable
        module.train(train)
        for p in module.parameters():
            p.requires_grad_(train)
        if train:
            params += list(module.parameters())
            if name in frozen_bn:
                for m in module.modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm):
                        m.eval()
    if not params:
        raise ConfigError(
            f"stage '{pol.name}': nothing to train", fix="unfreeze a part (frozen_bn, init) or pick another stage"
        )
    return params


def load_parts(model: SelfPose3dModel, path: str | Path, parts: tuple[str, ...]) -> list[str]:
    """Load only ``parts`` of a checkpoint (ours or official) into ``model``; returns those loaded.

    Raises:
        CheckpointError: a requested model part is not in the file.
    """
    obj = read_file(path)
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:  # ours: rebuild with its stored config
        scratch, reports = load_model_file(path, require_parts=())
        report = reports[0]
    else:
        scratch = build_model(model.config)
        report = load_weights(scratch, path)
    names = [("attn" if p == "attention" else p) for p in parts]
    wanted = [p for p in names if getattr(model, p, None) is not None]
    missing = [p for p in wanted if p not in report.parts]
    if missing:
        raise CheckpointError(f"{path}: holds {report.parts}, not {missing}; pass the previous stage's model file")
    for p in wanted:
        try:
            getattr(model, p).load_state_dict(getattr(scratch, p).state_dict())
        except RuntimeError as exc:
            raise CheckpointError(
                f"{path}: part '{p}' does not fit this stage's model ({exc}); "
                "use the same model preset and overrides in every stage"
            ) from None
    log.info("%s: initialised %s", path, wanted)
    return wanted


def attention_state(path: str | Path) -> Mapping[str, torch.Tensor] | None:
    """The training-only attention weights stored in a model file's meta (or a training checkpoint)."""
    obj = read_file(path)
    if not isinstance(obj, Mapping):
        return None
    meta = obj.get("meta") or {}
    if ATTENTION_META_KEY in meta:
        return meta[ATTENTION_META_KEY]
    return obj.get("attention")


def initialise(
    model: SelfPose3dModel,
    attention: nn.Module | None,
    pol: StagePolicy,
    init: str | None,
    init_attention: str | None = None,
) -> list[str]:
    """Training init, then the stage's parts from ``init`` (SPEC.md §1.2 initialisation chain)."""
    model.init_training_weights()
    loaded: list[str] = []
    if init:
        loaded = load_parts(model, init, pol.init_parts)
    if attention is not None and "attention" in pol.init_parts and attention is not getattr(model, "attn", None):
        src = init_attention or init
        state = attention_state(src) if src else None
        if state is None:
            log.warning("%s: no attention weights; the attention net starts from scratch", src)
        else:
            attention.load_state_dict({k: v.float() for k, v in state.items()})
            loaded.append("attention")
    return loaded
