"""Minimal subscriber of selfpose3d-live's 3D poses (needs only pyzmq, msgpack and numpy).

python docs/examples/poses_client.py [ENDPOINT] [N_FRAMES]
"""

import sys

import msgpack
import numpy as np
import zmq

endpoint = sys.argv[1] if len(sys.argv) > 1 else "ipc:///tmp/selfpose3d-poses"
frames = int(sys.argv[2]) if len(sys.argv) > 2 else 0  # 0: forever
sock = zmq.Context.instance().socket(zmq.SUB)
sock.connect(endpoint)
sock.setsockopt(zmq.SUBSCRIBE, b"poses/")
while True:
    topic, header, *buffers = sock.recv_multipart()
    h = msgpack.unpackb(header)
    if h.get("v") != 1 or h.get("kind") != "poses":
        continue  # another schema version or kind: skip it
    poses = np.frombuffer(buffers[0], np.float32).reshape(h["P"], h["J"], 4)  # x, y, z mm, score
    for pid, person in zip(h["track_ids"], poses):
        print(f"seq {h['seq']} person {pid}: mid-hip at {person[2, :3].round(0)} mm")
    frames -= 1
    if frames == 0:
        break
