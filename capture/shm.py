"""Same-host zero-copy frames: pixels in a shared-memory ring, only a handle on the wire.

A 5 x 1080p frameset is 31 MB; pushing it through an ipc socket costs two kernel copies
(~6.5 ms at the ~4.8 GB/s this machine reaches), more than the latency budget. With the ``shm``
view encoding the capture process writes each view once into a ring of slots in a file under
``/dev/shm`` and the frameset header carries ``{"segment", "offset", "generation"}``; a
subscriber on the same host maps the file read-only and reads the pixels in place.

Ring layout (one file ``/dev/shm/<segment>``)::

    [generation: uint64 x S] [slot 0: slot_bytes] [slot 1] ... [slot S-1]

Writing slot ``s`` for frameset ``seq`` sets ``generation[s]`` odd (being written), copies the
pixels, then sets it to ``2*seq + 2``. A reader accepts the slot only if the generation equals the
handle's before (and, with :func:`still_valid`, after) use; a slot is overwritten ``ring`` framesets
later (``ring / fps`` seconds), so a consumer that drains to the newest set never sees a stale one.
(x86 keeps stores in order; that is what the odd/even protocol relies on.)
"""

from __future__ import annotations

import mmap
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from calib.common.errors import ShmError

SHM_DIR = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
_HEADER_ALIGN = 4096


class ShmWriter:
    """A ring of slots written by one capture process (created on first use, removed on close).

    Segments are named ``<segment>.<pid>``; creating one removes the segments of processes that
    no longer exist (a capture killed with SIGKILL cannot remove its own).

    Args:
        segment: file name stem under :data:`SHM_DIR` (e.g. ``selfpose3d-lab``).
        views: number of views per frameset.
        slot_bytes: capacity of one slot (the largest view, W*H*3).
        ring: framesets kept before a slot is reused (memory: ring * views * slot_bytes; 8 sets of
            5 x 1080p = 250 MB of /dev/shm).
    """

    def __init__(self, segment: str, *, views: int, slot_bytes: int, ring: int = 8) -> None:
        remove_stale_segments()
        self.segment = f"{segment}.{os.getpid()}"
        self.views = views
        self.slot_bytes = int(slot_bytes)
        self.ring = ring
        self.slots = ring * views
        self.header_bytes = -(-self.slots * 8 // _HEADER_ALIGN) * _HEADER_ALIGN
        self.path = SHM_DIR / self.segment
        size = self.header_bytes + self.slots * self.slot_bytes
        fd = os.open(self.path, os.O_CREAT | os.O_TRUNC | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, size)
            # MAP_POPULATE: the kernel faults every page in now, not during the first frames
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
            self._mm = mmap.mmap(fd, size, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self._gen = np.ndarray((self.slots,), np.uint64, buffer=self._mm)
        self._data = np.ndarray((self.slots, self.slot_bytes), np.uint8, buffer=self._mm, offset=self.header_bytes)

    def begin(self, seq: int, view: int, nbytes: int) -> np.ndarray:
        """The slot of (seq, view) as ``nbytes`` writable bytes, marked "being written" (readers
        reject it) until :meth:`end`."""
        if nbytes > self.slot_bytes:
            raise ShmError(f"{self.segment}: a {nbytes}-byte view exceeds the slot size {self.slot_bytes}")
        slot = (seq % self.ring) * self.views + view
        self._gen[slot] = 2 * seq + 1  # odd: being written
        return self._data[slot, :nbytes]

    def end(self, seq: int, view: int) -> tuple[int, int, int]:
        """Publish the slot of (seq, view); returns its handle (slot, offset, generation)."""
        slot = (seq % self.ring) * self.views + view
        generation = 2 * seq + 2
        self._gen[slot] = generation
        return slot, self.header_bytes + slot * self.slot_bytes, generation

    def write(self, seq: int, view: int, image: np.ndarray) -> tuple[int, int, int]:
        """Copy ``image`` into the slot of (seq, view); returns the handle (slot, offset, generation)."""
        flat = np.ascontiguousarray(image).reshape(-1)
        self.begin(seq, view, flat.nbytes)[:] = flat
        return self.end(seq, view)

    def close(self) -> None:
        """Unmap and remove the segment (readers that still map it keep their mapping)."""
        try:
            self._mm.close()
        except BufferError:
            pass  # views still exported in this process; the mapping goes when they do
        self.path.unlink(missing_ok=True)


def remove_stale_segments(prefix: str = "selfpose3d-") -> list[str]:
    """Unlink ``<prefix>*.<pid>`` segments whose process is gone; returns their names."""
    removed = []
    for path in SHM_DIR.glob(f"{prefix}*.*"):
        pid = path.suffix[1:]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
            removed.append(path.name)
        except PermissionError:
            pass  # alive, another user's
    return removed


class ShmFrameRing:
    """One camera's ring of frame slots in shared memory, filled on the camera's reader thread.

    :class:`capture.source.ThreadedReader` asks for the next slot (:meth:`next_buffer`) and hands
    it to :meth:`capture.source.Source.read_into`: a source that can decode straight into a
    buffer (OpenCV devices, streams and video files) writes its pixels there, so the frame reaches
    shared memory with no copy at all; any other source returns its own image and :meth:`commit`
    copies it in. Either way the frame comes back with its ``shm`` handle set, and publishing the
    set costs no pixel copy on the critical path.

    Args:
        segment: segment name stem (the ring is ``<segment>-<n>``, n counting re-creations).
        ring: frames kept before a slot is reused (a consumer may lag ``ring`` frames).
        shape: ``(H,W,3)`` frame shape if known: the ring is created (and its pages faulted in)
            now instead of at the first frame, so the first frames are not delayed.
    """

    def __init__(self, segment: str, ring: int = 8, shape: tuple[int, int, int] | None = None) -> None:
        self.segment = segment
        self.ring = ring
        self.in_place = 0  # frames the source wrote straight into a slot
        self.copied = 0  # frames copied into a slot
        self._writer: ShmWriter | None = None
        self._shape: tuple[int, int, int] | None = None
        self._count = 0
        self._n = 0  # index of the frame being written
        if shape is not None:
            self._create(tuple(int(x) for x in shape))

    def _create(self, shape: tuple[int, int, int]) -> None:
        if self._writer is not None:
            self._writer.close()
        self._count += 1
        nbytes = shape[0] * shape[1] * shape[2]
        self._writer = ShmWriter(f"{self.segment}-{self._count}", views=1, slot_bytes=nbytes, ring=self.ring)
        self._shape = shape

    def next_buffer(self) -> np.ndarray | None:
        """Writable ``(H,W,3)`` view of the next slot (marked "being written"), or None before
        the frame shape is known. Asking again without :meth:`commit` returns the same slot."""
        if self._writer is None:
            return None
        nbytes = self._shape[0] * self._shape[1] * self._shape[2]
        return self._writer.begin(self._n, 0, nbytes).reshape(self._shape)

    def commit(self, frame, buffer: np.ndarray | None):
        """The frame with its ``shm`` handle, its pixels in the slot (copied there unless the
        source decoded into ``buffer``)."""
        import dataclasses

        img = frame.image
        if buffer is not None and _same_array(img, buffer):
            self.in_place += 1
            slot, offset, generation = self._writer.end(self._n, 0)
        else:
            img = np.ascontiguousarray(img)
            if self._writer is None or img.shape != self._shape:
                self._create(img.shape)  # first frame, or the camera changed its resolution
            self.copied += 1
            slot, offset, generation = self._writer.write(self._n, 0, img)
        self._n += 1
        return dataclasses.replace(frame, shm=(self._writer.segment, slot, offset, generation))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    """True if ``a`` is exactly the memory of ``b`` (same start, shape and strides)."""
    return (
        a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


class _Segment:
    def __init__(self, path: Path) -> None:
        with open(path, "rb") as f:
            self.mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.ino = os.stat(path).st_ino
        self.size = len(self.mm)


_segments: dict[str, _Segment] = {}
_lock = threading.Lock()


def _segment(name: str) -> _Segment:
    path = SHM_DIR / name
    with _lock:
        seg = _segments.get(name)
        try:
            ino = os.stat(path).st_ino
        except FileNotFoundError:
            if seg is not None:  # the publisher exited: its last sets stay readable through our mapping
                return seg
            raise ShmError(
                f"shared-memory segment {path} does not exist (publisher gone, or not on this "
                "host: use encoding bgr8/jpeg across hosts)"
            ) from None
        if seg is None or seg.ino != ino:  # a new segment, or a restarted publisher recreated the file
            for gone in [n for n in _segments if n != name and not (SHM_DIR / n).exists()]:
                del _segments[gone]  # unmap segments whose publisher has gone (bounded memory)
            seg = _segments[name] = _Segment(path)
        return seg


def read_view(name: str, offset: int, generation: int, slot: int, shape: tuple[int, int, int]) -> np.ndarray:
    """Read-only ``(H,W,3)`` view of a slot, checked against its generation.

    Raises:
        ShmError: segment missing, handle out of range, or the slot was overwritten.
    """
    seg = _segment(name)
    nbytes = shape[0] * shape[1] * shape[2]
    if slot < 0 or (slot + 1) * 8 > seg.size or offset < 0 or offset + nbytes > seg.size:
        raise ShmError(
            f"{name}: handle (slot {slot}, offset {offset}, {nbytes} bytes) outside the {seg.size}-byte segment"
        )
    if int(np.frombuffer(seg.mm, np.uint64, count=1, offset=slot * 8)[0]) != generation:
        raise ShmError(f"{name}: slot {slot} was overwritten (consumer more than a ring behind); drop this set")
    return np.frombuffer(seg.mm, np.uint8, count=nbytes, offset=offset).reshape(shape)


def still_valid(name: str, slot: int, generation: int) -> bool:
    """True if the slot still holds that generation (call after using a view zero-copy)."""
    seg = _segment(name)
    return int(np.frombuffer(seg.mm, np.uint64, count=1, offset=slot * 8)[0]) == generation
