"""``selfpose3d predict``: 3D poses from a folder of synchronised images and a calibration file.

Image layouts (camera names from the calibration; pairing in :mod:`capture.image_framesets`):
* one frameset: ``DIR/<camera>.<ext>`` per camera;
* many: ``DIR/<camera>/<file>.<ext>``, matched across cameras by the frame number in the file
  name whatever the camera prefix (``00_03/00_03_00000012.jpg`` and ``00_06/00_06_00000012.jpg``
  are frame 12);
* a Panoptic or ``selfpose3d synth`` tree: ``DIR/hdImgs/<camera>/...`` or ``DIR/<seq>/hdImgs/...``.
A frameset that lacks a camera is refused (exit 1, naming the frames and cameras) unless
``--allow-missing-views``, which runs it on the views present. An image that cannot be decoded
(truncated JPEG/PNG, corrupt file) is named in the summary, one line each; its frameset is
skipped (or, with ``--allow-missing-views``, run without that view). No usable frameset: exit 1.
Output: ``.json`` (people with scores and joints in mm, per frame) or ``.npz`` (arrays).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("selfpose3d.predict")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, type=Path, help="folder of synchronised images")
    parser.add_argument(
        "--calibration", required=True, type=Path, help="calibration file (any calib format or rig YAML)"
    )
    parser.add_argument("--format", default="auto", help="calibration format (default: sniffed)")
    parser.add_argument("--cameras", nargs="+", default=None, help="cameras to use, in order (default: all)")
    parser.add_argument(
        "--engine",
        choices=["auto", "image", "triangulate", "learned"],
        default="auto",
        help="route (default auto: no model -> bundled 2D estimator + triangulation; an image "
        "checkpoint -> its backbone; a detection-input checkpoint -> the estimator + that model)",
    )
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", nargs="+", type=Path, help="checkpoint file(s): ours or official SelfPose3d")
    src.add_argument("--preset", help="model preset without weights (released | light), for plumbing/timing")
    parser.add_argument(
        "--input-size",
        type=int,
        default=256,
        help="the 2D estimator's input long side in px (triangulate/learned routes)",
    )
    parser.add_argument("--out", required=True, type=Path, help="output .json or .npz")
    parser.add_argument("--backend", default="auto", choices=["auto", "eager", "tensorrt"])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda:N")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="auto (default): bf16 only on a CPU with native bf16 and a model whose bf16 check passed",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the stages (eager backend)")
    parser.add_argument("--volume-center", nargs=3, type=float, default=None, metavar=("X", "Y", "Z"), help="mm")
    parser.add_argument("--volume-size", nargs=3, type=float, default=None, metavar=("X", "Y", "Z"), help="mm")
    parser.add_argument(
        "--allow-missing-views",
        action="store_true",
        help="run framesets that lack a camera (or hold an undecodable image) on the views present "
        "(default: refuse them)",
    )


def _refuse_incomplete(pairing, allow_missing: bool) -> None:
    """SourceError naming the framesets that lack a camera, unless they are allowed."""
    from capture.source import SourceError

    incomplete = pairing.incomplete()
    if not incomplete or allow_missing:
        return
    shown = "; ".join(f"frame {f.frame}: {', '.join(pairing.missing(f))}" for f in incomplete[:5])
    more = f"; ... ({len(incomplete) - 5} more)" if len(incomplete) > 5 else ""
    raise SourceError(
        f"--images {pairing.root}: {len(incomplete)} of {len(pairing.framesets)} framesets lack a camera "
        f"({shown}{more}); add the missing images or pass --allow-missing-views to run on the views present"
    )


def run(args: argparse.Namespace) -> int:
    from calib.io import load_calibration
    from capture.image_framesets import decode_image, pair_image_folder
    from app.route import build_predictor, choose_route
    from engine.estimators import EstimatorConfig

    rig = load_calibration(args.calibration, args.format, camera_names=args.cameras)
    pairing = pair_image_folder(args.images, rig.names)
    _refuse_incomplete(pairing, args.allow_missing_views)
    center, size = args.volume_center, args.volume_size
    if args.calibration.suffix.lower() in (".yaml", ".yml") and (center is None or size is None):
        from calib.rig_config import load_rig

        vol = load_rig(args.calibration).volume
        center = center or list(vol.center_mm)
        size = size or list(vol.size_mm)
    model = args.preset or (",".join(str(p) for p in args.checkpoint) if args.checkpoint else "")
    route = choose_route(args.engine, model)
    log.info("route: %s%s (%s)", route.kind, f", model {route.model}" if route.model else "", route.reason)
    predictor = build_predictor(
        route,
        rig,
        estimator=EstimatorConfig(input_long_side_px=args.input_size),
        backend=args.backend,
        device=args.device,
        precision=args.precision,
        compile_=args.compile,
        volume_center_mm=center,
        volume_size_mm=size,
    )
    results, cands, props, names = [], [], [], []
    bad_images: list[str] = []  # one line per undecodable image
    skipped = 0
    for fs in pairing.framesets:
        images, problems = [], []
        for cam, path in zip(rig, fs.paths):
            image, problem = decode_image(path) if path is not None else (None, None)
            if problem:
                problems.append(f"frame {fs.frame}: {cam.name}: {path} {problem}")
            images.append(image)
        present = [img is not None for img in images]
        usable = any(present) and (args.allow_missing_views or not problems)
        bad_images += [p + (" (view left out)" if usable else " (frameset skipped)") for p in problems]
        if not usable:
            skipped += 1
            continue
        images = [img if img is not None else np.zeros((c.height, c.width, 3), np.uint8) for img, c in zip(images, rig)]
        pred = predictor.predict_images(images, present if not all(present) else None)
        log.info("frame %s: %d people (%.0f ms)", fs.frame, pred.num_people, sum(pred.timings_ms.values()))
        results.append({"frame": fs.frame, "views_present": present, **pred.to_dict()})
        cands.append(pred.candidates)
        props.append(pred.proposals)
        names.append(fs.frame)
    summary = (
        [
            f"undecodable images: {len(bad_images)}; framesets skipped: {skipped} of {len(pairing.framesets)}",
            *(f"  {line}" for line in bad_images),
        ]
        if bad_images or skipped
        else []
    )
    if not results:
        print("\n".join(summary))
        from capture.source import SourceError

        raise SourceError(
            f"--images {pairing.root}: none of the {len(pairing.framesets)} framesets could be used "
            "(every one has an undecodable image or no view); nothing written"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix.lower() == ".npz":
        np.savez_compressed(
            args.out,
            candidates=np.stack(cands),
            proposals=np.stack(props),
            frames=np.array(names),
            cameras=np.array(rig.names),
            joints=np.array(predictor.skeleton.joints),
        )
    else:
        args.out.write_text(
            json.dumps(
                {"cameras": rig.names, "model": route.model or route.kind, "route": route.kind, "frames": results},
                indent=1,
            )
        )
    print(f"wrote {args.out}: {len(results)} frame(s), {sum(len(r['people']) for r in results)} person detections")
    if summary:
        print("\n".join(summary))
    return 0
