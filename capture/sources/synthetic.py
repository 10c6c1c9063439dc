"""The synthetic world as a rig of cameras: one source per view, sharing one renderer.

The world is genlocked like a studio rig: frame ``k`` of every view shows the same instant
``start_ns + k / fps``. The first camera thread that needs a new frame renders *all* views of it
(one scene build per frame) and the other views take theirs from that render, so the views of a
frame always arrive together. In realtime mode a renderer that falls behind skips to the newest
due frame, as a real camera drops frames; as fast as possible it renders every frame.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from capture.source import Frame, Pacer, Source, SourceError


class SyntheticRig:
    """Shared state of a world's views: one render per frame index, cached for all views.

    Args:
        world: a :class:`capture.synthetic.world.SyntheticWorld`.
        realtime: pace at the world's fps (skipping frames when behind) or run flat out.
        start_ns: time of frame 0 (None: when first used).
        num_frames: end after this many frames (None: endless).
        stop: event that interrupts pacing sleeps.
    """

    def __init__(
        self,
        world,
        *,
        realtime: bool = True,
        start_ns: int | None = None,
        num_frames: int | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.world = world
        self.realtime = realtime
        self.num_frames = num_frames
        self.pacer = Pacer(world.fps, realtime=realtime, start_ns=start_ns, stop=stop)
        self._cond = threading.Condition()
        self._taken: set[int] = set()
        self._k = -1
        self._t_ns = 0
        self._images: list[np.ndarray] = []
        self.skipped = 0

    def frame_after(self, view: int, last_k: int) -> tuple[int, int, np.ndarray] | None:
        """(k, t_ns, image) of the first frame newer than ``last_k`` for ``view``; None at the end."""
        with self._cond:
            if 0 <= self._k <= last_k:
                # let every view take the current frame first (bounded: a stalled view is skipped)
                self._cond.wait_for(
                    lambda: len(self._taken) >= self.world.num_views or self._k > last_k,
                    timeout=max(0.5, 2.0 / self.pacer.fps),
                )
            if self._k <= last_k:
                k = self._k + 1
                if self.realtime:
                    due = int((time.time_ns() - self.pacer.t_ns(0)) * self.pacer.fps // 1e9)
                    if due > k:
                        self.skipped += due - k
                        k = due
                if self.num_frames is not None and k >= self.num_frames:
                    return None
                t_ns = self.pacer.wait(k)
                self._images = self.world.render(k)
                self._k, self._t_ns = k, t_ns
                self._taken = set()
                self._cond.notify_all()
            self._taken.add(view)
            if len(self._taken) >= self.world.num_views:
                self._cond.notify_all()
            return self._k, self._t_ns, self._images[view]


class SyntheticSource(Source):
    """View ``view`` of a :class:`SyntheticRig`.

    Args:
        camera: camera name.
        shared: the rig's shared renderer.
        view: this camera's index in the world's rig.
    """

    def __init__(self, camera: str, shared: SyntheticRig, view: int) -> None:
        if not 0 <= view < shared.world.num_views:
            raise SourceError(f"camera '{camera}': view {view} not in the synthetic rig of {shared.world.num_views}")
        self.camera = camera
        self.shared = shared
        self.view = view
        self._last_k = -1

    def open(self) -> None:
        self.shared.pacer.start()

    def read(self) -> Frame | None:
        got = self.shared.frame_after(self.view, self._last_k)
        if got is None:
            return None
        k, t_ns, image = got
        self._last_k = k
        return Frame(self.camera, image, t_ns, k)
