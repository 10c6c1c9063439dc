"""Merge partial framesets of a rig spread over several capture processes (pure, no I/O).

Each capture process publishes ``frames/<rig>`` for its own cameras. A consumer subscribed to
all of them pushes every received frameset into :class:`FramesetMerger`, which regroups the
views with a :class:`capture.sync.FrameSynchronizer` over the whole rig and returns full-rig
framesets (own sequence numbers, ``source="merged"``), with absent cameras in ``missing``.
Views are passed through as received (bgr8 arrays, JPEG bytes or shared-memory handles).
"""

from __future__ import annotations

from typing import Sequence

from capture.messages import FrameSet
from capture.sync import FrameSynchronizer, SyncStats


class FramesetMerger:
    """Regroup views from partial framesets into full-rig framesets.

    Args:
        rig: rig name of the merged sets.
        cameras: every camera of the rig, in rig order.
        tolerance_ms, deadline_ms, min_views: as for :class:`capture.sync.FrameSynchronizer`.
    """

    def __init__(
        self, rig: str, cameras: Sequence[str], *, tolerance_ms: float, deadline_ms: float, min_views: int = 1
    ) -> None:
        self.rig = rig
        self.cameras = tuple(cameras)
        self._sync = FrameSynchronizer(
            self.cameras, tolerance_ms=tolerance_ms, deadline_ms=deadline_ms, min_views=min_views
        )
        self._seq = 0
        self.foreign_views = 0

    @property
    def stats(self) -> SyncStats:
        return self._sync.stats

    def push(self, fs: FrameSet, arrival_ns: int) -> None:
        """Add the views of a received (partial) frameset; views of unknown cameras are counted."""
        for i, view in enumerate(fs.views):
            if view.camera not in self.cameras:
                self.foreign_views += 1
                continue
            self._sync.push(view.camera, view.t_ns, (fs, i), arrival_ns=arrival_ns)

    def poll(self, now_ns: int) -> list[FrameSet]:
        """Merged framesets ready at ``now_ns`` (same clock as the ``arrival_ns`` given to push)."""
        out = []
        for synced in self._sync.poll(now_ns):
            parts = [f.payload for f in synced.frames]
            out.append(
                FrameSet(
                    rig=self.rig,
                    seq=self._seq,
                    t_ref_ns=synced.t_ref_ns,
                    t_pub_ns=max(fs.t_pub_ns for fs, _ in parts),
                    views=tuple(fs.views[i] for fs, i in parts),
                    buffers=tuple(fs.buffers[i] for fs, i in parts),
                    missing=synced.missing,
                    skew_ms=synced.skew_ms,
                    source="merged",
                )
            )
            self._seq += 1
        return out
