"""``selfpose3d synth``: generate a synthetic multi-person scene.

Examples::

    selfpose3d synth --out /tmp/synth                                # configs/rig.yaml, 3 people, 10 s
    selfpose3d synth --rig ring --people 5 --seconds 4 --out /tmp/s  # generated 5-camera ring
    selfpose3d synth --config configs/synth/ring8.yaml --out /tmp/s --set detector.miss_rate=0.1
    selfpose3d synth --rig /path/calibration_160906_band1.json --media images --out /tmp/s

Writes ``OUT/<sequence>/``: a CMU-Panoptic-format tree (calibration JSON, ``hdImgs`` JPEGs and/or
``hdVideos`` mp4v videos, ``hdPose3d_stage1_coco19`` bodies in cm), plus ``truth.npz`` (3D joints,
2D projections, visibility per frame and view), ``pseudo_labels_soft.npz`` /
``pseudo_labels_hard.npz`` (simulated detector, the project's pseudo-label format) and
``config.resolved.yaml``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from calib.common.paths import CONFIGS_DIR, REPO_ROOT
from calib.configkit import ConfigError, load, write_resolved
from app.commands import add_set_option

DEFAULT_CONFIG = CONFIGS_DIR / "synth" / "default.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=str(DEFAULT_CONFIG), help="synth YAML (default: configs/synth/default.yaml)"
    )
    parser.add_argument("--rig", default=None, help="rig YAML, calibration file, or 'ring' (overrides the config)")
    parser.add_argument("--people", type=int, default=None, help="person slots (1..N present at a time)")
    parser.add_argument("--seconds", type=float, default=None, help="scene length in seconds")
    parser.add_argument("--fps", type=float, default=None, help="frame rate")
    parser.add_argument("--seed", type=int, default=None, help="world seed")
    parser.add_argument(
        "--image-size", type=int, nargs=2, metavar=("W", "H"), default=None, help="rescale every camera to this size"
    )
    parser.add_argument(
        "--media",
        nargs="*",
        choices=("images", "video"),
        default=None,
        help="media of the Panoptic tree (none: bodies and calibration only)",
    )
    parser.add_argument("--sequence", default=None, help="sequence (folder) name")
    add_set_option(parser, "a config value", "--set detector.miss_rate=0.1")
    parser.add_argument("--out", required=True, help="output folder")


def _config(args: argparse.Namespace):
    from capture.synthetic.config import SynthConfig

    overrides = list(args.overrides)
    for flag, key in (
        ("rig", "rig"),
        ("people", "people"),
        ("seconds", "seconds"),
        ("fps", "fps"),
        ("seed", "seed"),
        ("sequence", "sequence"),
    ):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.image_size is not None:
        overrides.append(f"image_size=[{args.image_size[0]},{args.image_size[1]}]")
    if args.media is not None:
        overrides.append(f"media=[{','.join(args.media)}]")
    return load(SynthConfig, args.config, overrides)


def _rig(cfg):
    """(CameraRig, volume centre, volume size) from the config's ``rig``."""
    from calib.io import load_calibration
    from capture.synthetic.rigs import ring_rig, scale_rig

    center, size = (0.0, -500.0, 800.0), (8000.0, 8000.0, 2000.0)
    if cfg.rig == "ring":
        r = cfg.ring
        rig = ring_rig(
            r.num_cameras,
            r.radius_mm,
            r.height_mm,
            r.target_mm,
            r.width,
            r.height,
            r.fov_deg,
            r.distortion,
            arc_deg=r.arc_deg,
            jitter=r.jitter,
            seed=r.seed,
        )
        center = (r.target_mm[0], r.target_mm[1], 800.0)
    else:
        path = Path(cfg.rig)
        if not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
            path = REPO_ROOT / path  # repo-relative defaults such as configs/rig.yaml work from any folder
        if path.suffix in (".yaml", ".yml"):
            from calib.rig_config import load_rig

            loaded = load_rig(path)
            rig, center, size = loaded.cameras, loaded.volume.center_mm, loaded.volume.size_mm
        else:
            rig = load_calibration(path)
    if cfg.image_size is not None:
        rig = scale_rig(rig, *cfg.image_size)
    return rig, tuple(cfg.volume_center_mm or center), tuple(cfg.volume_size_mm or size)


def _progress(done: int, total: int, started: float) -> None:
    width = 30
    filled = int(width * done / total)
    rate = done / max(time.perf_counter() - started, 1e-9)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} frames {rate:5.1f} fps")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from capture.synthetic.export_panoptic import export_panoptic_sequence
    from capture.synthetic.world import SyntheticWorld

    from calib.camera import CalibrationError

    try:
        cfg = _config(args)
        rig, center, size = _rig(cfg)
    except (ConfigError, CalibrationError) as exc:
        print(f"selfpose3d synth: {exc}", file=sys.stderr)
        return 2
    world = SyntheticWorld(
        rig,
        num_people=cfg.people,
        seed=cfg.seed,
        fps=cfg.fps,
        volume_center_mm=center,
        volume_size_mm=size,
        entries_exits=cfg.entries_exits,
        num_props=cfg.props,
        render_options=cfg.render,
    )
    out = Path(args.out)
    frames = range(cfg.num_frames)
    print(
        f"synth: {len(rig)} cameras {rig.names}, {cfg.people} people, {cfg.num_frames} frames at {cfg.fps:g} fps "
        f"-> {out / cfg.sequence}",
        file=sys.stderr,
    )
    started = time.perf_counter()
    seq = export_panoptic_sequence(
        world, out, cfg.sequence, frames, media=cfg.media, progress=lambda d, t: _progress(d, t, started)
    )
    write_resolved(cfg, seq)
    _write_truth_and_labels(world, cfg, seq, frames)
    print(f"synth: wrote {seq}", file=sys.stderr)
    return 0


def _write_truth_and_labels(world, cfg, seq: Path, frames) -> None:
    """truth.npz and (if enabled) the soft/hard pseudo-label NPZ files."""
    from training.pseudo_labels.store import LabelEntry, PseudoLabelSet, ViewLabels

    truths, entries = [], {"soft": [], "hard": []}
    for k in frames:
        truth = world.truth(k)
        truths.append(truth)
        if not cfg.pseudo_labels:
            continue
        for variant in ("soft", "hard"):
            dets = world.detect(k, cfg.detector, rng_seed=cfg.detector_seed, variant=variant, truth=truth)
            for cam, det in zip(world.rig, dets):
                labels = ViewLabels(det.joints_2d.astype(np.float32), det.scores.astype(np.float32), det.visible)
                image = f"hdImgs/{cam.name}/{cam.name}_{k:08d}.jpg"
                entries[variant].append(LabelEntry(cfg.sequence, k, cam.name, labels, image, (cam.width, cam.height)))
    np.savez_compressed(
        seq / "truth.npz",
        frame=np.array([t.frame_index for t in truths], np.int64),
        t_s=np.array([t.t_s for t in truths]),
        ids=np.stack([t.ids for t in truths]),
        present=np.stack([t.present for t in truths]),
        joints_mm=np.stack([t.joints_mm for t in truths]).astype(np.float32),
        joints_2d=np.stack([t.joints_2d for t in truths]).astype(np.float32),
        visible=np.stack([t.visible for t in truths]),
        in_image=np.stack([t.in_image for t in truths]),
        camera_names=np.array(world.rig.names),
    )
    if cfg.pseudo_labels:
        for variant, rows in entries.items():
            PseudoLabelSet(rows, variant, f"selfpose3d synth seed {cfg.seed} detector_seed {cfg.detector_seed}").save(
                seq / f"pseudo_labels_{variant}.npz"
            )
