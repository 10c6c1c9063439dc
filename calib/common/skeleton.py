"""The Panoptic-15 skeleton: the single source of joint names, root, bones and flip pairs.

Pure Python (no torch), so any package may import it (DESIGN.md §2 exception).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Skeleton:
    """A named joint set with its drawing edges and left/right flip permutation."""

    name: str
    joints: tuple[str, ...]
    root: int
    edges: tuple[tuple[int, int], ...]
    flip: tuple[int, ...]

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        """Index of a joint by name (ValueError naming the valid names)."""
        try:
            return self.joints.index(joint)
        except ValueError:
            raise ValueError(f"skeleton {self.name}: no joint '{joint}'; joints: {list(self.joints)}") from None


PANOPTIC15 = Skeleton(
    name="panoptic15",
    joints=(
        "neck",
        "nose",
        "mid_hip",
        "l_shoulder",
        "l_elbow",
        "l_wrist",
        "l_hip",
        "l_knee",
        "l_ankle",
        "r_shoulder",
        "r_elbow",
        "r_wrist",
        "r_hip",
        "r_knee",
        "r_ankle",
    ),
    root=2,
    edges=(
        (0, 1),
        (0, 2),
        (0, 3),
        (3, 4),
        (4, 5),
        (0, 9),
        (9, 10),
        (10, 11),
        (2, 6),
        (2, 12),
        (6, 7),
        (7, 8),
        (12, 13),
        (13, 14),
    ),
    flip=(0, 1, 2, 9, 10, 11, 12, 13, 14, 3, 4, 5, 6, 7, 8),
)

SKELETONS = {PANOPTIC15.name: PANOPTIC15}


def get_skeleton(name: str) -> Skeleton:
    """Look up a skeleton by name."""
    if name not in SKELETONS:
        raise ValueError(f"unknown skeleton '{name}'; known: {sorted(SKELETONS)}")
    return SKELETONS[name]
