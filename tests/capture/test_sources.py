"""Sources (video file, image folder, Panoptic tree, OpenCV device, synthetic) and the threaded reader."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from capture.source import Frame, Pacer, Source, SourceError, ThreadedReader
from capture.sources.images import ImageFolderSource
from capture.sources.opencv import OpenCVSource
from capture.sources.panoptic import PanopticSource, panoptic_calibration_path, panoptic_first_frame
from capture.sources.video import VideoFileSource

START = 1_700_000_000_000_000_000


def _pattern(k: int, w: int = 64, h: int = 48) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 1] = 20 * k % 256  # frame number as a flat green level: survives lossy codecs
    img[: h // 2, : w // 2, 2] = 200
    return img


def _green(img: np.ndarray) -> int:
    return int(round(float(img[:, :, 1].mean()) / 20))


def _write_video(path, n, fps=25.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for k in range(n):
        writer.write(_pattern(k))
    writer.release()


def test_video_file_media_time_loop_and_pacing(tmp_path):
    path = tmp_path / "cam.avi"
    _write_video(path, 6)
    with VideoFileSource("c", path, realtime=False, start_ns=START) as src:
        frames = list(src.frames())
    assert [f.frame_index for f in frames] == list(range(6))
    assert [_green(f.image) for f in frames] == list(range(6))
    assert [f.t_ns - START for f in frames] == [k * 40_000_000 for k in range(6)]  # the file's 25 fps
    with VideoFileSource("c", path, realtime=False, start_ns=START, loop=True, fps=50) as src:
        looped = [src.read() for _ in range(14)]
    assert [_green(f.image) for f in looped] == [k % 6 for k in range(14)]
    assert looped[-1].t_ns - START == 13 * 20_000_000  # time keeps increasing across laps
    t0 = time.perf_counter()
    with VideoFileSource("c", path, fps=50.0, realtime=True) as src:
        assert len(list(src.frames())) == 6
    assert time.perf_counter() - t0 >= 5 / 50 - 0.01  # paced: frame 5 not before 100 ms
    with pytest.raises(SourceError, match="not found"):
        VideoFileSource("c", tmp_path / "nope.avi").open()


def test_video_file_decodes_into_the_buffer_it_is_given(tmp_path):
    path = tmp_path / "cam.avi"
    _write_video(path, 4)
    out = np.zeros((48, 64, 3), np.uint8)
    with VideoFileSource("c", path, realtime=False, start_ns=START) as src:
        frames = [src.read_into(out) for _ in range(2)]
        assert all(f.image is out for f in frames) and _green(out) == 1
        wrong = np.zeros((10, 10, 3), np.uint8)  # another size: the source returns its own image
        other = src.read_into(wrong)
        assert other.image.shape == (48, 64, 3) and not np.shares_memory(other.image, wrong)
        assert _green(other.image) == 2 and src.read().frame_index == 3


def test_image_folder_in_name_order(tmp_path):
    for k in (3, 1, 2):
        cv2.imwrite(str(tmp_path / f"img_{k:03d}.png"), _pattern(k))
    (tmp_path / "notes.txt").write_text("ignored")
    with ImageFolderSource("c", tmp_path, fps=10.0, realtime=False, start_ns=START) as src:
        frames = list(src.frames())
    assert [_green(f.image) for f in frames] == [1, 2, 3]
    np.testing.assert_array_equal(frames[0].image, _pattern(1))  # png: exact
    assert frames[2].t_ns == START + 200_000_000
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no .* images"):
        ImageFolderSource("c", empty).open()


def _panoptic_tree(root, cams=("00_03", "00_06"), numbers=(168, 169, 170, 171), skip=(("00_06", 170),)):
    for cam in cams:
        d = root / "hdImgs" / cam
        d.mkdir(parents=True)
        for n in numbers:
            if (cam, n) not in skip:
                cv2.imwrite(str(d / f"{cam}_{n:08d}.jpg"), _pattern(n - 160))
    (root / f"calibration_{root.name}.json").write_text("{}")


def test_panoptic_images_frame_number_is_time(tmp_path):
    seq = tmp_path / "160906_pizza1"
    _panoptic_tree(seq)
    assert panoptic_calibration_path(seq).name == "calibration_160906_pizza1.json"
    first = panoptic_first_frame(seq, ["00_03", "00_06"])
    assert first == 168
    fps = 29.97
    out = {}
    for cam in ("00_03", "00_06"):
        with PanopticSource(cam, seq, first_frame=first, realtime=False, start_ns=START) as src:
            out[cam] = list(src.frames())
    assert [f.frame_index for f in out["00_03"]] == [168, 169, 170, 171]
    assert [f.frame_index for f in out["00_06"]] == [168, 169, 171]
    a, b = out["00_03"][3], out["00_06"][2]
    assert a.t_ns == b.t_ns == START + round(3 * 1e9 / fps)  # same frame number, same time
    assert _green(a.image) == 11
    with pytest.raises(SourceError, match="available HD cameras"):
        PanopticSource("00_30", seq).open()


def test_panoptic_video_and_range(tmp_path):
    seq = tmp_path / "seq"
    (seq / "hdVideos").mkdir(parents=True)
    _write_video(seq / "hdVideos" / "hd_00_12.mp4", 8)
    with PanopticSource("00_12", seq, first_frame=2, realtime=False, start_ns=START) as src:
        frames = list(src.frames())
    assert [f.frame_index for f in frames] == list(range(2, 8))
    assert [_green(f.image) for f in frames] == list(range(2, 8))
    assert frames[0].t_ns == START


def test_opencv_source_reads_and_fails_clearly(tmp_path):
    path = tmp_path / "cam.avi"
    _write_video(path, 3)
    with OpenCVSource("c", str(path)) as src:
        before = time.time_ns()
        f = src.read()
        assert f.frame_index == 0 and before <= f.t_ns <= time.time_ns()  # timestamp at grab
        src.read(), src.read()
        with pytest.raises(SourceError, match="grab failed"):
            src.read()
    with pytest.raises(SourceError, match="cannot open"):
        OpenCVSource("c", str(tmp_path / "no_such_device")).open()


class FakeSource(Source):
    """Scriptable source: fails to open ``open_failures`` times, raises on reads listed in
    ``bad_reads`` (global read counter), ends after ``n`` frames or blocks forever."""

    live = True

    def __init__(self, n=None, open_failures=0, bad_reads=(), period_s=0.0, block=False):
        self.camera = "fake"
        self.n, self.open_failures, self.bad_reads = n, open_failures, set(bad_reads)
        self.period_s, self.block = period_s, block
        self.opens = self.reads = self.k = 0
        self.closed = 0

    def open(self):
        self.opens += 1
        if self.opens <= self.open_failures:
            raise SourceError("device busy")

    def read(self):
        self.reads += 1
        if self.block:
            threading.Event().wait()
        time.sleep(self.period_s)
        if self.reads in self.bad_reads:
            raise SourceError("usb glitch")
        if self.n is not None and self.k >= self.n:
            return None
        self.k += 1
        return Frame("fake", np.zeros((2, 2, 3), np.uint8), time.time_ns(), self.k - 1)

    def close(self):
        self.closed += 1


def _wait(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.005)
    return cond()


def test_reader_latest_frame_wins_and_ends():
    src = FakeSource(n=50)
    with ThreadedReader(src) as reader:
        assert _wait(lambda: reader.ended)
        frame = reader.take()
        assert frame.frame_index == 49 and reader.take() is None
        assert reader.frames_read == 50 and reader.overwritten == 49
        assert reader.state == "ended"
    assert src.closed >= 1


def test_reader_failure_budget_reopens_with_backoff():
    # reads 3-4 fail (within a budget of 2), reads 10-13 fail (over it: reopen); opens 2-3 fail
    src = FakeSource(n=30, open_failures=0, bad_reads=(3, 4, 10, 11, 12, 13), period_s=0.001)
    notify = threading.Event()
    reader = ThreadedReader(src, failure_budget=2, backoff_s=(0.01, 0.04), notify=notify)
    reader.start()
    assert notify.wait(2.0)
    assert _wait(lambda: reader.ended)
    assert reader.reopens == 1 and src.opens == 2 and reader.frames_read == 30
    src2 = FakeSource(n=5, open_failures=3)
    t0 = time.perf_counter()
    with ThreadedReader(src2, backoff_s=(0.02, 0.05)) as r2:
        assert _wait(lambda: r2.ended)
    assert src2.opens == 4 and time.perf_counter() - t0 >= 0.02 + 0.04 + 0.05 - 0.005  # 20, 40, 50 ms
    assert r2.frames_read == 5


def test_reader_reports_retrying_state_and_stops_in_bounded_time():
    src = FakeSource(open_failures=10**6)
    reader = ThreadedReader(src, backoff_s=(0.01, 0.02)).start()
    assert _wait(lambda: reader.state.startswith("retrying"))
    assert "device busy" in reader.state
    assert reader.stop(1.0) and reader.state == "stopped"
    blocked = ThreadedReader(FakeSource(block=True)).start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    assert blocked.stop(0.2) is False  # stuck in read: abandoned, not waited on forever
    assert time.perf_counter() - t0 < 0.5


def test_pacer_interrupts_on_stop():
    stop = threading.Event()
    pacer = Pacer(0.5, realtime=True, start_ns=time.time_ns(), stop=stop)
    threading.Timer(0.05, stop.set).start()
    t0 = time.perf_counter()
    pacer.wait(1)  # due in 2 s
    assert time.perf_counter() - t0 < 1.0


def test_factory_builds_a_rig_of_media_sources_on_one_timeline(image_rig):
    from calib.rig_config import load_rig
    from capture.sources.factory import build_sources

    rig = load_rig(image_rig)
    sources = build_sources(rig, ["cam2", "cam0"], stop=threading.Event(), start_ns=START, lockstep=False)
    assert [s.camera for s in sources] == ["cam2", "cam0"]
    firsts = []
    for s in sources:
        with s:
            firsts.append(list(s.frames()))
    assert [len(f) for f in firsts] == [6, 6]
    assert [f.t_ns for f in firsts[0]] == [f.t_ns for f in firsts[1]]  # shared start: same instants
    assert firsts[0][1].t_ns - START == round(1e9 / 12)


def test_synthetic_views_are_genlocked_and_rendered_once_per_frame(toy_rig):
    from calib.camera import CameraRig
    from calib.io import scale_intrinsics
    from capture.sources.synthetic import SyntheticRig, SyntheticSource
    from capture.synthetic.world import SyntheticWorld

    small = CameraRig(tuple(scale_intrinsics(c, 80, 45) for c in toy_rig)[:2])
    world = SyntheticWorld(small, num_people=1, seed=3, fps=10.0)
    calls = []
    render = world.render
    world.render = lambda k, views=None: calls.append(k) or render(k, views)
    shared = SyntheticRig(world, realtime=False, start_ns=START, num_frames=3)
    readers = [ThreadedReader(SyntheticSource(c, shared, i)) for i, c in enumerate(small.names)]
    got = {c: [] for c in small.names}
    for r in readers:
        r.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(r.ended for r in readers):
        for r in readers:
            f = r.take()
            if f is not None:
                got[f.camera].append((f.frame_index, f.t_ns))
        time.sleep(0.001)
    for r in readers:
        if (f := r.take()) is not None:
            got[f.camera].append((f.frame_index, f.t_ns))
    assert calls == [0, 1, 2]  # one render per frame, shared by the views
    assert got["cam0"][-1] == got["cam1"][-1] == (2, START + 200_000_000)
    expected = world.render(1)
    assert expected[0].shape == (45, 80, 3)


def test_media_source_that_cannot_open_fails_fast_and_factory_checks_paths(image_rig, tmp_path):
    from calib.rig_config import load_rig
    from capture.sources.factory import build_sources

    src = FakeSource(n=3, open_failures=1)
    src.live = False
    with ThreadedReader(src, backoff_s=(5.0, 5.0)) as reader:
        assert _wait(lambda: reader.ended, timeout=2.0)
    assert reader.state.startswith("error: ") and "device busy" in reader.state and src.opens == 1
    rig = load_rig(image_rig)
    image_rig.write_text(image_rig.read_text().replace("uri: frames/cam1,", "uri: nowhere,"))
    with pytest.raises(SourceError, match="camera 'cam1': image folder .*nowhere not found"):
        build_sources(load_rig(image_rig), stop=threading.Event())
    assert rig.names == ["cam0", "cam1", "cam2", "cam3"]


def test_lossless_reader_delivers_every_frame_to_a_slow_consumer():
    src = FakeSource(n=30)
    taken = []
    with ThreadedReader(src, lossless=True) as reader:
        end = time.monotonic() + 10
        while len(taken) < 30 and time.monotonic() < end:
            f = reader.take()
            if f is not None:
                taken.append(f.frame_index)
                time.sleep(0.002)  # slower than the source
    assert taken == list(range(30)) and reader.overwritten == 0
    blocked = ThreadedReader(FakeSource(n=100), lossless=True).start()
    assert _wait(lambda: blocked.frames_read == 1)
    assert blocked.stop(1.0)  # a reader waiting for its consumer still stops promptly
