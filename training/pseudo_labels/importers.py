"""Importers of 2D keypoint files into :class:`~training.pseudo_labels.store.PseudoLabelSet`.

* COCO keypoint JSON: a dataset file (``images`` + ``annotations``) or a results list
  (``[{image_id, keypoints, score, bbox}]``) plus a file giving the images;
* OpenPose JSON (``*_keypoints.json``, BODY_25 or COCO-18; one file per image);
* SelfPose3d / VoxelPose database pickles (``{sequence_list, interval, cam_list, db}``, SPEC.md
  §4.6), read with an unpickler that only accepts plain containers and numpy arrays.

Images are identified by (sequence, frame, camera), parsed from the image path: the camera is the
folder holding the image, the frame the last group of digits of the file name, the sequence the
folder above the camera folder (an ``hdImgs``/``images`` level is skipped). So
``160906_band1/hdImgs/00_03/00_03_00000168.jpg`` -> (``160906_band1``, 168, ``00_03``) and
``Shelf/Camera2/img_000300.png`` -> (``Shelf``, 300, ``Camera2``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from training.datasets.db_pickle import read_db_pickle, split_db_key
from training.errors import DatasetError
from training.pseudo_labels.mapping import Detection, convert_detection, layout_for
from training.pseudo_labels.store import LabelEntry, PseudoLabelSet, ViewLabels

_DIGITS = re.compile(r"(\d+)(?!.*\d)")
_SKIP_DIRS = {"hdimgs", "images", "imgs", "frames"}


def image_key(path: str, sequence: str | None = None) -> tuple[str, int, str]:
    """(sequence, frame, camera) of an image (or keypoint-file) path; see the module docstring."""
    p = PurePosixPath(str(path).replace("\\", "/"))
    stem = p.name.split(".")[0].removesuffix("_keypoints")
    match = _DIGITS.search(stem)
    if not match:
        raise DatasetError(f"{path}: no frame number in the file name (expected digits, e.g. 00_03_00000168.jpg)")
    camera = p.parent.name or "cam0"
    parents = [q.name for q in p.parents][1:]
    parents = [q for q in parents if q and q.lower() not in _SKIP_DIRS]
    seq = sequence if sequence is not None else (parents[0] if parents else "sequence")
    return seq, int(match.group(1)), camera


def _read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read JSON ({exc})") from None


def _entries_from_detections(
    per_image: dict[str, list[dict]], images: dict[str, dict], variant: str, sequence: str | None, where: str
) -> list[LabelEntry]:
    entries = []
    for name in sorted(images):
        info = images[name]
        dets = per_image.get(name, [])
        size = (int(info.get("width", -1)), int(info.get("height", -1)))
        if dets:
            kp = np.stack([np.asarray(d["keypoints"], np.float64).reshape(-1, 3) for d in dets])
            boxes = (
                np.stack([np.asarray(d["bbox"], np.float64) for d in dets]) if all("bbox" in d for d in dets) else None
            )
            labels = convert_detection(
                Detection(kp, boxes), layout_for(kp.shape[1], where), variant, size if min(size) > 0 else None
            )
        else:
            labels = ViewLabels.empty()
        seq, frame, cam = image_key(name, sequence)
        entries.append(LabelEntry(seq, frame, cam, labels, name, size))
    return entries


def import_coco(
    keypoints_json: str | Path,
    variant: str = "soft",
    images_json: str | Path | None = None,
    min_person_score: float = 0.0,
    sequence: str | None = None,
) -> PseudoLabelSet:
    """Import COCO-format keypoints (17 per person).

    Args:
        keypoints_json: dataset file (``images``, ``annotations``) or results list.
        variant: ``"soft"`` (raw confidences) or ``"hard"`` (SPEC.md §4.7 step 5, using ``bbox``).
        images_json: for a results list: a COCO file whose ``images`` give id, file_name, width,
            height (every listed image becomes an entry, with or without detections).
        min_person_score: drop detections whose ``score`` is below this.
        sequence: force the sequence name instead of parsing it from the paths.
    """
    keypoints_json = Path(keypoints_json)
    data = _read_json(keypoints_json)
    if isinstance(data, dict):
        images_src, annotations = data, data.get("annotations")
    else:
        if images_json is None:
            raise DatasetError(
                f"{keypoints_json}: a COCO results list needs the image list (pass images_json / --images)"
            )
        images_src, annotations = _read_json(Path(images_json)), data
    image_list = images_src.get("images") if isinstance(images_src, dict) else images_src
    if not isinstance(image_list, list) or not isinstance(annotations, list):
        raise DatasetError(f"{keypoints_json}: expected COCO 'images' and 'annotations' lists")
    by_id: dict[Any, dict] = {}
    for img in image_list:
        try:
            by_id[img["id"]] = img
        except (KeyError, TypeError):
            raise DatasetError(f"{images_json or keypoints_json}: every image needs 'id' and 'file_name'") from None
    per_image: dict[str, list[dict]] = {}
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict) or "keypoints" not in ann or "image_id" not in ann:
            raise DatasetError(f"{keypoints_json}: annotation #{i} needs 'image_id' and 'keypoints'")
        if float(ann.get("score", 1.0)) < min_person_score:
            continue
        img = by_id.get(ann["image_id"])
        if img is None:
            raise DatasetError(f"{keypoints_json}: annotation #{i} refers to unknown image_id {ann['image_id']!r}")
        per_image.setdefault(img["file_name"], []).append(ann)
    images = {img["file_name"]: img for img in by_id.values()}
    entries = _entries_from_detections(per_image, images, variant, sequence, str(keypoints_json))
    return PseudoLabelSet(entries, variant, f"coco:{keypoints_json}")


def import_openpose(
    folder: str | Path,
    variant: str = "soft",
    image_size: tuple[int, int] | None = None,
    sequence: str | None = None,
) -> PseudoLabelSet:
    """Import a folder tree of OpenPose ``*_keypoints.json`` files (BODY_25 or COCO-18).

    Lay the files out as ``<sequence>/<camera>/<name><frame>_keypoints.json`` (or pass
    ``sequence``). OpenPose has no person boxes: the hard variant's spatial test uses the image
    (``image_size``) when given.
    """
    folder = Path(folder)
    files = sorted(folder.rglob("*_keypoints.json"))
    if not files:
        raise DatasetError(f"{folder}: no OpenPose *_keypoints.json files found")
    size = tuple(image_size) if image_size is not None else (-1, -1)
    per_image: dict[str, list[dict]] = {}
    images: dict[str, dict] = {}
    for path in files:
        rel = path.relative_to(folder.parent).as_posix()
        data = _read_json(path)
        people = data.get("people") if isinstance(data, dict) else None
        if not isinstance(people, list):
            raise DatasetError(f"{path}: field 'people' must be a list (is this OpenPose JSON output?)")
        images[rel] = {"width": size[0], "height": size[1]}
        per_image[rel] = [{"keypoints": p["pose_keypoints_2d"]} for p in people if p.get("pose_keypoints_2d")]
    entries = _entries_from_detections(per_image, images, variant, sequence, str(folder))
    return PseudoLabelSet(entries, variant, f"openpose:{folder}")


def import_selfpose3d_pickle(path: str | Path, variant: str | None = None) -> PseudoLabelSet:
    """Import a SelfPose3d pseudo-label pickle (``group_train_cam5_pseudo_hrnet_{soft,hard}_*.pkl``).

    The pickle has no per-joint confidences: ``scores`` = visibility (0/1). ``variant`` defaults to
    'soft'/'hard' when the file name says so, else 'unknown'.
    """
    path = Path(path)
    data = read_db_pickle(path)
    if variant is None:
        variant = "soft" if "soft" in path.name else "hard" if "hard" in path.name else "unknown"
    entries = []
    for i, item in enumerate(data["db"]):
        where = f"{path}: db entry #{i}"
        if not isinstance(item, dict) or "key" not in item or "joints_2d" not in item:
            raise DatasetError(f"{where}: needs 'key' and 'joints_2d'")
        seq, frame, cam = split_db_key(item["key"], where)
        joints = [np.asarray(j, np.float64).reshape(-1, 2)[:15] for j in item["joints_2d"]]
        vis_in = item.get("joints_2d_vis", [np.ones((15, 2))] * len(joints))
        vis = [np.asarray(v).reshape(15, -1)[:, 0] > 0 for v in vis_in]
        if joints and any(j.shape != (15, 2) for j in joints):
            raise DatasetError(f"{where}: joints_2d must be a list of (15,2) arrays (Panoptic-15)")
        jp = np.stack(joints) if joints else np.zeros((0, 15, 2))
        vv = np.stack(vis) if vis else np.zeros((0, 15), bool)
        labels = ViewLabels(np.where(vv[..., None], jp, 0.0).astype(np.float32), vv.astype(np.float32), vv)
        size = (int(item.get("width", -1)), int(item.get("height", -1)))
        entries.append(LabelEntry(seq, frame, cam, labels, str(item.get("image", "")), size))
    return PseudoLabelSet(entries, variant, f"selfpose3d-pkl:{path}")
