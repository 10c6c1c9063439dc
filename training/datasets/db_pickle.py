"""VoxelPose / SelfPose3d database pickles (SPEC.md §4.6), read without executing code.

The pickles are dicts ``{sequence_list, interval, cam_list, db}`` of plain containers and numpy
arrays; the unpickler refuses every other global, so a crafted file cannot run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from training.errors import DatasetError


class _SafeUnpickler(pickle.Unpickler):
    """Only plain containers and numpy arrays/scalars; anything else is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("collections", "OrderedDict"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "slice"),
        ("builtins", "complex"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED or (module == "numpy" and name.endswith("DType")) or module == "numpy.dtypes":
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} (only plain data and numpy arrays are accepted)"
        )


def read_db_pickle(path: str | Path) -> dict:
    """Load a VoxelPose/SelfPose3d database pickle safely (dict with a ``db`` list)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = _SafeUnpickler(fh).load()
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read database pickle ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("db"), list):
        raise DatasetError(f"{path}: expected a dict with a 'db' list (SPEC.md §4.6), got {type(data).__name__}")
    return data


def split_db_key(key: str, where: str) -> tuple[str, int, str]:
    """``'<sequence>_<panel>_<node>_<frame>'`` -> (sequence, frame, ``'<panel>_<node>'``)."""
    parts = str(key).rsplit("_", 3)
    if len(parts) != 4 or not parts[3].isdigit():
        raise DatasetError(f"{where}: db key '{key}' is not '<sequence>_<panel>_<node>_<frame>'")
    return parts[0], int(parts[3]), f"{parts[1]}_{parts[2]}"
