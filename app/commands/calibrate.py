"""``selfpose3d calibrate``: board | intrinsics | extrinsics | refine | check (docs/calibration.md).

Examples::

    selfpose3d calibrate board --board charuco:7x5:100:75:DICT_4X4_50 --out board.pdf
    selfpose3d calibrate intrinsics --board charuco:7x5:100:75:DICT_4X4_50 --images calib/intr --out out/
    selfpose3d calibrate extrinsics --board charuco:7x5:100:75:DICT_4X4_50 --intrinsics out/intrinsics.yaml \\
        --images calib/extr --out out/
    selfpose3d calibrate check --rig out/rig.yaml --take take.npz
    selfpose3d calibrate refine --rig out/rig.yaml --take take.npz --out out/rig_refined.yaml

Folders: ``--images DIR`` holds one sub-folder (or one video file) per camera, named after the
camera; for extrinsics the frames of all cameras are synchronised (i-th image of every camera =
same instant). ``check`` exits with status 3 when it flags a bumped camera.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("selfpose3d.calibrate")
EXIT_BUMPED = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="calibrate_command", metavar="STEP", required=True)

    p = sub.add_parser("board", help="write a printable board (PDF/PNG), or render dry-run images through a rig")
    _board_args(p)
    p.add_argument("--out", default="board.pdf", help="output .pdf or .png (default board.pdf)")
    p.add_argument("--dpi", type=float, default=300.0, help="print resolution (default 300)")
    p.add_argument("--margin-mm", type=float, default=10.0, help="white margin around the board")
    p.add_argument(
        "--render-rig",
        default=None,
        metavar="CALIB",
        help="instead: render synthetic board views through this calibration into --out (a folder)",
    )
    p.add_argument("--frames", type=int, default=20, help="with --render-rig: number of board poses")
    p.add_argument("--seed", type=int, default=0, help="with --render-rig: random seed")

    p = sub.add_parser("intrinsics", help="per-camera intrinsics from board images or videos")
    _board_args(p)
    _sources_args(p)
    p.add_argument("--out", required=True, help="output folder: intrinsics.yaml, coverage_<camera>.png, report.txt")
    p.add_argument("--step", type=int, default=1, help="use every n-th frame (videos)")
    p.add_argument("--max-frames", type=int, default=40, help="frames kept by coverage-driven selection")
    p.add_argument("--max-blur-px", type=float, default=2.5, help="reject frames blurrier than this (sigma, px)")
    p.add_argument("--min-views", type=int, default=6, help="fewer usable views is an error")
    p.add_argument("--max-rms-px", type=float, default=1.5, help="larger RMS reprojection error is an error")
    p.add_argument(
        "--min-coverage",
        type=float,
        default=0.5,
        help="min fraction of the image (8x6 grid cells) that board corners must reach",
    )
    p.add_argument("--fix-k3", action="store_true", help="keep k3 = 0 (narrow lenses, few views)")

    p = sub.add_parser("extrinsics", help="all camera poses from a ChArUco board seen by several cameras")
    _board_args(p)
    _sources_args(p)
    p.add_argument(
        "--intrinsics",
        default=None,
        help="intrinsics.yaml from `calibrate intrinsics` (or any calibration file with the cameras); "
        "default: calibrate intrinsics from this recording too",
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder: rig.yaml, calibration_panoptic.json, calibration.toml (anipose), report.txt",
    )
    p.add_argument(
        "--world",
        default="board",
        help="'board' (board of --world-frame lies on the floor), 'wall' (it hangs upright on a wall) or 'camera:NAME'",
    )
    p.add_argument(
        "--world-frame",
        type=int,
        default=0,
        help="frame whose board lies on the floor and defines the world (default 0)",
    )
    p.add_argument("--origin-mm", default="0,0,0", help="point (in that frame, mm) that becomes the world origin")
    p.add_argument("--reference", default=None, help="bundle-adjustment reference camera")

    p = sub.add_parser("refine", help="refine extrinsics (+focal) from people: engine 3D poses + 2D detections")
    p.add_argument("--rig", required=True, help="current calibration (rig YAML or any supported file)")
    p.add_argument("--take", required=True, help="take NPZ (poses_mm, detections_2d, scores, camera_names)")
    p.add_argument("--out", required=True, help="refined rig YAML")
    p.add_argument("--fix", default=None, help="comma-separated cameras to hold fixed (default: best-agreeing one)")
    p.add_argument("--focal", action="store_true", help="also refine focal lengths")
    p.add_argument("--gate-px", type=float, default=80.0, help="max median distance to match a detection to a pose")
    p.add_argument("--outlier-px", type=float, default=8.0, help="residual above which a joint is an outlier")

    p = sub.add_parser("check", help="per-camera reprojection error of a take or a board; flags a bumped camera")
    p.add_argument("--rig", required=True, help="calibration to check (rig YAML or any supported file)")
    p.add_argument("--take", default=None, help="take NPZ (see docs/calibration.md)")
    _board_args(p, required=False)
    p.add_argument("--images", default=None, help="with --board: folder with one sub-folder per camera")
    p.add_argument("--min-px", type=float, default=6.0, help="never flag a camera below this median error")
    p.add_argument("--ratio", type=float, default=3.0, help="flag when this many times the others' median")
    p.add_argument("--gate-px", type=float, default=80.0, help="take: max distance to match detections to poses")


def _board_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument(
        "--board",
        default=None,
        help="board spec 'charuco:COLSxROWS:SQUARE_MM:MARKER_MM[:DICT]' or "
        "'checkerboard:COLSxROWS:SQUARE_MM' (squares, not inner corners)",
    )
    g.add_argument("--board-yaml", default=None, help="board spec YAML (keys of calib.boards.BoardSpec)")


def _sources_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", default=None, help="folder with one sub-folder or video per camera")
    p.add_argument(
        "--camera",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a camera's image folder or video (repeatable; instead of --images)",
    )


def run(args: argparse.Namespace) -> int:
    return {
        "board": _run_board,
        "intrinsics": _run_intrinsics,
        "extrinsics": _run_extrinsics,
        "refine": _run_refine,
        "check": _run_check,
    }[args.calibrate_command](args)


# ----------------------------------------------------------------------------------- helpers
def _spec(args):
    from calib.boards import BoardSpec
    from calib.configkit import load

    if getattr(args, "board_yaml", None):
        return load(BoardSpec, args.board_yaml)
    return BoardSpec.parse(args.board)


def _sources(args) -> dict[str, Path]:
    from calib.camera import CalibrationError
    from calib.intrinsics import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    out: dict[str, Path] = {}
    for item in getattr(args, "camera", []):
        if "=" not in item:
            raise CalibrationError(f"--camera {item!r}: expected NAME=PATH")
        name, path = item.split("=", 1)
        out[name] = Path(path)
    if args.images:
        root = Path(args.images)
        if not root.is_dir():
            raise CalibrationError(f"{root}: --images must be a folder with one sub-folder or video per camera")
        for entry in sorted(root.iterdir()):
            if entry.is_dir() or entry.suffix.lower() in VIDEO_EXTENSIONS:
                out[entry.stem] = entry
        if not out and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in root.iterdir()):
            out[root.name] = root
    if not out:
        raise CalibrationError(
            "no camera sources: pass --images DIR (one sub-folder/video per camera) or --camera NAME=PATH"
        )
    return out


def _load_rig(path: str):
    from calib.io import load_calibration

    return load_calibration(path)


def _save_rig(rig, out: Path, like: str | None = None) -> Path:
    """Write a rig YAML; when ``like`` is a rig YAML keep its sources/volume."""
    import dataclasses

    from calib.rig_config import load_rig, save_rig

    if like and Path(like).suffix.lower() in (".yaml", ".yml"):
        try:
            base = load_rig(like)
            return save_rig(dataclasses.replace(base, cameras=rig), out)
        except Exception as exc:  # not a rig YAML (e.g. OpenCV YAML): save the bare cameras
            log.debug("%s: not reused as a rig template (%s)", like, exc)
    return save_rig(rig, out)


# ----------------------------------------------------------------------------------- board
def _run_board(args) -> int:
    from calib.boards import write_board_pdf, write_board_png

    spec = _spec(args)
    if args.render_rig:
        return _render_dry_run(args, spec)
    out = Path(args.out)
    if out.suffix.lower() == ".pdf":
        write_board_pdf(spec, out, args.dpi, args.margin_mm)
    else:
        write_board_png(spec, out, args.dpi, args.margin_mm)
    w, h = spec.size_mm
    print(
        f"wrote {out}: {spec.describe()}, {w:g} x {h:g} mm + {args.margin_mm:g} mm margin. Print at 100 % "
        f"(actual size) and measure a square: it must be {spec.square_mm:g} mm."
    )
    return 0


def _render_dry_run(args, spec) -> int:
    import cv2
    import numpy as np

    from calib.board_render import BoardRenderer, floor_board_pose, rig_board_poses

    rig = _load_rig(args.render_rig)
    rng = np.random.default_rng(args.seed)
    center = np.median(rig.centers_mm, axis=0) * np.array([1.0, 1.0, 0.0]) + np.array([0.0, 0.0, 900.0])
    poses = [floor_board_pose(spec)] + rig_board_poses(rig, spec, args.frames - 1, rng, center)
    out = Path(args.out)
    for cam in rig:
        renderer = BoardRenderer(cam, spec)
        (out / cam.name).mkdir(parents=True, exist_ok=True)
        for i, pose in enumerate(poses):
            cv2.imwrite(str(out / cam.name / f"{i:06d}.png"), renderer.render(pose, noise_std=2.0, rng=rng))
    print(
        f"wrote {len(poses)} synchronised frames per camera for {rig.names} under {out} "
        "(frame 0: board on the floor, first inner corner at the world origin)"
    )
    return 0


# ----------------------------------------------------------------------------------- intrinsics
def _run_intrinsics(args) -> int:
    import cv2

    from calib.intrinsics import (
        calibrate_intrinsics,
        collect_detections,
        coverage_image,
        save_intrinsics,
        select_frames,
    )

    spec = _spec(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, lines = [], []
    for name, src in _sources(args).items():
        dets = collect_detections(src, spec, name, step=args.step, max_blur_px=args.max_blur_px)
        dets.require_detections(spec)
        chosen = select_frames(dets.detections, args.max_frames, spec=spec)
        res = calibrate_intrinsics(
            chosen,
            spec,
            dets.image_size,
            name,
            min_views=args.min_views,
            max_rms_px=args.max_rms_px,
            min_coverage=args.min_coverage,
            fix_k3=args.fix_k3,
            source=str(src),
        )
        cv2.imwrite(str(out / f"coverage_{name}.png"), coverage_image(chosen, dets.image_size))
        results.append(res)
        line = (
            f"{res.summary()}; frames read {dets.frames_read}, board in {len(dets.detections)}, "
            f"blurred {len(dets.blurred)}"
        )
        if res.coverage < 0.6:
            line += (
                f"  [warning: corners cover only {100 * res.coverage:.0f}% of the image; "
                "move the board into the corners]"
            )
        lines.append(line)
        print(line)
    save_intrinsics(results, out / "intrinsics.yaml")
    (out / "report.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out / 'intrinsics.yaml'} and coverage pictures")
    return 0


# ----------------------------------------------------------------------------------- extrinsics
def _run_extrinsics(args) -> int:
    from calib.boards import detect_board
    from calib.camera import CalibrationError
    from calib.extrinsics import calibrate_extrinsics
    from calib.intrinsics import iter_frames, load_intrinsics
    from calib.io_anipose import save_anipose_toml
    from calib.io_panoptic import save_panoptic_calibration

    spec = _spec(args)
    sources = _sources(args)
    detections = {
        name: [detect_board(img, spec, source=f"{name}/{label}") for label, img in iter_frames(src)]
        for name, src in sources.items()
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.intrinsics is None:
        intr = _intrinsics_from_recording(detections, spec, sources, out)
    else:
        intr_path = Path(args.intrinsics)
        try:
            intr = load_intrinsics(intr_path)
        except CalibrationError:
            intr = {c.name: c for c in _load_rig(args.intrinsics)}
        missing = [n for n in sources if n not in intr]
        if missing:
            raise CalibrationError(f"{intr_path}: no intrinsics for camera(s) {missing}; calibrated: {sorted(intr)}")
    world = _world(args)
    res = calibrate_extrinsics(
        [intr[n] for n in sources],
        detections,
        spec,
        world,
        reference=args.reference,
        source=str(args.images or "--camera sources"),
    )
    written = [
        _save_rig(res.rig, out / "rig.yaml"),
        save_panoptic_calibration(res.rig, out / "calibration_panoptic.json"),
        save_anipose_toml(res.rig, out / "calibration.toml"),
    ]
    report = res.report()
    (out / "report.txt").write_text(report + "\n", encoding="utf-8")
    print(report)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _intrinsics_from_recording(detections, spec, sources, out: Path) -> dict:
    """Per-camera intrinsics from the extrinsics recording itself (no separate intrinsics step)."""
    from calib.intrinsics import calibrate_intrinsics, save_intrinsics, select_frames

    results = {}
    for name, dets in detections.items():
        seen = [d for d in dets if d is not None]
        size = seen[0].image_size if seen else (1, 1)
        chosen = select_frames(seen, 40, spec=spec)
        results[name] = calibrate_intrinsics(chosen, spec, size, name, source=str(sources[name]))
        print(f"intrinsics from the recording: {results[name].summary()}")
    save_intrinsics(list(results.values()), out / "intrinsics.yaml")
    return {n: r.camera for n, r in results.items()}


def _world(args):
    from calib.camera import CalibrationError
    from calib.extrinsics import WorldFrame

    try:
        origin = tuple(float(v) for v in args.origin_mm.split(","))
        assert len(origin) == 3
    except (ValueError, AssertionError):
        raise CalibrationError(f"--origin-mm {args.origin_mm!r}: expected X,Y,Z in mm, e.g. 0,0,0") from None
    if args.world in ("board", "floor", "wall"):
        return WorldFrame("wall" if args.world == "wall" else "board", board_frame=args.world_frame, origin_mm=origin)
    if args.world.startswith("camera"):
        name = args.world.split(":", 1)[1] if ":" in args.world else None
        return WorldFrame("camera", camera=name, origin_mm=origin)
    raise CalibrationError(f"--world {args.world!r}: use 'board', 'wall' or 'camera:NAME'")


# ----------------------------------------------------------------------------------- refine / check
def _run_refine(args) -> int:
    from calib.check import check_rig, load_take, match_take
    from calib.refine import refine_extrinsics

    rig = _load_rig(args.rig)
    take = load_take(args.take)
    corr = match_take(rig, take, gate_px=args.gate_px)
    fixed = [n.strip() for n in args.fix.split(",") if n.strip()] if args.fix else None
    res = refine_extrinsics(rig, corr, fixed=fixed, refine_focal=args.focal, outlier_px=args.outlier_px)
    print(res.report(rig))
    print(check_rig(res.rig, corr).text())
    path = _save_rig(res.rig, Path(args.out), like=args.rig)
    print(f"wrote {path}")
    return 0


def _run_check(args) -> int:
    from calib.camera import CalibrationError
    from calib.check import board_correspondences, check_rig, load_take, match_take

    rig = _load_rig(args.rig)
    if args.take:
        corr = match_take(rig, load_take(args.take), gate_px=args.gate_px)
    elif args.board or args.board_yaml:
        if not args.images:
            raise CalibrationError("check with a board needs --images DIR (one sub-folder per camera)")
        from calib.boards import detect_board
        from calib.intrinsics import iter_frames

        spec = _spec(args)
        sources = _sources(args)
        detections = {
            n: [detect_board(img, spec, source=f"{n}/{label}") for label, img in iter_frames(p)]
            for n, p in sources.items()
        }
        corr = board_correspondences(rig, detections, spec)
    else:
        raise CalibrationError("check needs --take NPZ or --board SPEC --images DIR")
    report = check_rig(rig, corr, min_px=args.min_px, ratio=args.ratio)
    print(report.text())
    return EXIT_BUMPED if report.bumped else 0
