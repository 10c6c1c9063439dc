"""``selfpose3d rig``: inspect a rig (or a bare calibration file), check it, convert it.

Examples::

    selfpose3d rig                                   # the embedded default configs/rig.yaml
    selfpose3d rig configs/rigs/shelf.yaml --set volume.center_mm=[0,0,800]
    selfpose3d rig calibration_160906_band1.json --cameras 00_03,00_06 --convert out.toml --format anipose
    selfpose3d rig calibration_shelf.json --image-size 1032 776 --convert shelf.yaml --format rig
    selfpose3d rig Calib.qca.txt --videos videos/ --convert my_rig.yaml   # a rig of one video per camera

Prints each camera (name, resolution, centre in metres, focal lengths) and the volume, and checks
that every camera sees the volume centre (in front of it and inside its image); exits 1 if one
does not.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from app.config import DEFAULT_RIG
from calib.configkit import ConfigError
from calib.io import FORMATS, load_calibration, save_calibration, sniff_format
from calib.rig_config import CameraEntry, Rig, RigConfig, load_rig, save_rig
from calib.volume import point_views, volume_corners_mm
from app.commands import add_set_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "rig",
        nargs="?",
        default=None,
        help=f"rig YAML or calibration file (default: {DEFAULT_RIG.relative_to(DEFAULT_RIG.parents[1])})",
    )
    add_set_option(parser, "a rig YAML value", "--set volume.center_mm=[0,0,800]")
    parser.add_argument("--cameras", default=None, help="comma-separated camera names to keep, in this order")
    parser.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        default=None,
        help="image size for calibration formats that store none (VoxelPose JSON)",
    )
    parser.add_argument(
        "--input-format",
        default="auto",
        choices=("auto",) + FORMATS,
        help="format of a calibration-file input (default: sniffed)",
    )
    parser.add_argument("--convert", metavar="OUT", default=None, help="write the cameras to OUT")
    parser.add_argument(
        "--videos",
        metavar="DIR",
        default=None,
        help="with --convert to a rig YAML: each camera's source is the video DIR/<camera>.* "
        "(a camera without one is an error naming it)",
    )
    parser.add_argument(
        "--format",
        dest="out_format",
        default=None,
        choices=FORMATS,
        help="format of --convert (default: from OUT's suffix: .yaml rig, .toml anipose, .xml opencv, .qca.txt qualisys; pose2sim: Calib.toml in metres)",
    )


def _load(args: argparse.Namespace) -> Rig:
    path = Path(args.rig) if args.rig else DEFAULT_RIG
    names = [n for n in args.cameras.split(",") if n] if args.cameras else None
    fmt = args.input_format if args.input_format != "auto" else sniff_format(path)
    if fmt == "rig":
        rig = load_rig(path, args.overrides)
        if names:
            cams = rig.cameras.subset(names)
            entries = tuple(e for n in names for e in rig.config.cameras if e.name == n)
            rig = Rig(config=dataclasses.replace(rig.config, cameras=entries), cameras=cams, path=rig.path)
        return rig
    if args.overrides:
        raise ConfigError(f"--set applies to rig YAML files; {path} is a '{fmt}' calibration file")
    cameras = load_calibration(
        path, fmt, camera_names=names, image_size=tuple(args.image_size) if args.image_size else None
    )
    config = RigConfig(name=path.stem, cameras=tuple(CameraEntry(c.name) for c in cameras))
    return Rig(config=config, cameras=cameras, path=path)


def _report(rig: Rig) -> bool:
    vol = rig.volume
    print(f"rig '{rig.name}' ({rig.path}): {len(rig.cameras)} cameras, skeleton {rig.config.skeleton}")
    print(f"volume ({rig.volume_origin}): centre {list(vol.center_mm)} mm, size {list(vol.size_mm)} mm")
    views = {v.camera: v for v in point_views(rig.cameras, vol.center_mm)}
    print(f"{'camera':<10} {'size':>10} {'centre_m (x, y, z)':>26} {'fx':>9} {'fy':>9}  {'source':<10} volume centre")
    ok = True
    for cam in rig.cameras:
        view = views[cam.name]
        c = cam.center_mm / 1000.0
        src = rig.source(cam.name).kind
        seen = (
            f"at ({view.uv_px[0]:.0f}, {view.uv_px[1]:.0f}) px, {view.depth_mm / 1000:.2f} m away"
            if view.visible
            else "NOT SEEN" + (" (behind the camera)" if view.depth_mm <= 0 else " (outside the image)")
        )
        ok &= view.visible
        print(
            f"{cam.name:<10} {cam.width:>4}x{cam.height:<5} ({c[0]:7.3f}, {c[1]:7.3f}, {c[2]:7.3f}) "
            f"{cam.K[0, 0]:9.2f} {cam.K[1, 1]:9.2f}  {src:<10} {seen}"
        )
    corners = volume_corners_mm(vol.center_mm, vol.size_mm)
    seen_by = [sum(v.visible for v in point_views(rig.cameras, c)) for c in corners]
    print(f"volume corners seen by >= 2 cameras: {sum(n >= 2 for n in seen_by)}/8 (per corner: {seen_by})")
    sources_ok = _check_sources(rig)
    if not ok:
        print("check FAILED: some cameras do not see the volume centre (wrong volume, units or R direction?)")
    elif not sources_ok:
        print("check FAILED: some sources are missing, unreadable or not the calibration's size (see above)")
    else:
        print(
            "check ok: every camera sees the volume centre"
            + (
                ", every source opens at its calibration's size"
                if any(rig.source(n).kind in ("file", "images", "panoptic") for n in rig.names)
                else ""
            )
        )
    return ok and sources_ok


def _check_sources(rig: Rig) -> bool:
    """Open every video/image/Panoptic source: exists, decodes, frame size = calibration size."""
    from capture.source import SourceError
    from capture.sources.probe import probe_media, size_mismatch

    ok = True
    for name in rig.names:
        cfg = rig.source(name)
        try:
            info = probe_media(name, cfg.kind, cfg.uri)
        except SourceError as exc:
            print(f"source {name}: {exc}")
            ok = False
            continue
        if info is None:
            continue
        cam = rig.cameras[name]
        bad = size_mismatch(name, info, (cam.width, cam.height))
        rate = f", {info.fps:g} fps" if info.fps else ""
        count = f", {info.frames} frames" if info.frames else ""
        print(f"source {name}: {cfg.kind} {info.width}x{info.height}{rate}{count}" + (f": {bad}" if bad else ""))
        ok &= bad is None
    return ok


def video_sources(folder: Path, cameras: list[str]) -> list:
    """One ``file`` source per camera: ``folder/<camera>.<video suffix>`` (MissingInputError naming the
    cameras without a video and the videos found)."""
    from calib.common.errors import MissingInputError
    from calib.rig_config import SourceConfig

    from calib.intrinsics import VIDEO_EXTENSIONS

    videos = {p.stem: p for p in sorted(Path(folder).glob("*")) if p.suffix.lower() in VIDEO_EXTENSIONS}
    missing = [c for c in cameras if c not in videos]
    if missing:
        raise MissingInputError(
            f"--videos {folder}: no video for camera(s) {missing} (found {sorted(videos)}); "
            "name each video after its camera, e.g. cam01.mp4"
        )
    return [SourceConfig(kind="file", uri=str(videos[c].resolve())) for c in cameras]


def run(args: argparse.Namespace) -> int:
    rig = _load(args)
    if args.videos:
        if not args.convert:
            raise ConfigError("--videos sets the sources of the rig YAML that --convert OUT.yaml writes; add --convert")
        rig = load_rig(save_rig(rig, args.convert, sources=video_sources(Path(args.videos), rig.names)))
    if args.convert:
        out = Path(args.convert)
        fmt = args.out_format or "auto"
        written = (
            save_rig(rig, out)
            if fmt == "rig" or (fmt == "auto" and out.suffix in (".yaml", ".yml"))
            else save_calibration(rig.cameras, out, fmt)
        )
        print(f"wrote {written} ({fmt if fmt != 'auto' else sniff_format(written)})")
    return 0 if _report(rig) else 1
