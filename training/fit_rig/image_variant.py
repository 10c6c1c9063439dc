"""``selfpose3d fit-rig --variant image``: the IMAGE-input model trained on the user's footage, no labels.

The same inputs, checks and ``labels`` stage as the detection variant (:mod:`training.fit_rig.run`:
the bundled estimator's pseudo labels under ``OUT/labels/``, every ``labels.val_every``-th frame held
out), then the four self-supervised stages of ``selfpose3d train`` with ``data.source: footage``
(:mod:`training.ssl.footage`) under ``OUT/image/<stage>/``, each starting from the previous stage's
final model (the backbone from ``image.init``, the committed synthetic light model), each validated on the
held-out frames with the label-free figures (``image.steps`` beyond one epoch is rounded up to whole
epochs). ``OUT/model.pt`` is the finetune stage's model (the live app's image route loads it); ``OUT/summary.json`` holds each stage's held-out figures.
A re-run with the same ``OUT`` skips finished stages (a stage's ``summary.json``) and resumes the
one cut short from its checkpoint.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

from training.fit_rig.config import FitRigConfig

STAGES = ("backbone", "rootnet", "posenet", "finetune")


def stage_overrides(cfg: FitRigConfig, rig_path: Path, footage: Path, labels_prefix: Path) -> list[str]:
    """``--set`` overrides of every stage's training config for this footage and budget."""
    lab, im = cfg.labels, cfg.image
    return [
        "data.source=footage",
        f"data.rig={rig_path}",
        f"data.footage={footage}",
        f"data.pseudo_labels={labels_prefix}",
        f"data.frame_interval={lab.every}",
        f"data.val_every={lab.val_every}",
        f"data.max_frames={lab.max_frames}",
        f"data.min_frames_with_people={lab.min_frames_with_people}",
        f"data.frame_cache_long_side_px={im.frame_cache_long_side_px}",
        "lr_steps=[1000]",
        f"val_frames={im.val_frames}",
        f"threads={cfg.threads}",
        f"seed={cfg.seed}",
        f"checkpoint_every_steps={cfg.checkpoint_every}",
    ]


def fit_rig_image(
    rig_path: str | Path, footage_path: str | Path | None, out: str | Path, cfg: FitRigConfig, *, detect=None
) -> dict:
    """Labels (shared with the detection variant), then the four image-model stages; the summary.

    Raises:
        CalibrationError, DatasetError, ConfigError, CheckpointError: bad input, before training.
    """
    from calib.rig_config import load_rig
    from engine.errors import CheckpointError
    from training.fit_rig import labels as lab
    from training.fit_rig.checks import check_footage, check_rig, check_run_folder
    from training.fit_rig.loop import atomic_json
    from training.fit_rig.run import movenet_detector
    from training.pseudo_labels.footage import open_footage
    from training.pseudo_labels.store import PseudoLabelSet
    from training.ssl.config import load_train_config
    from training.ssl.footage import sample_frames
    from training.ssl.trainer import train

    out = Path(out)
    rig_path = Path(rig_path).resolve()
    rig = load_rig(rig_path)
    center, size = check_rig(rig)
    footage = open_footage(footage_path if footage_path is not None else rig_path, None if footage_path else rig.name)
    check_footage(footage, rig, cfg.labels.min_frames_with_people)
    if not Path(cfg.image.init).is_file():
        raise CheckpointError(
            f"{cfg.image.init}: the image model fit-rig starts from is missing (--set image.init=PATH)"
        )
    check_run_folder(out, rig, center, size, footage.path)
    overrides = stage_overrides(cfg, rig_path, Path(footage.path).resolve(), lab.paths(out)["prefix"].resolve())
    for stage in STAGES:  # a bad recipe or data value fails now, not after the labels stage
        load_train_config(f"{cfg.image.recipe}_{stage}", [*overrides, f"init={cfg.image.init}"])
    split_path = lab.paths(out)["split"]
    if not split_path.is_file():
        name = "estimator"
        if detect is None:
            detect, name = movenet_detector(cfg.labels.input_px, cfg.labels.threads)
        atomic_json(split_path, lab.run_labels(footage, rig, out, cfg.labels, detect, name))
    # the frames the trainer itself samples and trains on (labelled in every view, by frame number)
    soft = PseudoLabelSet.load(lab.paths(out)["soft"])
    lc = cfg.labels
    train_frames = len(sample_frames(soft, list(rig.names), lc.every, lc.max_frames, lc.val_every)[0])
    summary: dict = {"variant": "image", "rig": str(rig_path), "footage": str(footage.path), "stages": {}}
    init = Path(cfg.image.init)
    for stage in STAGES:
        folder = out / "image" / stage
        done = folder / "summary.json"
        if done.is_file():
            print(f"[image/{stage}] done ({done}), skipped", flush=True)
            record = json.loads(done.read_text())
        else:
            tc = load_train_config(f"{cfg.image.recipe}_{stage}", [*overrides, f"init={init}"])
            per_epoch = max(1, train_frames // tc.batch_size)  # one epoch = every training frame once
            epochs = math.ceil(cfg.image.steps / per_epoch)
            tc = replace(tc, epochs=epochs, steps_per_epoch=cfg.image.steps if epochs == 1 else 0)
            print(f"[image/{stage}] {cfg.image.steps} steps from {init} -> {folder}", flush=True)
            record = train(tc, folder)
        metrics = folder / "metrics.json"
        record["held_out"] = json.loads(metrics.read_text()) if metrics.is_file() else None
        summary["stages"][stage] = record
        init = Path(record["model"])
    shutil.copyfile(init, out / "model.pt")
    summary["model"] = str(out / "model.pt")
    atomic_json(out / "summary.json", summary)
    return summary
