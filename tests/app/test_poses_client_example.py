"""The documented 20-line poses client (docs/examples/poses_client.py) works against our publisher."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import numpy as np

from calib.common.paths import REPO_ROOT
from capture.bus import Publisher
from capture.messages import Poses
from calib.common.skeleton import PANOPTIC15

EXAMPLE = REPO_ROOT / "docs" / "examples" / "poses_client.py"


def test_example_client_prints_tracked_people(tmp_path):
    assert len(EXAMPLE.read_text().splitlines()) <= 30
    endpoint = f"ipc://{tmp_path}/poses-{uuid.uuid4().hex[:6]}"
    poses = np.zeros((2, 15, 4), np.float32)
    poses[:, 2, :3] = [[100.0, 200.0, 900.0], [-500.0, 40.0, 950.0]]
    with Publisher(endpoint, hwm=100) as pub:
        client = subprocess.Popen([sys.executable, str(EXAMPLE), endpoint, "3"], stdout=subprocess.PIPE, text=True)
        seq, deadline = 0, time.monotonic() + 30
        while client.poll() is None and time.monotonic() < deadline:
            pub.send(
                Poses(
                    rig="toy",
                    seq=seq,
                    frameset_seq=seq,
                    t_capture_ns=1,
                    t_publish_ns=2,
                    skeleton_name="panoptic15",
                    joints=PANOPTIC15.joints,
                    edges=PANOPTIC15.edges,
                    poses=poses,
                    track_ids=np.array([4, 9]),
                )
            )
            seq += 1
            time.sleep(0.02)
        out, _ = client.communicate(timeout=10)
    assert client.returncode == 0
    lines = out.strip().splitlines()
    assert len(lines) == 6
    assert "person 4: mid-hip at [100. 200. 900.] mm" in lines[0]
    assert "person 9: mid-hip at [-500.   40.  950.] mm" in lines[1]
