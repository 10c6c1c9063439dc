"""``selfpose3d predict``: 3D poses from a folder of synchronised images and a calibration file.

Image layouts (camera names from the calibration):
* one frame: ``DIR/<camera>.<ext>`` per camera;
* many frames: ``DIR/<camera>/<frame>.<ext>``, frames matched by file stem across cameras.
A camera without an image for a frame is treated as a missing view (fused out).
Output: ``.json`` (people with scores and joints in mm, per frame) or ``.npz`` (arrays).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("selfpose3d.predict")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, type=Path, help="folder of synchronised images")
    parser.add_argument("--calibration", required=True, type=Path, help="calibration file (any calib format or rig YAML)")
    parser.add_argument("--format", default="auto", help="calibration format (default: sniffed)")
    parser.add_argument("--cameras", nargs="+", default=None, help="cameras to use, in order (default: all)")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", nargs="+", type=Path, help="checkpoint file(s): ours or official SelfPose3d")
    src.add_argument("--preset", help="model preset without weights (released | light), for plumbing/timing")
    parser.add_argument("--out", required=True, type=Path, help="output .json or .npz")
    parser.add_argument("--backend", default="auto", choices=["auto", "eager", "tensorrt"])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda:N")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="auto (default): bf16 only on a CPU with native bf16 and a model whose bf16 check passed")
    parser.add_argument("--compile", action="store_true", help="torch.compile the stages (eager backend)")
    parser.add_argument("--volume-center", nargs=3, type=float, default=None, metavar=("X", "Y", "Z"), help="mm")
    parser.add_argument("--volume-size", nargs=3, type=float, default=None, metavar=("X", "Y", "Z"), help="mm")


def _find_image(folder: Path, stem: str) -> Path | None:
    for ext in IMAGE_EXTS:
        for cand in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if cand.is_file():
                return cand
    return None


def list_frames(images: Path, cameras: list[str]) -> list[tuple[str, list[Path | None]]]:
    """[(frame name, per-camera path or None)] for either folder layout."""
    if not images.is_dir():
        raise FileNotFoundError(f"--images {images}: not a folder")
    if any((images / c).is_dir() for c in cameras):
        stems = sorted({p.stem for c in cameras if (images / c).is_dir()
                        for p in (images / c).iterdir() if p.suffix.lower() in IMAGE_EXTS})
        return [(s, [_find_image(images / c, s) for c in cameras]) for s in stems]
    paths = [_find_image(images, c) for c in cameras]
    if not any(paths):
        raise FileNotFoundError(
            f"--images {images}: no image named after any camera {cameras} (expected <camera>.jpg or <camera>/<frame>.jpg)")
    return [(images.name, paths)]


def run(args: argparse.Namespace) -> int:
    import cv2

    from calib.io import load_calibration
    from engine.api import load_model

    rig = load_calibration(args.calibration, args.format, camera_names=args.cameras)
    center, size = args.volume_center, args.volume_size
    if args.calibration.suffix.lower() in (".yaml", ".yml") and (center is None or size is None):
        from calib.rig_config import load_rig

        vol = load_rig(args.calibration).volume
        center = center or list(vol.center_mm)
        size = size or list(vol.size_mm)
    predictor = load_model(args.preset or [str(p) for p in args.checkpoint], rig, backend=args.backend,
                           device=args.device, precision=args.precision, compile=args.compile,
                           volume_center_mm=center, volume_size_mm=size)
    frames = list_frames(args.images, rig.names)
    results, cands, props, names = [], [], [], []
    for name, paths in frames:
        present = [p is not None for p in paths]
        images = [cv2.imread(str(p), cv2.IMREAD_COLOR) if p else np.zeros((c.height, c.width, 3), np.uint8)
                  for p, c in zip(paths, rig)]
        for p, img in zip(paths, images):
            if img is None:
                raise FileNotFoundError(f"{p}: cannot be decoded as an image")
        pred = predictor.predict_images(images, present if not all(present) else None)
        log.info("frame %s: %d people (%.0f ms)", name, pred.num_people, sum(pred.timings_ms.values()))
        results.append({"frame": name, "views_present": present, **pred.to_dict()})
        cands.append(pred.candidates)
        props.append(pred.proposals)
        names.append(name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix.lower() == ".npz":
        np.savez_compressed(args.out, candidates=np.stack(cands), proposals=np.stack(props), frames=np.array(names),
                            cameras=np.array(rig.names), joints=np.array(predictor.skeleton.joints))
    else:
        args.out.write_text(json.dumps({"cameras": rig.names, "model": predictor.config.name, "frames": results},
                                       indent=1))
    print(f"wrote {args.out}: {len(results)} frame(s), "
          f"{sum(len(r['people']) for r in results)} person detections")
    return 0
