"""The pseudo-label file format of this project (one NPZ per dataset).

Labels are per (sequence, frame, camera) = one *entry*; each entry holds N detected persons in
the Panoptic-15 layout, in **original image pixels**:

=================  ==============  ==================================================
array              shape / dtype   meaning
=================  ==============  ==================================================
``sequence``       (E,) str        sequence name
``camera``         (E,) str        camera name (``"00_03"``, ``"Camera0"``, …)
``frame``          (E,) int64      frame number
``image``          (E,) str        image path as given by the source ('' if unknown)
``image_size``     (E,2) int32     width, height px (-1 if unknown)
``person_offset``  (E,) int64      first person row of the entry
``person_count``   (E,) int64      number of persons N of the entry
``joints_px``      (P,15,2) f32    x, y px (0 where invisible)
``scores``         (P,15) f32      keypoint confidences (0 where dropped)
``visible``        (P,15) bool     joint usable as a label
``skeleton``       () str          ``"panoptic15"``
``variant``        () str          ``"soft"`` | ``"hard"`` | ``"unknown"``
``source``         () str          importer and input file (provenance)
``format_version`` () int          1
=================  ==============  ==================================================

Entries with N = 0 are kept (a view where nothing was detected is information too). Persons with
no visible joint are kept as detected (they count as persons, as upstream's hard pickles do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from calib.common.skeleton import PANOPTIC15
from training.errors import DatasetError
from training.results_io import load_npz

FORMAT_VERSION = 1
VARIANTS = ("soft", "hard", "unknown")
J = PANOPTIC15.num_joints


@dataclass(frozen=True, eq=False)
class ViewLabels:
    """Persons detected in one image.

    Attributes:
        joints_px: (N,15,2) original-image px.
        scores: (N,15) confidences.
        visible: (N,15) bool.
    """

    joints_px: np.ndarray
    scores: np.ndarray
    visible: np.ndarray

    def __post_init__(self) -> None:
        n = self.joints_px.shape[0]
        if self.joints_px.shape != (n, J, 2) or self.scores.shape != (n, J) or self.visible.shape != (n, J):
            raise DatasetError(
                f"pseudo labels: expected joints (N,{J},2), scores (N,{J}), visible (N,{J}); got "
                f"{self.joints_px.shape}, {self.scores.shape}, {self.visible.shape}"
            )

    @classmethod
    def empty(cls) -> "ViewLabels":
        return cls(np.zeros((0, J, 2), np.float32), np.zeros((0, J), np.float32), np.zeros((0, J), bool))

    def __len__(self) -> int:
        return int(self.joints_px.shape[0])


@dataclass(frozen=True, eq=False)
class LabelEntry:
    """Labels of one (sequence, frame, camera)."""

    sequence: str
    frame: int
    camera: str
    labels: ViewLabels
    image: str = ""
    image_size: tuple[int, int] = (-1, -1)

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.sequence, int(self.frame), self.camera)


@dataclass
class PseudoLabelSet:
    """All pseudo labels of a dataset, addressable by (sequence, frame, camera)."""

    entries: list[LabelEntry] = field(default_factory=list)
    variant: str = "unknown"
    source: str = ""

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise DatasetError(f"pseudo labels: variant '{self.variant}' must be one of {VARIANTS}")
        self._index = {}
        for i, e in enumerate(self.entries):
            if e.key in self._index:
                raise DatasetError(f"pseudo labels ({self.source}): duplicate entry {e.key}")
            self._index[e.key] = i

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[LabelEntry]:
        return iter(self.entries)

    def get(self, sequence: str, frame: int, camera: str) -> ViewLabels:
        """Labels of one image (empty when the image has no entry)."""
        i = self._index.get((sequence, int(frame), camera))
        return ViewLabels.empty() if i is None else self.entries[i].labels

    def has(self, sequence: str, frame: int, camera: str) -> bool:
        return (sequence, int(frame), camera) in self._index

    def frames(self) -> list[tuple[str, int]]:
        """Sorted distinct (sequence, frame)."""
        return sorted({(e.sequence, int(e.frame)) for e in self.entries})

    def cameras(self) -> list[str]:
        return sorted({e.camera for e in self.entries})

    def num_persons(self) -> int:
        return sum(len(e.labels) for e in self.entries)

    def save(self, path: str | Path) -> Path:
        """Write the NPZ described in the module docstring."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        counts = np.array([len(e.labels) for e in self.entries], np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if counts.size else counts

        def cat(name, shape, dtype):
            parts = [getattr(e.labels, name) for e in self.entries]
            return np.concatenate(parts).astype(dtype) if parts else np.zeros((0,) + shape, dtype)

        arrays = {
            "sequence": np.array([e.sequence for e in self.entries], dtype=str),
            "camera": np.array([e.camera for e in self.entries], dtype=str),
            "frame": np.array([e.frame for e in self.entries], np.int64),
            "image": np.array([e.image for e in self.entries], dtype=str),
            "image_size": np.array([e.image_size for e in self.entries], np.int32).reshape(-1, 2),
            "person_offset": offsets,
            "person_count": counts,
            "joints_px": cat("joints_px", (J, 2), np.float32),
            "scores": cat("scores", (J,), np.float32),
            "visible": cat("visible", (J,), bool),
            "skeleton": np.array(PANOPTIC15.name),
            "variant": np.array(self.variant),
            "source": np.array(self.source),
            "format_version": np.array(FORMAT_VERSION),
        }
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PseudoLabelSet":
        """Read a file written by :meth:`save`."""
        path = Path(path)
        data = load_npz(path, "pseudo-label")
        with data:
            needed = ("sequence", "camera", "frame", "person_offset", "person_count", "joints_px", "scores", "visible")
            missing = [k for k in needed if k not in data.files]
            if missing:
                raise DatasetError(
                    f"{path}: not a pseudo-label file, missing {missing} (convert it with `selfpose3d pseudo-labels`)"
                )
            version = int(data["format_version"]) if "format_version" in data.files else FORMAT_VERSION
            if version > FORMAT_VERSION:
                raise DatasetError(f"{path}: format_version {version} is newer than this reader ({FORMAT_VERSION})")
            if "skeleton" in data.files and str(data["skeleton"]) != PANOPTIC15.name:
                raise DatasetError(f"{path}: skeleton '{data['skeleton']}', expected '{PANOPTIC15.name}'")
            arr = {k: data[k] for k in data.files}
        n_entries = len(arr["sequence"])
        images = arr.get("image", np.full(n_entries, ""))
        sizes = arr.get("image_size", np.full((n_entries, 2), -1))
        entries = []
        for i in range(n_entries):
            o, n = int(arr["person_offset"][i]), int(arr["person_count"][i])
            labels = ViewLabels(
                arr["joints_px"][o : o + n], arr["scores"][o : o + n], arr["visible"][o : o + n].astype(bool)
            )
            entries.append(
                LabelEntry(
                    str(arr["sequence"][i]),
                    int(arr["frame"][i]),
                    str(arr["camera"][i]),
                    labels,
                    str(images[i]),
                    (int(sizes[i][0]), int(sizes[i][1])),
                )
            )
        return cls(entries, str(arr.get("variant", "unknown")), str(arr.get("source", path)))


def merge(sets: Iterable[PseudoLabelSet]) -> PseudoLabelSet:
    """Concatenate label sets of the same variant (duplicate keys are an error)."""
    sets = list(sets)
    variants = {s.variant for s in sets}
    if len(variants) > 1:
        raise DatasetError(f"pseudo labels: cannot merge variants {sorted(variants)}")
    return PseudoLabelSet(
        [e for s in sets for e in s.entries],
        variants.pop() if variants else "unknown",
        "; ".join(s.source for s in sets),
    )
