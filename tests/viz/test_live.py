"""The viewer's feeds and headless loop over real ZeroMQ sockets, and the view/overlay commands."""

from __future__ import annotations

import importlib

import threading
import time

import cv2
import numpy as np

from capture.bus import Publisher
from capture.messages import Status, encode
from viz import geometry as geo
from viz.live import BusFeed, SyntheticFeed, ViewSetup, run_headless
from viz.overlay import FramePoseMatcher

from .conftest import make_poses, wire_poses


def _wait_connected(pub, timeout_s=5.0):
    assert pub.wait_for_subscriber(timeout_s), "subscriber never connected"


def test_bus_feed_drains_to_the_newest_poses_and_keeps_every_status(ipc_endpoints):
    poses_ep, status_ep = ipc_endpoints
    pub, spub = Publisher(poses_ep, hwm=8), Publisher(status_ep, hwm=8)
    feed = BusFeed(poses_ep, "toy", [status_ep])
    try:
        _wait_connected(pub)
        _wait_connected(spub)
        for seq in (1, 2, 3):
            assert pub.send(wire_poses(seq, make_poses([(seq * 100.0, 0.0)]), [seq]), wait_ms=500)
        assert spub.send(Status("capture", "running", 1, missing=("cam2",)), wait_ms=500)
        assert spub.send(Status("inference", "running", 2), wait_ms=500)
        time.sleep(0.3)
        msg, statuses = feed.poll(timeout_ms=1000)
        assert msg.seq == 3 and feed.skipped == 2
        np.testing.assert_allclose(msg.poses[0, 2, 0], 300.0)
        assert [s.process for s in statuses] == ["capture", "inference"]
        assert feed.poll(timeout_ms=50) == (None, [])
    finally:
        feed.close()
        pub.close()
        spub.close()


def test_run_headless_renders_the_stream_to_png(ipc_endpoints, tmp_path, toy_rig):
    poses_ep, _ = ipc_endpoints
    pub = Publisher(poses_ep, hwm=4)
    feed = BusFeed(poses_ep, "toy")
    _wait_connected(pub)
    stop = threading.Event()

    def publish():
        seq = 0
        while not stop.is_set():
            seq += 1
            pub.send(wire_poses(seq, make_poses([(-500.0 + 20 * seq, 0.0), (700.0, 200.0)]), [1, 2]))
            time.sleep(0.01)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    setup = ViewSetup.from_rig(toy_rig, (0.0, 0.0, 800.0), (6000.0, 6000.0, 2000.0), 320, 180)
    try:
        n = run_headless(feed, setup, tmp_path / "frames", max_frames=6, backend="software", duration_s=20)
    finally:
        stop.set()
        thread.join(2)
        pub.close()
    files = sorted((tmp_path / "frames").glob("frame_*.png"))
    assert n == 6 and len(files) == 6
    last = cv2.imread(str(files[-1]))
    person = np.array(geo.to_bgr255(geo.track_color(2)))
    assert (np.abs(last.astype(int) - person).max(-1) < 30).sum() > 20, "person 2 not drawn"


def test_synthetic_feed_emits_valid_wire_messages_of_the_truth(toy_rig):
    world_mod = importlib.import_module("capture.synthetic.world")
    world = world_mod.SyntheticWorld(toy_rig, num_people=2, seed=1, fps=10.0, volume_center_mm=(0, 0, 800))
    feed = SyntheticFeed(world, "toy", realtime=False)
    msg, _ = feed.poll(10)
    msg2, _ = feed.poll(10)
    assert (msg.seq, msg2.seq) == (0, 1)
    encode(msg)  # validates every field like a receiver would
    people = world.people(1)
    pres = np.flatnonzero(people.present)
    np.testing.assert_allclose(msg2.poses[..., :3], people.joints_mm[pres], atol=1e-3)
    np.testing.assert_array_equal(msg2.track_ids, people.ids[pres])


def test_matcher_pairs_poses_with_their_frameset():
    class FS:
        def __init__(self, seq):
            self.seq = seq

    class P:
        def __init__(self, seq):
            self.frameset_seq = seq

    m = FramePoseMatcher(capacity=3)
    for s in range(1, 6):
        m.add_frameset(FS(s))
    assert m.match(P(1)) is None and m.unmatched == 1  # evicted (capacity 3)
    assert m.match(P(4)).seq == 4
    assert m.match(P(3)) is None  # older than a matched one: dropped with it
    assert m.match(P(5)).seq == 5


def test_view_command_writes_a_headless_mp4(tmp_path):
    from app.cli import main

    out = tmp_path / "view.mp4"
    rc = main(["view", "--synthetic", "--render", str(out), "--frames", "4", "--size", "320x180"])
    assert rc == 0
    cap = cv2.VideoCapture(str(out))
    ok, img = cap.read()
    assert ok and img.shape == (180, 320, 3) and img.std() > 5
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4


def test_overlay_command_writes_the_mosaic(tmp_path):
    from app.cli import main

    out = tmp_path / "ov"
    rc = main(["overlay", "--synthetic", "--out", str(out), "--count", "2", "--tile-width", "160"])
    assert rc == 0
    files = sorted(out.glob("*.png"))
    assert len(files) == 2
    img = cv2.imread(str(files[0]))
    assert img.shape == (2 * 90, 3 * 160, 3)  # 5 cameras of 640x360 -> 3 x 2 tiles of 160x90


def test_overlay_command_needs_a_source(capsys):
    from app.cli import main

    assert main(["overlay"]) == 2
    assert "--synthetic, --frames ENDPOINT" in capsys.readouterr().err


def test_overlay_command_pairs_a_frames_stream_with_a_poses_stream(ipc_endpoints, tmp_path):
    """Frames and poses on two real sockets; the mosaic shows each camera's image with the
    skeleton drawn where that camera projects it, and a missing camera as a red-captioned tile."""
    from app.cli import main
    from calib.projection import project_points
    from calib.rig_config import load_rig
    from capture.messages import FrameSet, View

    frames_ep, poses_ep = ipc_endpoints
    rig = load_rig("configs/rig.yaml")
    fpub, ppub = Publisher(frames_ep, hwm=8), Publisher(poses_ep, hwm=8)
    stop = threading.Event()
    people = make_poses([(0.0, -500.0)])

    def publish():
        seq = 0
        while not stop.is_set():
            seq += 1
            views, bufs = [], []
            for cam in list(rig.cameras)[:4]:  # the 5th camera is missing
                img = np.full((cam.height, cam.width, 3), 40, np.uint8)
                views.append(View(cam.name, seq, seq, cam.width, cam.height, "bgr8", img.nbytes))
                bufs.append(img)
            fpub.send(FrameSet(rig.name, seq, seq, seq, tuple(views), tuple(bufs), missing=(rig.names[4],)))
            ppub.send(wire_poses(seq, people, [4], rig=rig.name))
            time.sleep(0.03)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        rc = main(
            [
                "overlay",
                "--frames",
                frames_ep,
                "--poses",
                poses_ep,
                "--out",
                str(tmp_path / "ov"),
                "--count",
                "3",
                "--duration",
                "30",
                "--tile-width",
                "320",
                "--columns",
                "5",
            ]
        )
    finally:
        stop.set()
        thread.join(2)
        fpub.close()
        ppub.close()
    assert rc == 0
    files = sorted((tmp_path / "ov").glob("*.png"))
    assert len(files) == 3
    img = cv2.imread(str(files[-1]))
    assert img.shape == (180, 5 * 320, 3)
    color = np.array(geo.to_bgr255(geo.track_color(4)))
    cam = rig.cameras[0]
    uv = project_points(people[0, 2, :3].astype(float), cam) * 0.5  # tile is half size
    x, y = int(round(uv[0])), int(round(uv[1]))
    patch = img[y - 4 : y + 5, x - 4 : x + 5].astype(int)
    assert (np.abs(patch - color).max(-1) < 60).any(), "no skeleton at the projected pelvis in view 0"
    last = img[:, 4 * 320 :]
    assert last[30:].max() == 0 and last[:8, :, 2].mean() > last[:8, :, 0].mean()  # missing camera tile


def test_run_headless_stops_on_request_and_ticks(tmp_path, toy_rig):
    class Fixed:
        closed = False

        def __init__(self):
            self.seq = 0

        def poll(self, timeout_ms):
            self.seq += 1
            return wire_poses(self.seq, make_poses([(0.0, 0.0)]), [1]), []

        def close(self):
            Fixed.closed = True

    ticks = []
    setup = ViewSetup.from_rig(toy_rig, (0.0, 0.0, 800.0), (6000.0, 6000.0, 2000.0), 160, 90)
    n = run_headless(
        Fixed(), setup, tmp_path / "f", backend="software", on_tick=ticks.append, should_stop=lambda: len(ticks) >= 4
    )
    assert n == 4 and ticks == [0, 1, 2, 3] and Fixed.closed  # stop is checked before each tick
    assert len(list((tmp_path / "f").glob("*.png"))) == 4


def test_overlay_command_on_a_recorded_session_and_exported_poses(tmp_path):
    """`selfpose3d-live --record DIR --export FILE.jsonl` then `overlay --session DIR --poses-file FILE`."""
    from app.cli import main
    from app.export import JsonlWriter
    from calib.projection import project_points
    from calib.rig_config import load_rig
    from capture.recorder import save_session_rig
    from capture.session import SessionWriter

    rig = load_rig("configs/rig.yaml")
    session = tmp_path / "take"
    with SessionWriter(session, rig.names, rig_name=rig.name, codec="png") as sw:
        for seq in (10, 11, 12):
            views = [
                (c.name, seq, seq, np.full((c.height, c.width, 3), 30 + seq, np.uint8)) for c in list(rig.cameras)[1:]
            ]
            sw.write_set(seq, seq, views, missing=(rig.names[0],))
    save_session_rig(rig, rig.names, session)
    people = make_poses([(300.0, -800.0)])
    jw = JsonlWriter(tmp_path / "take.jsonl")
    for seq in (11, 12, 99):  # 99: no such frameset in the session
        jw.write(wire_poses(seq, people, [6], rig=rig.name))
    jw.close()
    out = tmp_path / "ov"
    rc = main(
        [
            "overlay",
            "--session",
            str(session),
            "--poses-file",
            str(tmp_path / "take.jsonl"),
            "--out",
            str(out),
            "--tile-width",
            "320",
            "--columns",
            "5",
        ]
    )
    assert rc == 0
    files = sorted(out.glob("*.png"))
    assert len(files) == 2
    img = cv2.imread(str(files[0]))
    first = img[:, :320]
    assert first[30:].max() == 0  # camera 0 was missing in the recording
    cam = rig.cameras[2]
    uv = project_points(people[0, 0, :3].astype(float), cam) * 0.5  # neck, tile is half size
    x, y = int(round(uv[0])) + 2 * 320, int(round(uv[1]))
    patch = img[y - 4 : y + 5, x - 4 : x + 5].astype(int)
    color = np.array(geo.to_bgr255(geo.track_color(6)))
    assert (np.abs(patch - color).max(-1) < 60).any(), "no skeleton at the projected neck in view 2"
    assert main(["overlay", "--session", str(session)]) == 2


def test_run_headless_gives_up_after_idle_timeout(tmp_path, toy_rig):
    class Silent:
        def poll(self, timeout_ms):
            time.sleep(timeout_ms / 1e3)
            return None, []

        def close(self):
            pass

    setup = ViewSetup.from_rig(toy_rig, (0.0, 0.0, 800.0), (6000.0, 6000.0, 2000.0), 160, 90)
    t0 = time.monotonic()
    n = run_headless(Silent(), setup, tmp_path / "f", backend="software", idle_timeout_s=0.4)
    assert n == 0 and 0.35 < time.monotonic() - t0 < 5.0


def test_overlay_command_on_predict_inputs_and_outputs(tmp_path, toy_rig):
    """`selfpose3d predict --images DIR --out poses.json` then `overlay --images DIR --predictions ...`."""
    import json

    from app.cli import main
    from calib.io import save_calibration
    from calib.projection import project_points
    from calib.common.skeleton import PANOPTIC15

    calib = save_calibration(toy_rig, tmp_path / "calib.toml")
    shots = tmp_path / "shots"
    shots.mkdir()
    for cam in list(toy_rig)[:3]:  # cam3 has no image: a missing view
        cv2.imwrite(str(shots / f"{cam.name}.png"), np.full((cam.height, cam.width, 3), 50, np.uint8))
    people = make_poses([(200.0, 100.0)])
    pred = {
        "cameras": toy_rig.names,
        "frames": [
            {
                "frame": "shots",
                "skeleton": {
                    "name": "panoptic15",
                    "joints": list(PANOPTIC15.joints),
                    "edges": [list(e) for e in PANOPTIC15.edges],
                },
                "people": [{"score": 0.8, "joints_mm": people[0, :, :3].tolist()}],
            }
        ],
    }
    (tmp_path / "poses.json").write_text(json.dumps(pred))
    out = tmp_path / "ov"
    rc = main(
        [
            "overlay",
            "--images",
            str(shots),
            "--calibration",
            str(calib),
            "--predictions",
            str(tmp_path / "poses.json"),
            "--out",
            str(out),
            "--tile-width",
            "640",
            "--columns",
            "4",
        ]
    )
    assert rc == 0
    img = cv2.imread(str(next(out.glob("*.png"))))
    assert img.shape == (360, 4 * 640, 3)
    assert img[40:, 3 * 640 :].max() == 0  # missing view
    uv = project_points(people[0, 2, :3].astype(float), toy_rig[1]) * 0.5
    x, y = int(round(uv[0])) + 640, int(round(uv[1]))
    # predict does not track: the overlay's tracker gives the person id 0 (its colour, not the
    # untracked grey), drawn at the opacity of its score 0.8 over the grey-50 background.
    from viz.overlay import confidence_alpha

    alpha = float(confidence_alpha(0.8))
    expected = 50 + alpha * (np.array(geo.to_bgr255(geo.track_color(0))) - 50)
    patch = img[y - 3 : y + 4, x - 3 : x + 4].astype(int)
    assert (np.abs(patch - expected).max(-1) < 12).any(), "no id-0 skeleton at the projected pelvis in cam1"
    assert main(["overlay", "--images", str(shots)]) == 2
