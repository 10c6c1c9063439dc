"""Checkpoint reading/writing: our own files (config + weights) and the official SelfPose3d files.

Official files (SPEC §2.9), all accepted with or without a ``{'state_dict': ...}`` wrapper and a
``module.`` prefix:

* ``pose_resnet_50_384x288.pth``: COCO SimpleBaseline backbone, keys without prefix, 17 joint
  channels remapped to Panoptic-15 with ``COCO_TO_PANOPTIC``;
* ``backbone_epoch20.pth.tar``: ``backbone.*``;
* ``cam5_rootnet_epoch2.pth.tar``: ``backbone.*`` + ``root_net.*``;
* ``cam5_posenet.pth.tar``: ``backbone.*`` + ``attn.*`` + ``pose_net.*`` + ``root_net.*``.

Every part present in a file is loaded strictly: a missing, unexpected or mis-shaped key is a
:class:`CheckpointError` naming the file, the keys and the fix. Files are read with
``torch.load(weights_only=True, map_location='cpu')`` (no code execution).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import torch

from engine.config import ModelConfig
from engine.errors import CheckpointError
from engine.model import SelfPose3dModel, build_model

log = logging.getLogger(__name__)

FORMAT = "selfpose3d-live/model"
FORMAT_VERSION = 1
PARTS = ("backbone", "attn", "root_net", "pose_net")
INFERENCE_PARTS = ("backbone", "root_net", "pose_net")
COCO_TO_PANOPTIC = (5, 0, 11, 5, 7, 9, 11, 13, 15, 6, 8, 10, 12, 14, 16)
_MAX_LISTED = 8


@dataclass
class LoadReport:
    """What a load did.

    Attributes:
        path: the file.
        kind: ``ours`` | ``official-model`` | ``coco-backbone``.
        parts: model parts whose weights came from this file.
        ignored: keys present in the file but deliberately not loaded (e.g. ``attn.*`` into a
            model built without the training-only attention net).
        notes: human-readable remarks (remaps, wrappers, prefixes stripped).
    """

    path: str
    kind: str
    parts: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _listed(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    more = f" ... (+{len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
    return ", ".join(keys[:_MAX_LISTED]) + more


def read_file(path: str | Path) -> object:
    """``torch.load`` a checkpoint safely on CPU; unreadable files raise CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found (check the path)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad checkpoint
        why = (str(exc).strip().splitlines() or [""])[0]  # torch's messages run to several lines
        raise CheckpointError(
            f"{path}: cannot be read as a weights-only torch checkpoint ({type(exc).__name__}: {why}); "
            "only plain state dicts are accepted (re-save it with torch.save(model.state_dict()))"
        ) from None


def _state_dict_of(obj: object, path: Path, report: LoadReport) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
        report.notes.append("unwrapped {'state_dict': ...}")
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: does not hold a state dict of tensors; pass a model checkpoint")
    sd = dict(obj)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
        report.notes.append("stripped 'module.' prefix")
    return sd


def _check_part(path: Path, part: str, expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> None:
    missing = set(expected) - set(given)
    unexpected = set(given) - set(expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: part '{part}' does not match the model: missing keys [{_listed(missing)}], "
            f"unexpected keys [{_listed(unexpected)}]; the file was written for another model "
            "configuration: load it with the matching preset/config (e.g. --preset released)"
        )
    wrong = [
        f"{k} file {tuple(given[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    if wrong:
        raise CheckpointError(
            f"{path}: part '{part}' has shape mismatches: {_listed(wrong)}; build the model with the "
            "config the file was trained with"
        )


def _split_parts(sd: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        head, _, rest = key.partition(".")
        parts.setdefault(head, {})[rest] = value
    return parts


def load_state_dict_into(
    model: SelfPose3dModel, sd: Mapping[str, torch.Tensor], path: str | Path, report: LoadReport
) -> LoadReport:
    """Load a full-model-layout state dict part by part, strictly; returns the report."""
    path = Path(path)
    parts = _split_parts(sd)
    unknown = set(parts) - set(PARTS)
    if unknown:
        keys = [f"{p}.{k}" for p in unknown for k in parts[p]]
        raise CheckpointError(
            f"{path}: unexpected keys [{_listed(keys)}] (top-level parts {sorted(unknown)} are not "
            f"model parts {list(PARTS)}); this is not a SelfPose3d checkpoint"
        )
    for part, given in parts.items():
        module = getattr(model, part, None)
        if module is None:
            report.ignored += [f"{part}.{k}" for k in given]
            report.notes.append(f"'{part}.*' ({len(given)} tensors) ignored: model built without it")
            continue
        expected = module.state_dict()
        counters = [k for k in expected if k.endswith("num_batches_tracked") and k not in given]
        if counters:  # files saved by PyTorch < 0.4.1 (e.g. the COCO SimpleBaseline) have no BN counters
            given = {**given, **{k: expected[k] for k in counters}}
            report.notes.append(
                f"{part}: {len(counters)} BatchNorm num_batches_tracked counters absent "
                "(pre-0.4.1 file); kept the model's (they do not affect inference)"
            )
        _check_part(path, part, expected, given)
        module.load_state_dict(given, strict=True)
        report.parts.append(part)
    log.info("%s: loaded %s%s", path, report.parts, f"; {'; '.join(report.notes)}" if report.notes else "")
    return report


def _load_coco_backbone(
    model: SelfPose3dModel, sd: dict[str, torch.Tensor], path: Path, report: LoadReport
) -> LoadReport:
    J = model.config.num_joints
    sd = dict(sd)
    channels = sd["final_layer.weight"].shape[0]
    if channels != J:
        if channels != 17 or J != len(COCO_TO_PANOPTIC):
            raise CheckpointError(
                f"{path}: final_layer has {channels} channels; only COCO-17 -> Panoptic-15 remaps are known"
            )
        idx = torch.tensor(COCO_TO_PANOPTIC)
        sd["final_layer.weight"] = sd["final_layer.weight"][idx].clone()
        sd["final_layer.bias"] = sd["final_layer.bias"][idx].clone()
        report.notes.append("final_layer remapped COCO-17 -> Panoptic-15")
    return load_state_dict_into(model, {f"backbone.{k}": v for k, v in sd.items()}, path, report)


def load_weights(model: SelfPose3dModel, path: str | Path) -> LoadReport:
    """Load one checkpoint file (ours or an official one) into ``model``, strictly per part."""
    path = Path(path)
    obj = read_file(path)
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        report = LoadReport(str(path), "ours")
        stored = ModelConfig.from_dict(obj["config"])
        if stored != model.config:
            raise CheckpointError(
                f"{path}: stored model config '{stored.name}' differs from the model's '{model.config.name}'; "
                "rebuild the model from the file with engine.checkpoints.load_model_file()"
            )
        return load_state_dict_into(model, obj["state_dict"], path, report)
    report = LoadReport(str(path), "official-model")
    sd = _state_dict_of(obj, path, report)
    if "final_layer.weight" in sd and "conv1.weight" in sd:
        report.kind = "coco-backbone"
        return _load_coco_backbone(model, sd, path, report)
    return load_state_dict_into(model, sd, path, report)


def load_model_file(
    paths: str | Path | Iterable[str | Path],
    config: ModelConfig | None = None,
    require_parts: Iterable[str] = INFERENCE_PARTS,
) -> tuple[SelfPose3dModel, list[LoadReport]]:
    """Build a model and load one or more checkpoint files into it, in order.

    Args:
        paths: one file or several (e.g. ``backbone_epoch20.pth.tar`` then ``cam5_rootnet_epoch2.pth.tar``).
        config: model config; default: the one stored in our file, else the released preset.
        require_parts: parts that must have been loaded by some file.
    Returns:
        (model in eval mode, one LoadReport per file).
    """
    from engine.config import load_preset
    from engine.precision import parse_bf16_check

    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not paths:
        raise CheckpointError("no checkpoint file given; pass --checkpoint FILE or --preset NAME")
    first = read_file(paths[0]) if config is None else None
    ours = isinstance(first, Mapping) and first.get("format") == FORMAT
    if config is None:
        config = ModelConfig.from_dict(first["config"]) if ours else load_preset("released")
    model = build_model(config)
    reports = [load_weights(model, p) for p in paths]
    # read by precision 'auto': the release-time bf16 deviation record of a single file of ours
    model.bf16_check = parse_bf16_check(first.get("meta")) if ours and len(paths) == 1 else None
    loaded = {part for r in reports for part in r.parts}
    missing = [p for p in require_parts if p not in loaded]
    if missing:
        raise CheckpointError(
            f"{', '.join(str(p) for p in paths)}: no weights for {missing}; add the file that holds them "
            "(e.g. cam5_posenet.pth.tar holds backbone, root_net and pose_net)"
        )
    return model, reports


INPUT_KINDS = ("images", "detections")


def model_input(paths: str | Path | Iterable[str | Path]) -> str:
    """What a model's trained parts take: ``images`` (a trained image backbone) or ``detections``
    (root/pose nets trained on 2D detections; the backbone is untrained). Our files say it in
    ``meta["input"]``; official SelfPose3d files, and ours without the key, take images."""
    first = Path(paths) if isinstance(paths, (str, Path)) else Path(next(iter(paths)))
    obj = read_file(first)
    meta = obj.get("meta", {}) if isinstance(obj, Mapping) and obj.get("format") == FORMAT else {}
    kind = str(meta.get("input", "images"))
    if kind not in INPUT_KINDS:
        raise CheckpointError(f"{first}: meta 'input' is {kind!r}, expected one of {INPUT_KINDS}")
    return kind


def save_checkpoint(path: str | Path, model: SelfPose3dModel, meta: Mapping | None = None) -> Path:
    """Write our checkpoint: ``{format, version, config, state_dict, meta}`` (weights-only loadable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "config": model.config.to_dict(),
            "state_dict": model.state_dict(),
            "meta": dict(meta or {}),
        },
        path,
    )
    return path


def weights_hash(model: torch.nn.Module, length: int = 16) -> str:
    """Stable hash of a module's state dict (used to key compiled-engine caches)."""
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(str(tuple(value.shape)).encode())
        h.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:length]
