"""``selfpose3d fit-rig``: adapt the learned detection-route model to a user's rig and footage, no labels.

Stages (each writes its output atomically under ``OUT/`` and is skipped when done; the training
stages checkpoint every ``checkpoint_every`` steps, so a re-run after Ctrl-C resumes):

1. ``labels``   ``OUT/labels/``: the bundled estimator's pseudo 2D people (resumable cache) and
   the train / held-out split (every ``val_every``-th frame held out);
2. ``rig``      ``OUT/rig/``: root + pose nets fine-tuned from the rig-agnostic model on synthetic
   motion projected through this rig and volume, with the estimator's measured error model;
3. ``ssl``      ``OUT/ssl/``: the nets self-supervised on the training frames (reprojection onto
   the pseudo 2D; roots from the triangulation engine);
4. ``validate`` ``OUT/validate.json``: label-free figures on the held-out frames for triangulate
   (the default route), the generic model, and the model after each stage;
5. ``release``  ``OUT/model.pt``: float16 release the live app loads with ``--model``.

``OUT/summary.json`` gathers the stages' records. All inputs are checked before any stage runs
(:mod:`training.fit_rig.checks`).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from calib.common.errors import DatasetError
from training.fit_rig import labels as lab
from training.fit_rig.checks import check_existing_labels, check_footage, check_rig, check_run_folder
from training.fit_rig.config import FitRigConfig
from training.fit_rig.loop import atomic_json, stage_done, start_model, train_stage
from training.fit_rig.stages import TeacherFrame, rig_step_fn, ssl_step_fn
from training.fit_rig.validate import engine_predictor, load_truth, run_engine, validate
from training.runner import Progress

STAGES = ("labels", "rig", "ssl", "validate", "release")


def movenet_detector(input_px: int, threads: int):
    """The bundled estimator as ``detect(image) -> (keypoints (N,17,3), scores (N,))`` and its name."""
    from engine.estimators import EstimatorConfig, build_estimator

    estimator = build_estimator(EstimatorConfig(input_long_side_px=input_px, threads=threads))

    def detect(image):
        people = estimator.detect([image])[0]
        return people.keypoints, people.scores

    return detect, f"movenet@{input_px}"


def fit_rig(
    rig_path: str | Path,
    footage_path: str | Path | None,
    out: str | Path,
    cfg: FitRigConfig,
    *,
    detect=None,
    detector_name: str = "",
    on_step=None,
) -> dict:
    """Run (or resume) every stage; returns the summary (also ``OUT/summary.json``).

    Args:
        rig_path: the user's rig YAML (calibrated cameras; a volume or cameras that share one).
        footage_path: videos folder / session / image tree / rig YAML; None: the rig's own sources.
        out: run folder.
        cfg: the budget's config.
        detect, detector_name: the 2D estimator (default: the bundled MoveNet at
            ``cfg.labels.input_px``); tests pass a fake.
        on_step: ``on_step(stage, step)`` after every training step (tests interrupt with it).
    Raises:
        CalibrationError, DatasetError, ConfigError, CheckpointError: bad input, before any stage runs.
    """
    from calib.rig_config import load_rig
    from training.pseudo_labels.footage import open_footage

    out = Path(out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rig = load_rig(rig_path)
    center, size = check_rig(rig)
    footage = open_footage(
        footage_path if footage_path is not None else rig_path, rig.name if footage_path is None else None
    )
    n_frames = check_footage(footage, rig, cfg.labels.min_frames_with_people)
    check_existing_labels(lab.paths(out)["detections"], rig)
    if not Path(cfg.init).is_file():
        from engine.errors import CheckpointError

        raise CheckpointError(f"{cfg.init}: the model fit-rig starts from is missing (--set init=PATH)")
    check_run_folder(out, rig, center, size, footage.path)
    cameras = rig.cameras
    print(
        f"fit-rig: rig '{rig.name}' {len(cameras)} cameras {list(rig.names)}, volume centre {list(center)} mm size "
        f"{list(size)} mm ({rig.volume_origin}); footage {footage.path}: {n_frames} frames per camera -> {out}",
        flush=True,
    )
    summary: dict = {
        "rig": str(rig_path),
        "rig_name": rig.name,
        "cameras": list(rig.names),
        "volume": {"center_mm": list(center), "size_mm": list(size), "origin": rig.volume_origin},
        "footage": str(footage.path),
        "frames_per_camera": n_frames,
        "init": str(cfg.init),
        "stages": {},
    }

    # 1. labels
    split_path = lab.paths(out)["split"]
    t0 = time.perf_counter()
    if split_path.is_file():
        print(f"[labels] done ({split_path}), skipped", flush=True)
        split = json.loads(split_path.read_text())
    else:
        if detect is None:
            detect, detector_name = movenet_detector(cfg.labels.input_px, cfg.labels.threads)
        bar: list = []

        def progress(done: int, total: int, text: str) -> None:
            if not bar:
                bar.append(Progress(total, "[labels]", every=max(1, total // 40)))
            bar[0].update(done, text)

        split = lab.run_labels(footage, rig, out, cfg.labels, detect, detector_name or "estimator", progress)
        split["stage_s"] = round(time.perf_counter() - t0, 1)
        atomic_json(split_path, split)
    data = lab.load_split(out, rig)
    summary["stages"]["labels"] = {
        k: split.get(k) for k in ("frames", "frames_with_people", "estimator", "stage_s", "people_per_frame_per_camera")
    }
    summary["stages"]["labels"].update(train_frames=len(data.train), val_frames=len(data.val))
    print(
        f"[labels] {split['frames']} frames ({split['frames_with_people']} with people in >= 2 views): "
        f"{len(data.train)} train, {len(data.val)} held out",
        flush=True,
    )

    # 2. rig
    def hook(stage):
        return (lambda step: on_step(stage, step)) if on_step is not None else None

    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    rig_dir = out / "rig"
    done = stage_done(rig_dir)
    if done is None:
        model = start_model(cfg.init)
        step = rig_step_fn(model, cameras, center, size, cfg, rng, gen)
        done = train_stage(
            "rig",
            rig_dir,
            model,
            (cfg.rig.lr_root, cfg.rig.lr_pose),
            cfg.rig.steps,
            step,
            checkpoint_every=cfg.checkpoint_every,
            rng=rng,
            gen=gen,
            meta={"trainer": "training.fit_rig", "stage": "rig", "rig": rig.name},
            on_step=hook("rig"),
        )
    else:
        print(f"[rig] done ({rig_dir / 'done.json'}), skipped", flush=True)
    summary["stages"]["rig"] = done

    # 3. ssl: roots of the training frames from the triangulation engine (the live default route)
    ssl_dir = out / "ssl"
    done = stage_done(ssl_dir)
    if done is None:
        tri = engine_predictor("triangulate", cameras, center, size)
        poses, _, _ = run_engine(tri, data.train)
        teach = [TeacherFrame(f, p[:, 2].astype(np.float32)) for f, p in zip(data.train, poses) if len(p)]
        if not teach:
            raise DatasetError(
                f"{footage.path}: triangulation finds nobody inside the volume in the training frames; "
                "check the rig's volume and calibration (selfpose3d rig, selfpose3d overlay)"
            )
        model = start_model(rig_dir / "model.pt")
        rng = np.random.default_rng(cfg.seed + 1)
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        step = ssl_step_fn(model, cameras, center, size, teach, cfg, rng, gen)
        done = train_stage(
            "ssl",
            ssl_dir,
            model,
            (cfg.ssl.lr_root, cfg.ssl.lr_pose),
            cfg.ssl.steps,
            step,
            checkpoint_every=cfg.checkpoint_every,
            rng=rng,
            gen=gen,
            meta={"trainer": "training.fit_rig", "stage": "ssl", "rig": rig.name},
            on_step=hook("ssl"),
        )
        done["teacher_frames"] = len(teach)
        atomic_json(ssl_dir / "done.json", done)
    else:
        print(f"[ssl] done ({ssl_dir / 'done.json'}), skipped", flush=True)
    summary["stages"]["ssl"] = done

    # 4. validate
    val_path = out / "validate.json"
    if val_path.is_file():
        print(f"[validate] done ({val_path}), skipped", flush=True)
        figures = json.loads(val_path.read_text())
    else:
        t0 = time.perf_counter()
        engines = {
            "triangulate": engine_predictor("triangulate", cameras, center, size),
            "generic": engine_predictor("learned", cameras, center, size, cfg.init),
            "adapted_rig": engine_predictor("learned", cameras, center, size, rig_dir / "model.pt"),
            "adapted_ssl": engine_predictor("learned", cameras, center, size, ssl_dir / "model.pt"),
        }
        truth = load_truth(Path(footage.path))
        figures = {
            "frames": [list(f.key) for f in data.val],
            "expected_people": cfg.expected_people or None,
            "engines": validate(engines, data.val, cameras, cfg.expected_people, truth),
            "stage_s": 0.0,
        }
        figures["stage_s"] = round(time.perf_counter() - t0, 1)
        atomic_json(val_path, figures)
    summary["validation"] = figures
    print_figures(figures)

    # 5. release
    release = out / "model.pt"
    if not release.is_file():
        write_release(ssl_dir / "model.pt", release, rig, summary)
    summary["release"] = str(release)
    atomic_json(out / "summary.json", summary)
    print(f"[release] {release}: selfpose3d-live --rig {rig_path} --model {release}", flush=True)
    return summary


def print_figures(figures: dict) -> None:
    """One line per engine: the validation figures."""
    print(f"[validate] {len(figures['frames'])} held-out frames", flush=True)
    for name, f in figures["engines"].items():
        cams = " / ".join(str(v) for v in f["reprojection_px_median_per_camera"].values())
        line = (
            f"  {name:12s} people/frame {f['people_per_frame_mean']}  precision {f['precision']}  "
            f"ghosts {f['ghost_rate']}  reprojection px {cams}  bone std {f['bone_length_std_mm']} mm"
        )
        if f.get("dropped_by_support_check"):
            line += f"  (support check dropped {f['dropped_by_support_check']})"
        if "recall" in f:
            line += f"  recall {f['recall']}"
        if "truth" in f:
            line += f"  MPJPE {f['truth']['mpjpe_mm']} mm AP@100 {f['truth']['ap100']}"
        print(line, flush=True)


def write_release(source: Path, out: Path, rig, summary: dict) -> None:
    """``out``: float16 weights of ``source`` (as the committed detection models), meta: the rig,
    the stages, the validation figures; written through a temporary file."""
    from engine.checkpoints import read_file
    from training.ssl.release import release_model

    tmp = out.with_suffix(".tmp.pt")
    release_model(
        source,
        tmp,
        half=True,
        evaluate=False,
        reproduce=f"selfpose3d fit-rig --rig {summary['rig']} --footage {summary['footage']}",
    )
    obj = dict(read_file(tmp))
    obj["meta"] = dict(
        obj["meta"],
        input="detections",
        trainer="training.fit_rig",
        rig=rig.name,
        rig_cameras=json.dumps(list(rig.names)),
        volume=json.dumps(summary["volume"]),
        stages=json.dumps({k: v for k, v in summary["stages"].items()}),
        validation=json.dumps(summary.get("validation", {}).get("engines", {})),
    )
    torch.save(obj, tmp)
    shutil.move(str(tmp), str(out))
