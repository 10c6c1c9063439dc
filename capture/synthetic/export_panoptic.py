"""Write a synthetic scene as a CMU-Panoptic-format sequence tree.

Layout (as in the real Panoptic toolbox data, checked against ../shared/data/panoptic_body3d_samples)::

    <out_dir>/<seq>/calibration_<seq>.json                      cameras "00_XX", t in cm, y-down world
    <out_dir>/<seq>/hdImgs/00_XX/00_XX_<8-digit frame>.jpg       (media "images")
    <out_dir>/<seq>/hdVideos/hd_00_XX.mp4                        (media "video"; video frame n = frame n)
    <out_dir>/<seq>/hdPose3d_stage1_coco19/body3DScene_<8-digit frame>.json

Body files hold ``{version, univTime (ms), fpsType, bodies: [{id, joints19: 19 x [x, y, z, conf]}]}``
in centimetres with y down; the 15 Panoptic-15 joints get conf 1.0 (the synthetic truth is exact)
and joints 15-18 (eyes, ears; not simulated) are ``[0, 0, 0, -1]`` (invalid, as Panoptic marks them).
Only present people are written. As in Panoptic, video frame ``n`` is HD frame ``n``, so a video
holds frames ``0 .. max(frames)`` (frames not asked for are rendered for the video only). Videos
are MPEG-4 Part 2 (``mp4v``): this OpenCV build cannot encode H.264 (the real data's codec);
readers decode both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from calib.common.errors import ExportError
from calib.io_panoptic import save_panoptic_calibration, world_mm_to_panoptic_cm

BODY_DIR = "hdPose3d_stage1_coco19"
MEDIA = ("images", "video")


def body_scene_dict(people, fps: float) -> dict:
    """The body3DScene JSON content of one :class:`~capture.synthetic.world.PeopleFrame`."""
    bodies = []
    for p in np.flatnonzero(people.present):
        cm = world_mm_to_panoptic_cm(people.joints_mm[p])  # (15,3)
        joints19 = np.zeros((19, 4))
        joints19[:15, :3] = cm
        joints19[:15, 3] = 1.0
        joints19[15:, 3] = -1.0
        bodies.append({"id": int(people.ids[p]), "joints19": [round(float(x), 4) for x in joints19.ravel()]})
    fps_type = "hd_29_97" if abs(fps - 29.97) < 0.01 else f"synthetic_{fps:g}"
    return {"version": 0.7, "univTime": round(people.t_s * 1000.0, 3), "fpsType": fps_type, "bodies": bodies}


def export_panoptic_sequence(
    world,
    out_dir: str | Path,
    seq_name: str,
    frames: Iterable[int],
    media: Sequence[str] = ("images", "video"),
    jpeg_quality: int = 92,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write frames of ``world`` as a Panoptic sequence folder.

    Args:
        world: a :class:`capture.synthetic.world.SyntheticWorld`; its camera names become the
            Panoptic names (use "00_XX" names for a faithful tree).
        out_dir: parent folder; the sequence goes to ``out_dir/seq_name``.
        seq_name: sequence name (e.g. "synth_000").
        frames: frame indices to export (file numbers = frame indices).
        media: any of "images", "video" (empty: calibration and bodies only).
        jpeg_quality: JPEG quality of the images.
        progress: called as ``progress(done, total)`` after each frame.
    Returns:
        The sequence folder.
    """
    import cv2

    unknown = [m for m in media if m not in MEDIA]
    if unknown:
        raise ExportError(f"export_panoptic_sequence: unknown media {unknown}; choose from {MEDIA}")
    frames = [int(k) for k in frames]
    if not frames or min(frames) < 0:
        raise ExportError("export_panoptic_sequence: need one or more frame indices >= 0")
    seq = Path(out_dir) / seq_name
    (seq / BODY_DIR).mkdir(parents=True, exist_ok=True)
    save_panoptic_calibration(
        world.rig, seq / f"calibration_{seq_name}.json", data_source=f"synthetic seed {world.seed}"
    )
    names = world.rig.names
    writers = {}
    if "images" in media:
        for n in names:
            (seq / "hdImgs" / n).mkdir(parents=True, exist_ok=True)
    if "video" in media:
        (seq / "hdVideos").mkdir(parents=True, exist_ok=True)
        for cam in world.rig:
            path = seq / "hdVideos" / f"hd_{cam.name}.mp4"
            w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), world.fps, (cam.width, cam.height))
            if not w.isOpened():
                raise ExportError(f"{path}: OpenCV cannot open an mp4v video writer (is FFmpeg support built in?)")
            writers[cam.name] = w
    wanted = set(frames)
    steps = range(max(frames) + 1) if writers else sorted(wanted)
    try:
        for i, k in enumerate(steps):
            if k in wanted:
                with open(seq / BODY_DIR / f"body3DScene_{k:08d}.json", "w", encoding="utf-8") as fh:
                    json.dump(body_scene_dict(world.people(k), world.fps), fh)
            if writers or (k in wanted and "images" in media):
                for n, img in zip(names, world.render(k)):
                    if k in wanted and "images" in media:
                        path = seq / "hdImgs" / n / f"{n}_{k:08d}.jpg"
                        if not cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]):
                            raise ExportError(f"{path}: could not write the JPEG (disk full or no permission?)")
                    if n in writers:
                        writers[n].write(img)
            if progress is not None:
                progress(i + 1, len(steps))
    finally:
        for w in writers.values():
            w.release()
    return seq
