"""Checks of fit-rig's inputs, run before any stage (one clear line each, exit 2 from the CLI).

* the rig: a volume (given, or one its cameras see together), every camera seeing part of it;
* the footage: the rig's camera names, the calibrated image size, one frame count for all cameras;
* an existing run folder: made for this rig and calibration (``OUT/rig.json``), pseudo labels made
  for this rig (camera names, image sizes).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from calib.common.errors import CalibrationError, DatasetError
from calib.volume import cameras_not_seeing


def check_rig(rig) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The rig's volume (center_mm, size_mm); CalibrationError if it has none its cameras share."""
    where = rig.path or rig.name
    try:
        volume = rig.volume  # the file's, or the box 60 % of the cameras see (calib.volume)
    except CalibrationError as exc:
        raise CalibrationError(f"{where}: the rig has no volume and {exc}") from None
    blind = cameras_not_seeing(rig.cameras, volume.center_mm, volume.size_mm)
    if blind:
        raise CalibrationError(
            f"{where}: cameras {blind} see no part of the volume (center {list(volume.center_mm)} mm, size "
            f"{list(volume.size_mm)} mm, {rig.volume_origin}): fix their calibration or the rig's volume"
        )
    return tuple(volume.center_mm), tuple(volume.size_mm)


def check_footage(footage, rig, min_frames: int) -> int:
    """The footage matches the rig: camera names, first frame's size, equal frame counts.

    Returns:
        the frame count per camera.
    Raises:
        DatasetError naming the camera and what disagrees.
    """
    names, have = list(rig.names), list(footage.cameras)
    if sorted(have) != sorted(names):
        missing = [n for n in names if n not in have]
        extra = [n for n in have if n not in names]
        raise DatasetError(
            f"{footage.path}: footage cameras {have} do not match rig '{rig.name}' cameras {names} "
            f"(missing {missing}, not in the rig {extra}): name each camera's video/folder as in the rig"
        )
    counts = {s.camera: footage.frame_count(s) for s in footage.streams}
    if len(set(counts.values())) > 1:
        raise DatasetError(
            f"{footage.path}: cameras have different frame counts {counts}: the footage must be synchronised "
            "and cut to the same frames"
        )
    n = next(iter(counts.values()))
    if n < min_frames:
        raise DatasetError(f"{footage.path}: {n} frames per camera, fit-rig needs at least {min_frames}")
    cams = {c.name: c for c in rig.cameras}
    for item in footage.frames(max_frames=1):
        cam = cams[item.camera]
        if item.image is None:
            raise DatasetError(f"{item.source}: the first frame of camera '{item.camera}' does not decode")
        h, w = item.image.shape[:2]
        if (w, h) != (cam.width, cam.height):
            raise DatasetError(
                f"{item.source}: camera '{item.camera}' frames are {w}x{h} px but the rig calibrates "
                f"{cam.width}x{cam.height}: use the footage of this calibration (or rescale the calibration)"
            )
    return n


def check_existing_labels(detections_jsonl: Path, rig) -> None:
    """Pseudo labels already in the run folder were made for this rig (else DatasetError)."""
    if detections_jsonl.is_file() and detections_jsonl.stat().st_size:
        from training.fit_rig.labels import read_frames

        read_frames(detections_jsonl, rig)


def rig_fingerprint(rig, center_mm, size_mm) -> str:
    """A short hash of the cameras (names, sizes, intrinsics, distortion, pose) and the volume."""
    h = hashlib.sha256()
    for c in rig.cameras:
        h.update(f"{c.name}:{c.width}x{c.height}".encode())
        for a in (c.K, c.dist, c.R, c.t_mm):
            h.update(np.round(np.asarray(a, np.float64), 6).tobytes())
    h.update(np.round(np.asarray([*center_mm, *size_mm], np.float64), 3).tobytes())
    return h.hexdigest()[:16]


def check_run_folder(out: Path, rig, center_mm, size_mm, footage_path: str | Path) -> None:
    """``out`` is new or was started for this rig, calibration and footage (its stages would be
    reused); records them in ``out/rig.json`` on first use."""
    footage = str(Path(footage_path).resolve())
    record = {
        "rig": rig.name,
        "path": str(rig.path),
        "fingerprint": rig_fingerprint(rig, center_mm, size_mm),
        "footage": footage,
    }
    path = out / "rig.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("fingerprint") != record["fingerprint"]:
            raise DatasetError(
                f"{out}: this run folder was started for rig '{old.get('rig')}' ({old.get('path')}) with other "
                f"cameras, calibration or volume than '{rig.name}' ({rig.path}): its pseudo labels and models are "
                "for that rig; use another --out"
            )
        if old.get("footage", footage) != footage:
            raise DatasetError(
                f"{out}: this run folder was started on footage {old['footage']}, not {footage}: its pseudo labels "
                "and models are for that footage; use another --out"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
