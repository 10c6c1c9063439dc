"""Rig YAML: the cameras (their frame source and calibration), the capture volume and the skeleton.

A rig file maps to :class:`RigConfig` (strict: unknown keys fail with a "did you mean" hint).
:func:`load_rig` resolves it into a :class:`Rig`, whose ``cameras`` is a calibrated
:class:`~calib.camera.CameraRig` in the order of the rig's ``cameras`` list. The schema is
documented in ``docs/rig_yaml.md``; the embedded default is ``configs/rig.yaml``.

Paths inside a rig file (``calibration.path``, and ``uri`` of file-like sources) are relative to
the rig file's folder.
"""

from __future__ import annotations

import functools

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence, get_args

import numpy as np

from calib.camera import CalibrationError, Camera, CameraRig
from calib.configkit import ConfigError, apply_overrides, from_dict, read_yaml, require, to_dict
from calib import io_builtin  # noqa: F401  (registers the file formats a rig may reference)
from calib.io_formats import (
    check_units_mm,
    formats,
    load_calibration,
    register_format,
    scale_intrinsics,
    select_cameras,
)

SourceKind = Literal["device", "stream", "file", "images", "panoptic", "session", "synthetic"]
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)
# Kinds whose uri is a local path (resolved relative to the rig file).
PATH_KINDS = ("file", "images", "panoptic", "session")
CalibrationFormat = Literal[
    "auto", "panoptic", "voxelpose", "metric", "opencv", "anipose", "pose2sim", "qualisys", "rig"
]

Row3 = tuple[float, float, float]
Mat3 = tuple[Row3, Row3, Row3]


@dataclass(frozen=True)
class SourceConfig:
    """Where a camera's frames come from.

    Attributes:
        kind: ``device`` (OpenCV camera ``index``, or a device path in ``uri``), ``stream``
            (RTSP/HTTP URL in ``uri``), ``file`` (video file), ``images`` (folder of frames),
            ``panoptic`` (a Panoptic sequence folder; the camera name picks ``hdImgs/<name>``),
            ``session`` (a recorded session folder), ``synthetic`` (the synthetic world).
        uri: path or URL (required for stream/file/images/panoptic/session).
        index: device index for ``device``.
        fps: frame rate to request/pace at (None: the source's own). For a ``file`` in a rig it
            is a cap: videos replay at their native rate, every ``round(native / fps)``-th frame.
        loop: restart file-like sources at the end.
        realtime: pace file-like sources at their frame rate (False: as fast as possible).
        width, height: capture size to request from a device (None: the calibration's size).
    """

    kind: SourceKind = "synthetic"
    uri: str = ""
    index: int = 0
    fps: float | None = None
    loop: bool = False
    realtime: bool = True
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        require(self.kind in SOURCE_KINDS, "kind", f"{self.kind!r} is not one of {list(SOURCE_KINDS)}")
        if self.kind in PATH_KINDS + ("stream",):
            require(bool(self.uri), "uri", f"a '{self.kind}' source needs uri (a path or URL)")
        require(self.index >= 0, "index", f"must be >= 0, got {self.index}")
        require(self.fps is None or self.fps > 0, "fps", f"must be > 0 (or null), got {self.fps}")
        require((self.width is None) == (self.height is None), "width/height", "give both or neither")
        require(self.width is None or (self.width > 0 and self.height > 0), "width/height", "must be positive")


@dataclass(frozen=True)
class InlineCalibration:
    """A camera's calibration written in the rig file, alone or over the referenced file's.

    Without a calibration file every field but ``dist`` is required (``t_mm`` or
    ``center_mm``). Over a file camera, the fields given replace the file's; ``width``/``height``
    given without ``K`` rescale the file's intrinsics to the new size (the same camera at
    another resolution).
    """

    width: int | None = None
    height: int | None = None
    K: Mat3 | None = None
    dist: tuple[float, float, float, float, float] | None = None
    R: Mat3 | None = None
    t_mm: Row3 | None = None
    center_mm: Row3 | None = None

    def __post_init__(self) -> None:
        require(
            not (self.t_mm is not None and self.center_mm is not None),
            "t_mm/center_mm",
            "give the translation t_mm or the camera centre center_mm, not both",
        )
        require((self.width is None) == (self.height is None), "width/height", "give both or neither")

    def apply(self, base: Camera | None, name: str, where: str) -> Camera:
        """The camera with these fields over ``base`` (None: build from these fields alone)."""
        if base is None:
            missing = [n for n in ("width", "height", "K", "R") if getattr(self, n) is None]
            if self.t_mm is None and self.center_mm is None:
                missing.append("t_mm or center_mm")
            if missing:
                raise CalibrationError(
                    f"{where}: camera '{name}' has no calibration file entry, so its inline calibration needs {missing}"
                )
            base = Camera(name, self.width, self.height, self.K, np.zeros(5), self.R, np.zeros(3), source=where)
        elif self.width is not None and self.K is None:
            base = scale_intrinsics(base, self.width, self.height)
        cam = base.replace(name=name, source=where if base.source == "<memory>" else base.source)
        changes: dict[str, Any] = {}
        for key in ("width", "height", "K", "dist", "R", "t_mm"):
            value = getattr(self, key)
            if value is not None:
                changes[key] = np.asarray(value, dtype=np.float64) if key not in ("width", "height") else value
        if changes:
            cam = cam.replace(source=where, **changes)
        if self.center_mm is not None:
            cam = cam.replace(source=where, t_mm=-cam.R @ np.asarray(self.center_mm, dtype=np.float64))
        return cam

    @classmethod
    def from_camera(cls, cam: Camera) -> "InlineCalibration":
        """Every field of ``cam`` (translation as ``t_mm``)."""
        return cls(
            width=cam.width,
            height=cam.height,
            K=tuple(tuple(float(v) for v in row) for row in cam.K),
            dist=tuple(float(v) for v in cam.dist),
            R=tuple(tuple(float(v) for v in row) for row in cam.R),
            t_mm=tuple(float(v) for v in cam.t_mm),
        )


@dataclass(frozen=True)
class CameraEntry:
    """One camera of the rig: its name, frame source and optional inline calibration."""

    name: str
    source: SourceConfig = SourceConfig()
    calibration: InlineCalibration | None = None

    def __post_init__(self) -> None:
        require(bool(self.name), "name", "camera name must be non-empty")


@dataclass(frozen=True)
class CalibrationRef:
    """A calibration file the rig takes its cameras from.

    Attributes:
        path: file path, relative to the rig file.
        format: one of ``auto`` and the registered formats (:data:`calib.io.FORMATS`).
        cameras: the file's camera names for the rig's cameras, in the same order (renames them
            to the rig's names); default: the rig's camera names, or every camera of the file
            when the rig lists none.
        image_size: (width, height) px for formats that store none (VoxelPose JSON).
    """

    path: str
    format: CalibrationFormat = "auto"
    cameras: tuple[str, ...] | None = None
    image_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        require(bool(self.path), "path", "calibration path must be non-empty")
        require(
            self.format == "auto" or self.format in formats(),
            "format",
            f"{self.format!r} is not one of auto, {formats()}",
        )
        require(
            self.cameras is None or len(self.cameras) > 0, "cameras", "must list at least one camera (or be omitted)"
        )
        require(self.image_size is None or min(self.image_size) > 0, "image_size", "must be positive (width, height)")


@dataclass(frozen=True)
class VolumeConfig:
    """The capture volume (VoxelPose's space): an axis-aligned box in world mm."""

    center_mm: Row3 = (0.0, -500.0, 800.0)
    size_mm: Row3 = (8000.0, 8000.0, 2000.0)

    def __post_init__(self) -> None:
        require(all(s > 0 for s in self.size_mm), "size_mm", f"must be positive, got {self.size_mm}")
        require(
            max(self.size_mm) >= 100.0, "size_mm", f"{self.size_mm} is under 10 cm; sizes are millimetres (8 m = 8000)"
        )

    @property
    def min_mm(self) -> np.ndarray:
        """(3,) lower corner."""
        return np.asarray(self.center_mm) - np.asarray(self.size_mm) / 2

    @property
    def max_mm(self) -> np.ndarray:
        """(3,) upper corner."""
        return np.asarray(self.center_mm) + np.asarray(self.size_mm) / 2


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of the synthetic world (used by ``synthetic`` sources)."""

    seed: int = 0
    people: int = 3
    fps: float = 15.0

    def __post_init__(self) -> None:
        require(self.people >= 0, "people", f"must be >= 0, got {self.people}")
        require(self.fps > 0, "fps", f"must be > 0, got {self.fps}")


@dataclass(frozen=True)
class RigConfig:
    """A rig file (see ``docs/rig_yaml.md``)."""

    name: str
    cameras: tuple[CameraEntry, ...] = ()
    calibration: CalibrationRef | None = None
    volume: VolumeConfig | None = None  # None: sized from the cameras' common field of view
    skeleton: str = "panoptic15"
    synthetic: SyntheticSpec = SyntheticSpec()

    def __post_init__(self) -> None:
        from calib.common.skeleton import SKELETONS

        require(bool(self.name), "name", "rig name must be non-empty")
        names = [c.name for c in self.cameras]
        dup = sorted({n for n in names if names.count(n) > 1})
        require(not dup, "cameras", f"duplicate camera names {dup}")
        require(
            self.skeleton in SKELETONS, "skeleton", f"unknown skeleton {self.skeleton!r}; known: {sorted(SKELETONS)}"
        )
        require(
            bool(self.cameras) or self.calibration is not None,
            "cameras",
            "a rig needs a camera list, a calibration file, or both",
        )
        if self.calibration is not None and self.calibration.cameras is not None and self.cameras:
            require(
                len(self.calibration.cameras) == len(self.cameras),
                "calibration.cameras",
                f"lists {len(self.calibration.cameras)} names for {len(self.cameras)} rig cameras",
            )


@dataclass(frozen=True)
class Rig:
    """A resolved rig: the config plus its calibrated cameras (same order as ``config.cameras``)."""

    config: RigConfig
    cameras: CameraRig
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def names(self) -> list[str]:
        return self.cameras.names

    @functools.cached_property
    def volume(self) -> VolumeConfig:
        """The rig file's volume, or (none given) the floor area the cameras see together
        (:func:`calib.volume.volume_from_cameras`); :attr:`volume_origin` says which."""
        if self.config.volume is not None:
            return self.config.volume
        from calib.volume import volume_from_cameras

        center, size = volume_from_cameras(self.cameras)
        return VolumeConfig(center_mm=center, size_mm=size)

    @property
    def volume_origin(self) -> str:
        return "the rig file" if self.config.volume is not None else "sized from the cameras' common field of view"

    def source(self, camera: str) -> SourceConfig:
        """The frame source of a camera by name."""
        for entry in self.config.cameras:
            if entry.name == camera:
                return entry.source
        raise CalibrationError(f"{self.path or self.name}: no camera named '{camera}'; cameras: {self.names}")


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def _check_names_quoted(data: dict, path: Path) -> None:
    """Unquoted ``00_23`` is an (octal) number in YAML: fail with the fix instead of renaming."""
    problems = []
    for i, entry in enumerate(data.get("cameras") or []):
        if isinstance(entry, dict) and "name" in entry and not isinstance(entry["name"], str):
            problems.append(f"cameras[{i}].name = {entry['name']!r}")
    cal = data.get("calibration")
    if isinstance(cal, dict) and isinstance(cal.get("cameras"), list):
        problems += [
            f"calibration.cameras[{i}] = {n!r}" for i, n in enumerate(cal["cameras"]) if not isinstance(n, str)
        ]
    if problems:
        raise ConfigError(
            f"{path}: {', '.join(problems)}: camera names must be strings; quote them in YAML "
            '(name: "00_23"; unquoted 00_23 reads as the octal number 19)'
        )


def _resolve(base: Path, value: str) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _resolve_paths(config: RigConfig, base: Path) -> RigConfig:
    cal = config.calibration
    if cal is not None:
        cal = dataclasses.replace(cal, path=_resolve(base, cal.path))
    entries = tuple(
        dataclasses.replace(e, source=dataclasses.replace(e.source, uri=_resolve(base, e.source.uri)))
        if e.source.kind in PATH_KINDS and "://" not in e.source.uri
        else e
        for e in config.cameras
    )
    return dataclasses.replace(config, calibration=cal, cameras=entries)


def parse_rig_config(data: dict, path: str | Path = "<rig>", overrides: Sequence[str] = ()) -> RigConfig:
    """Validate a rig mapping (from YAML) into a :class:`RigConfig` (paths as written)."""
    path = Path(path)
    data = apply_overrides(data, overrides)
    _check_names_quoted(data, path)
    try:
        return from_dict(RigConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def resolve_cameras(config: RigConfig, where: str = "<rig>") -> tuple[RigConfig, CameraRig]:
    """Calibrate the rig's cameras; returns the config with one entry per camera and the rig.

    ``config.calibration.path`` must already be absolute or relative to the working directory.
    """
    cal = config.calibration
    file_cams: list[Camera | None]
    entries = config.cameras
    if cal is not None:
        wanted = cal.cameras if cal.cameras is not None else (tuple(e.name for e in entries) or None)
        file_rig = load_calibration(cal.path, cal.format, camera_names=wanted, image_size=cal.image_size)
        if not entries:
            entries = tuple(CameraEntry(name=c.name) for c in file_rig)
        file_cams = list(file_rig)
    else:
        file_cams = [None] * len(entries)
    cameras = []
    for i, (entry, base) in enumerate(zip(entries, file_cams)):
        at = f"{where}: cameras[{i}] ('{entry.name}').calibration"
        if entry.calibration is not None:
            cam = entry.calibration.apply(base, entry.name, at)
        elif base is None:
            raise CalibrationError(
                f"{where}: camera '{entry.name}' has no calibration: add a 'calibration:' file reference "
                "to the rig or an inline 'calibration:' (width, height, K, R, t_mm) to the camera"
            )
        else:
            cam = base if base.name == entry.name else base.replace(name=entry.name)
        cameras.append(cam)
    rig = check_units_mm(CameraRig(tuple(cameras)), where)
    return dataclasses.replace(config, cameras=entries), rig


def load_rig(path: str | Path, overrides: Sequence[str] = ()) -> Rig:
    """Load a rig YAML, apply ``--set`` overrides and calibrate its cameras.

    Args:
        path: the rig file.
        overrides: ``key.sub=value`` strings (values parsed as YAML).

    Returns:
        The :class:`Rig`; ``rig.config`` has absolute paths and one entry per camera.

    Raises:
        ConfigError: unreadable YAML, unknown key (with a did-you-mean hint), invalid value.
        CalibrationError: calibration file problems, a camera missing from the file, bad units.
    """
    path = Path(path)
    config = _resolve_paths(parse_rig_config(read_yaml(path), path, overrides), path.parent)
    config, cameras = resolve_cameras(config, str(path))
    return Rig(config=config, cameras=cameras, path=path)


# --------------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------------


def rig_to_dict(config: RigConfig) -> dict:
    """Plain mapping of a config, omitting values equal to their defaults where that is clearer."""
    data = to_dict(config)
    for key in ("calibration", "volume"):
        if data.get(key) is None:
            data.pop(key, None)
    for entry in data["cameras"]:
        source = entry["source"]
        default = to_dict(SourceConfig())
        entry["source"] = {k: v for k, v in source.items() if k == "kind" or v != default[k]}
        if entry.get("calibration") is None:
            entry.pop("calibration", None)
        else:
            entry["calibration"] = {k: v for k, v in entry["calibration"].items() if v is not None}
    return data


def save_rig(
    rig_or_cameras: Rig | CameraRig,
    path: str | Path,
    *,
    name: str | None = None,
    volume: VolumeConfig | None = None,
    sources: Sequence[SourceConfig] | None = None,
    skeleton: str | None = None,
    synthetic: SyntheticSpec | None = None,
) -> Path:
    """Write a rig YAML with every camera's calibration inline (loads back to the same cameras).

    Args:
        rig_or_cameras: a :class:`Rig` (its name, sources, volume ... are kept) or a bare
            :class:`~calib.camera.CameraRig` (synthetic sources, default volume).
        path: output YAML.
        name, volume, sources, skeleton, synthetic: replace the corresponding parts.

    Path sources (file, images, panoptic, session) that lie inside the output's folder are written
    relative to it, so the folder can be moved as a whole.

    Returns:
        The path written.
    """
    import yaml

    path = Path(path)
    if isinstance(rig_or_cameras, Rig):
        base, cameras = rig_or_cameras.config, rig_or_cameras.cameras
    else:
        cameras = rig_or_cameras
        base = RigConfig(name=name or path.stem, cameras=tuple(CameraEntry(c.name) for c in cameras))
    srcs = list(sources) if sources is not None else [_source_of(base, c.name) for c in cameras]
    if len(srcs) != len(cameras):
        raise ConfigError(f"{path}: {len(srcs)} sources given for {len(cameras)} cameras")
    srcs = [_relative_to(s, path.parent.resolve()) for s in srcs]
    config = RigConfig(
        name=name or base.name,
        cameras=tuple(CameraEntry(c.name, s, InlineCalibration.from_camera(c)) for c, s in zip(cameras, srcs)),
        calibration=None,
        volume=volume or base.volume,
        skeleton=skeleton or base.skeleton,
        synthetic=synthetic or base.synthetic,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(rig_to_dict(config), sort_keys=False, default_flow_style=None, width=120)
    path.write_text(f"# rig '{config.name}' written by selfpose3d (schema: docs/rig_yaml.md)\n{text}", encoding="utf-8")
    return path


def _relative_to(source: SourceConfig, folder: Path) -> SourceConfig:
    """A path source inside ``folder`` written relative to it (the rig file stays movable with it)."""
    if source.kind not in PATH_KINDS or "://" in source.uri or not Path(source.uri).is_absolute():
        return source
    uri = Path(source.uri)
    if not uri.is_relative_to(folder):
        return source
    return dataclasses.replace(source, uri=str(uri.relative_to(folder)) or ".")


def _source_of(config: RigConfig, name: str) -> SourceConfig:
    for entry in config.cameras:
        if entry.name == name:
            return entry.source
    return SourceConfig()


def _is_rig_yaml(path: Path) -> bool:
    """Our rig YAML has a name and cameras and/or a calibration reference (OpenCV files have neither)."""
    import yaml

    if path.read_text(encoding="utf-8", errors="replace")[:200].lstrip().startswith("%YAML"):
        return False  # OpenCV FileStorage
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return False  # e.g. !!opencv-matrix tags without the %YAML header; OpenCV reports real errors
    return isinstance(data, dict) and "name" in data and ("cameras" in data or "calibration" in data)


register_format(
    "rig",
    load=lambda path, names, size: select_cameras(list(load_rig(path).cameras), names, path),
    save=lambda rig, path: save_rig(rig, path),
    suffixes=(".yaml", ".yml"),
    claims=_is_rig_yaml,
    save_suffixes=(".yaml", ".yml"),
)
