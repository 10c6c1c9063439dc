"""The synthetic world as a rig of cameras (one source per view, sharing one world)."""

from __future__ import annotations

import threading

from capture.source import Frame, Pacer, Source, SourceError


class SyntheticSource(Source):
    """View ``view`` of a :class:`capture.synthetic.world.SyntheticWorld`.

    Frame ``k`` is rendered at ``start_ns + k / fps`` (realtime) or as fast as possible. The
    world is shared by the rig's sources; ``lock`` serialises rendering (the world caches).

    Args:
        camera: camera name.
        world: the shared world.
        view: this camera's index in the world's rig.
        lock: lock shared by the sources of one world.
        num_frames: stop after this many frames (None: endless).
        realtime, start_ns, stop: as for :class:`capture.sources.video.VideoFileSource`.
    """

    def __init__(self, camera: str, world, view: int, *, lock: threading.Lock, num_frames: int | None = None,
                 realtime: bool = True, start_ns: int | None = None, stop: threading.Event | None = None) -> None:
        if not 0 <= view < world.num_views:
            raise SourceError(f"camera '{camera}': view {view} not in the synthetic rig of {world.num_views}")
        self.camera = camera
        self.world = world
        self.view = view
        self.lock = lock
        self.num_frames = num_frames
        self._pacer = Pacer(world.fps, realtime=realtime, start_ns=start_ns, stop=stop)
        self._k = 0

    def open(self) -> None:
        self._pacer.start()

    def read(self) -> Frame | None:
        if self.num_frames is not None and self._k >= self.num_frames:
            return None
        k = self._k
        with self.lock:
            image = self.world.render(k, views=[self.view])[0]
        self._k += 1
        return Frame(self.camera, image, self._pacer.wait(k), k)
