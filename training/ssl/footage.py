"""A user's real footage as training data of the self-supervised stages (``data.source: footage``).

What :func:`build_footage_data` does, once per run root (shared by the four stage folders):

1. opens the footage (:func:`training.pseudo_labels.footage.open_footage`) and checks it against the
   rig before anything is spent (:func:`training.fit_rig.checks.check_footage`: camera names, frame
   size, equal frame counts);
2. reads the pseudo labels of ``selfpose3d pseudo-labels --detector`` (``data.pseudo_labels``), or runs
   the bundled estimator into ``<run root>/pseudo_labels/`` (resumable cache), and checks they were
   made for this rig (camera names, image sizes) and this footage (sequence names);
3. samples frames (numbers that are multiples of ``data.frame_interval``, every view labelled, at most
   ``data.max_frames``) and holds out every ``data.val_every``-th of them (never trained on);
4. decodes video / session frames once into ``<run root>/cache/frames/`` (JPEG, optionally
   downscaled; image-folder footage is read in place unless downscaled) so training never seeks a video.

One process prepares the data (a multi-process ``torchrun`` run would prepare it in every rank:
make the pseudo labels and the cache with a single-process run first).

Training reads the frames through :class:`training.ssl.data.ImageFolderSource` and the augmented
view sets through :class:`training.ssl.data.SSVDataset`. Validation (:class:`FootageValidation`)
runs the model through the engine's runtime on the held-out frames and reports the label-free
figures of :func:`training.fit_rig.validate.footage_figures` against the held-out pseudo 2D (and,
where a ``selfpose3d synth`` scene's ``truth.npz`` exists, MPJPE / AP of
:func:`training.fit_rig.validate.truth_figures`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from training.errors import DatasetError
from training.pseudo_labels.store import LabelEntry, PseudoLabelSet

Key = tuple[str, int]


@dataclass
class FootageData:
    """The footage's labelled frames, split, with the image source both splits read from.

    Attributes:
        train_labels: pseudo labels (the stage's variant) of the training frames; ``image`` = a file.
        val_labels: soft pseudo labels of the held-out frames (the validation reference).
        train, val: (sequence, frame) keys.
        truth: frame -> (G,15,3) mm joints where the footage is a synth scene, else None.
        record: what was sampled (written to ``<run root>/footage.json``).
    """

    train_labels: PseudoLabelSet
    val_labels: PseudoLabelSet
    train: list[Key]
    val: list[Key]
    truth: dict[int, np.ndarray] | None
    record: dict


def label_files(spec: str | Path | None, run_root: Path) -> dict[str, Path]:
    """The files of a ``pseudo-labels --detector`` output: ``spec`` is its ``--out`` prefix, the
    ``*_soft.npz`` file itself, or a folder holding one such output; None = ``run_root/pseudo_labels``."""
    from training.pseudo_labels.detect import output_paths

    if spec is None:
        return output_paths(run_root / "pseudo_labels" / "pseudo")
    p = Path(spec)
    if p.is_dir():
        soft = sorted(p.glob("*_soft.npz"))
        if len(soft) != 1:
            raise DatasetError(
                f"{p}: expected one '<prefix>_soft.npz' of `selfpose3d pseudo-labels --detector`, found "
                f"{[s.name for s in soft]}: give data.pseudo_labels=<prefix>"
            )
        p = soft[0]
    if p.name.endswith("_soft.npz") or p.name.endswith("_hard.npz"):
        p = p.with_name(p.name[: -len("_soft.npz")])
    return output_paths(p)


def check_labels_for_rig(labels: PseudoLabelSet, rig, where: Path) -> None:
    """The labels name exactly the rig's cameras at its calibrated image sizes (else DatasetError)."""
    names = list(rig.names)
    have = labels.cameras()
    if sorted(have) != sorted(names):
        raise DatasetError(
            f"{where}: pseudo labels for cameras {have}, but rig '{rig.name}' has {names}: they were made for "
            "another rig or footage; re-run `selfpose3d pseudo-labels --detector` on this footage"
        )
    sizes = {c.name: (c.width, c.height) for c in rig.cameras}
    for e in labels:
        if tuple(e.image_size) != sizes[e.camera]:
            raise DatasetError(
                f"{where}: camera '{e.camera}' frame {e.frame} was labelled at {e.image_size[0]}x{e.image_size[1]} px "
                f"but the rig calibrates {sizes[e.camera][0]}x{sizes[e.camera][1]}: labels made for another rig or "
                "footage; re-run `selfpose3d pseudo-labels --detector` on this footage"
            )


def sample_frames(labels: PseudoLabelSet, cameras: list[str], interval: int, max_frames: int, val_every: int):
    """(train, val) keys: frames labelled in every view whose number is a multiple of ``interval``
    (the first ``max_frames``; 0 = all); every ``val_every``-th of them held out."""
    complete = [k for k in labels.frames() if all(labels.has(k[0], k[1], c) for c in cameras)]
    keys = [k for k in complete if k[1] % interval == 0]
    if max_frames:
        keys = keys[:max_frames]
    val = [k for i, k in enumerate(keys) if i % val_every == 0]
    held = set(val)
    return [k for k in keys if k not in held], val, len(labels.frames()) - len(complete)


def frames_with_people(labels: PseudoLabelSet, keys: list[Key], cameras: list[str]) -> int:
    """Frames with a labelled person (a visible joint) in >= 2 views."""
    n = 0
    for seq, frame in keys:
        views = sum(bool(labels.get(seq, frame, c).visible.any()) for c in cameras)
        n += views >= 2
    return n


def _subset(labels: PseudoLabelSet, keys: list[Key], images: dict[tuple[str, int, str], str]) -> PseudoLabelSet:
    wanted = set(keys)
    entries = [
        LabelEntry(e.sequence, e.frame, e.camera, e.labels, images[e.key], e.image_size)
        for e in labels
        if (e.sequence, int(e.frame)) in wanted
    ]
    return PseudoLabelSet(entries, labels.variant, labels.source)


def frame_files(footage, labels: PseudoLabelSet, keys: list[Key], cache: Path, long_side_px: int) -> dict:
    """(sequence, frame, camera) -> an image file of every view of ``keys``: the footage's own file
    for image folders, else a JPEG decoded once into ``cache`` (written atomically; a re-run reuses it)."""
    import cv2

    out: dict[tuple[str, int, str], str] = {}
    todo: dict[tuple[str, int, str], Path] = {}
    cams = footage.cameras
    source_of = {e.key: e.image for e in labels}
    for seq, frame in keys:
        for cam in cams:
            src = source_of.get((seq, frame, cam), "")
            if src and Path(src).is_file() and not long_side_px:
                out[(seq, frame, cam)] = str(Path(src).resolve())
                continue
            path = cache / cam / f"{seq}_{frame:08d}.jpg"
            out[(seq, frame, cam)] = str(path)
            if not path.is_file():
                todo[(seq, frame, cam)] = path
    if not todo:
        return out
    last = max(k[1] for k in todo)
    skip = {(s.sequence, f, s.camera) for s in footage.streams for f in range(last + 1)} - set(todo)
    videos_only = all(s.video is not None for s in footage.streams)
    written = 0
    for item in footage.frames(max_frames=last + 1 if videos_only else None, skip=skip):
        key = (item.sequence, int(item.frame), item.camera)
        if key not in todo:
            continue
        if item.image is None:
            raise DatasetError(f"{item.source}: the frame does not decode ({item.problem or 'unreadable'})")
        img = item.image
        if long_side_px and max(img.shape[:2]) > long_side_px:
            s = long_side_px / max(img.shape[:2])
            img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
        path = todo.pop(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.jpg")
        cv2.imwrite(str(tmp), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        tmp.replace(path)
        written += 1
    if todo:
        missing = sorted(todo)[:5]
        raise DatasetError(
            f"{footage.path}: frames {missing} of the pseudo labels are not in the footage (labels made for other "
            "footage?); re-run `selfpose3d pseudo-labels --detector` on this footage"
        )
    return out


def build_footage_data(data_cfg, rig, variant: str, run_root: Path, detect: Callable | None = None) -> FootageData:
    """Check the footage and its pseudo labels against ``rig``; sample, split and cache the frames.

    Args:
        data_cfg: :class:`training.ssl.config.SyntheticDataConfig` with ``source: footage``.
        rig: :class:`calib.rig_config.Rig` (calibrated cameras and a volume).
        variant: ``soft`` | ``hard`` pseudo labels for training (validation always uses soft).
        run_root: folder shared by the stages (pseudo labels, frame cache, ``footage.json``).
        detect: the 2D estimator when labels must be made (None: the bundled MoveNet).
    Raises:
        DatasetError, CalibrationError: bad input, before any training step.
    """
    from training.fit_rig.checks import check_footage, check_rig
    from training.fit_rig.validate import load_truth
    from training.pseudo_labels.footage import open_footage

    d = data_cfg
    check_rig(rig)
    footage_path = Path(d.footage) if d.footage else Path(rig.path)
    footage = open_footage(footage_path, None if d.footage else rig.name)
    per_camera = check_footage(footage, rig, 1)
    files = label_files(d.pseudo_labels, run_root)
    if not files["soft"].is_file():
        if d.pseudo_labels is not None:
            raise DatasetError(
                f"{files['soft']}: no pseudo labels there; make them with `selfpose3d pseudo-labels --detector "
                f"movenet {footage_path} --out {files['soft'].with_name(files['soft'].name[:-9])}` or leave "
                "data.pseudo_labels unset to make them in the run folder"
            )
        from training.pseudo_labels.detect import generate

        name = "estimator"
        if detect is None:
            from training.fit_rig.config import LabelsConfig
            from training.fit_rig.run import movenet_detector

            detect, name = movenet_detector(LabelsConfig().input_px, LabelsConfig().threads)
        print(f"[footage] pseudo labels: {name}, every {d.frame_interval}-th frame -> {files['soft']}", flush=True)
        prefix = files["soft"].with_name(files["soft"].name[: -len("_soft.npz")])
        generate(footage, detect, prefix, every=d.frame_interval, max_frames=d.max_frames or None, source_name=name)
    soft = PseudoLabelSet.load(files["soft"])
    check_labels_for_rig(soft, rig, files["soft"])
    labels = soft
    if variant == "hard":
        labels = PseudoLabelSet.load(files["hard"])
        check_labels_for_rig(labels, rig, files["hard"])
    sequences = sorted({s.sequence for s in footage.streams})
    theirs = sorted({e.sequence for e in soft})
    if not set(theirs) <= set(sequences):
        raise DatasetError(
            f"{files['soft']}: pseudo labels of sequences {theirs}, but the footage {footage.path} has {sequences}: "
            "labels made for other footage; re-run `selfpose3d pseudo-labels --detector` on this footage"
        )
    names = list(rig.names)
    train, val, incomplete = sample_frames(labels, names, d.frame_interval, d.max_frames, d.val_every)
    with_people = frames_with_people(labels, train, names)
    if with_people < d.min_frames_with_people:
        raise DatasetError(
            f"{footage.path}: only {with_people} of {len(train)} sampled training frames have a person in >= 2 "
            f"views (need {d.min_frames_with_people}, data.frame_interval={d.frame_interval}): record people "
            "inside the volume seen by several cameras, sample more frames, or lower "
            "--set data.min_frames_with_people=N"
        )
    tag = hashlib.sha256(str(footage.path.resolve()).encode()).hexdigest()[:10]
    cache = run_root / "cache" / "frames" / f"{footage.path.stem}_{tag}_{d.frame_cache_long_side_px or 'full'}"
    images = frame_files(footage, labels, train + val, cache, d.frame_cache_long_side_px)  # same keys in soft and hard
    record = {
        "footage": str(footage.path),
        "pseudo_labels": str(files["soft"]),
        "variant": variant,
        "frames_per_camera": per_camera,
        "labelled_frames": len(labels.frames()),
        "labelled_frames_missing_a_view": incomplete,
        "train_frames": len(train),
        "train_frames_with_people": with_people,
        "val_frames": len(val),
        "frame_interval": d.frame_interval,
        "val_every": d.val_every,
        "frame_cache": str(cache) if any(str(cache) in v for v in images.values()) else None,
    }
    run_root.mkdir(parents=True, exist_ok=True)
    (run_root / f"footage_{variant}.json").write_text(json.dumps(record, indent=1))
    return FootageData(
        _subset(labels, train, images),
        _subset(soft, val, images),
        train,
        val,
        load_truth(footage.path),
        record,
    )


class FootageValidation:
    """Label-free figures of a model on the held-out footage frames (and truth figures where known).

    Args:
        rig: :class:`calib.rig_config.Rig`.
        data: the footage's :class:`FootageData`.
        image_rgb: ``(sequence, frame, camera) -> RGB uint8`` (an ImageFolderSource's).
    """

    def __init__(self, rig, data: FootageData, image_rgb):
        self.rig = rig
        self.data = data
        self.image_rgb = image_rgb
        self.frames = list(data.val)

    def reference(self, key: Key):
        """The held-out frame's pseudo 2D people per view as a fit-rig FrameSet ((N,15,3) x, y, score)."""
        from training.fit_rig.labels import FrameSet

        p15 = []
        for cam in self.rig.names:
            lab = self.data.val_labels.get(key[0], key[1], cam)
            score = np.where(lab.visible, lab.scores, 0.0)[..., None]
            p15.append(np.concatenate([lab.joints_px, score], -1).astype(np.float32))
        return FrameSet(key, [], p15)

    def evaluate(self, model, device: str = "cpu", max_frames: int = 0) -> dict[str, float]:
        """Run ``model`` through the engine's runtime on the held-out frames; flat float metrics
        (None figures as NaN) and ``selection_score`` (mean AP with truth, else minus the median
        reprojection px; higher is better)."""
        import torch

        from engine.runtime import InferenceRuntime
        from training.fit_rig.validate import footage_figures, truth_figures

        frames = self.frames
        if max_frames:
            frames = frames[:: max(1, len(frames) // max_frames)][:max_frames]
        vol = self.rig.volume
        was_training = model.training
        runtime = InferenceRuntime(
            model.eval(),
            self.rig.cameras,
            backend="eager",
            device=device,
            precision="auto",
            space_size_mm=tuple(vol.size_mm),
            space_center_mm=tuple(vol.center_mm),
        )
        poses, scores, refs = [], [], []
        with torch.inference_mode():
            for key in frames:
                bgr = [np.ascontiguousarray(self.image_rgb(key[0], key[1], c)[..., ::-1]) for c in self.rig.names]
                cand = runtime.from_images(bgr).candidates.numpy()  # (K,J,5)
                ok = cand[:, 0, 3] >= 0
                poses.append(cand[ok, :, :3].astype(np.float64))
                scores.append(cand[ok, 0, 4].astype(np.float64))
                refs.append(self.reference(key))
        model.train(was_training)
        fig = footage_figures(poses, refs, self.rig.cameras)
        out = {
            "frames": float(fig["frames"]),
            "people_per_frame_mean": fig["people_per_frame_mean"],
            "predicted": float(fig["predicted"]),
            "precision": fig["precision"],
            "ghost_rate": fig["ghost_rate"],
            "reproj_px": fig["reprojection_px_median_all"],
            "bone_length_std_mm": fig["bone_length_std_mm"],
        }
        out.update({f"reproj_px_{c}": v for c, v in fig["reprojection_px_median_per_camera"].items()})
        truth = truth_figures(poses, scores, refs, self.data.truth)
        if truth is not None:
            out.update(truth)
            aps = [truth[k] or 0.0 for k in ("ap25", "ap50", "ap100", "ap150")]
            out["mean_ap"] = float(np.mean(aps))
        out = {k: (float("nan") if v is None else float(v)) for k, v in out.items()}
        if "mean_ap" in out:
            out["selection_score"] = out["mean_ap"]
        else:
            out["selection_score"] = -out["reproj_px"] if math.isfinite(out["reproj_px"]) else -1e9
        return out
