"""Drives the interactive viewer in a subprocess (under Xvfb) for tests/viz/test_window.py.

Usage: python -m tests.viz.window_driver OUT_DIR. Shows two known people from a fixed feed,
turns every layer but the skeletons off with the number keys, saves a screenshot, presses
'f' (follow) and prints a JSON summary on the last line.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

from capture.messages import Poses, now_ns
from calib.common.skeleton import PANOPTIC15
from tests.viz.conftest import make_poses
from viz import geometry as geo
from viz.live import ViewSetup
from viz.window import ViewerWindow

POSES = make_poses([(-800.0, 0.0), (900.0, 300.0)])
IDS = np.array([3, 8])


class FixedFeed:
    def __init__(self) -> None:
        self.seq = 0

    def poll(self, timeout_ms: int):
        time.sleep(0.05)
        self.seq += 1
        t = now_ns()
        return Poses(
            "toy", self.seq, self.seq, t, t, PANOPTIC15.name, PANOPTIC15.joints, PANOPTIC15.edges, POSES, IDS
        ), []

    def close(self) -> None:
        pass


def main(out_dir: str) -> int:
    out = Path(out_dir)
    cam = geo.orbit_camera((0.0, 0.0, 900.0), 5500.0, -70.0, 15.0, 480, 320, fov_y_deg=45.0)
    setup = ViewSetup(None, np.array([0.0, 0.0, 800.0]), np.array([6000.0, 6000.0, 2000.0]), cam)
    win = ViewerWindow(FixedFeed(), setup, duration_s=4.5, screenshot_dir=out)
    app = win.gui.Application.instance
    actions = []
    shot = out / "skeletons.png"

    def on_main(fn):
        app.post_to_main_thread(win.window, fn)

    def drive():
        time.sleep(1.2)
        for key in "234567":  # joints, labels, frusta, grid, volume, hud off
            on_main(lambda k=key: actions.append(win.handle_key(k)))
            time.sleep(0.1)
        time.sleep(0.6)
        on_main(lambda: win.screenshot(shot))
        time.sleep(1.0)
        on_main(lambda: actions.append(win.handle_key("f")))

    threading.Thread(target=drive, daemon=True).start()
    win.run()
    summary = {
        "frames_shown": win.frames_shown,
        "actions": actions,
        "follow_id": win.state.follow_id,
        "screenshot": str(shot),
        "K": cam.K.tolist(),
        "R": cam.R.tolist(),
        "t_mm": cam.t_mm.tolist(),
        "width": cam.width,
        "height": cam.height,
        "poses": POSES.tolist(),
        "ids": IDS.tolist(),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
