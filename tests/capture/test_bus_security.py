"""Stream security: headers signed with the run key (checked before decoding), squatted ipc
endpoints refused, CURVE on tcp, sequence gaps that cannot be spoofed into huge counts."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
import zmq

from capture import messages
from capture.bus import (
    CurveClient,
    CurveServer,
    EndpointError,
    Publisher,
    Subscriber,
    curve_keypair,
    load_curve_key,
    save_curve_keys,
)
from capture.messages import AuthError, FrameSet, MessageError, Status, View, decode, encode, precheck

KEY = b"k" * 32


def _fs(seq: int, side: int = 8) -> FrameSet:
    img = np.full((side, side, 3), seq % 256, dtype=np.uint8)
    return FrameSet(
        "lab", seq, seq * 10, seq * 10 + 1, (View("c0", seq, seq * 10, side, side, "bgr8", img.nbytes),), (img,)
    )


def test_signed_messages_verify_and_any_change_breaks_the_mac():
    frames = encode(_fs(3), KEY)
    assert decode(frames, KEY).seq == 3
    assert decode(frames).seq == 3  # readers without the key ignore the extra 'mac' field
    with pytest.raises(AuthError, match="wrong MAC"):
        decode(frames, b"x" * 32)
    with pytest.raises(AuthError, match="no MAC"):
        decode(encode(_fs(3)), KEY)
    header = bytearray(bytes(frames[1]))
    i = header.index(b"seq") + 3  # the seq value right after its key
    header[i] ^= 1
    with pytest.raises(AuthError):
        decode([frames[0], bytes(header), *frames[2:]], KEY)
    with pytest.raises(AuthError):  # the topic is covered too
        decode([b"frames/lab2", *frames[1:]], KEY)
    status = encode(Status("inference", "error", 1, error="x"), KEY)
    assert decode(status, KEY).state == "error"


def test_rejection_happens_before_msgpack_runs(monkeypatch):
    calls = []
    real = messages.msgpack.unpackb
    monkeypatch.setattr(messages.msgpack, "unpackb", lambda *a, **k: calls.append(1) or real(*a, **k))
    good = encode(_fs(1), KEY)
    bads = (
        [good[0], b"\x8b" + b"\0" * (70 << 10), good[2]],  # oversized frameset header
        [good[0], *good[1:]] + [b""] * 80,  # too many frames
        encode(_fs(1)),  # unsigned
        encode(_fs(1), b"y" * 32),
    )  # signed with another key
    calls.clear()
    for bad in bads:
        with pytest.raises(MessageError):
            decode(bad, KEY)
    assert calls == []
    decode(good, KEY)
    assert calls == [1]
    with pytest.raises(MessageError, match="frames"):
        precheck([b"frames/lab"])


def test_subscriber_with_key_drops_strangers_and_counts_them(ipc_endpoint):
    other = ipc_endpoint + "-stranger"
    with (
        Publisher(ipc_endpoint, key=KEY) as pub,
        Publisher(other, key=None) as stranger,
        Subscriber([ipc_endpoint, other], [b"frames/"], hwm=64, key=KEY) as sub,
    ):
        assert pub.wait_for_subscriber(5.0) and stranger.wait_for_subscriber(5.0)
        for seq in range(5):
            assert stranger.send(_fs(1000 + seq), wait_ms=500)
            assert pub.send(_fs(seq), wait_ms=500)
        got = []
        while (m := sub.recv(500)) is not None:
            got.append(m.seq)
        assert got == list(range(5))
        assert sub.stats.unauthenticated == 5 and sub.stats.bad == 5


def test_binding_an_endpoint_someone_listens_on_is_refused(ipc_endpoint):
    with Publisher(ipc_endpoint, key=None):
        with pytest.raises(EndpointError, match="already bound"):
            Publisher(ipc_endpoint, key=None)
        with pytest.raises(EndpointError, match="already bound"):
            Subscriber(ipc_endpoint, bind=True)
    # a socket file left by a killed process (nobody listening) is replaced
    path = ipc_endpoint[len("ipc://") :]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path + "x")
    s.close()
    Publisher(ipc_endpoint + "x", key=None).close()


def test_sequence_jumps_beyond_what_time_allows_are_resets_not_drops(ipc_endpoint):
    with Publisher(ipc_endpoint, key=None) as pub, Subscriber(ipc_endpoint, [b"frames/"], hwm=64, key=None) as sub:
        assert pub.wait_for_subscriber(5.0)
        for seq in (0, 1, 4, 3_000_000_000_000, 3_000_000_000_001, 7, 8, 10):
            assert pub.send(_fs(seq), wait_ms=500)
            assert sub.recv(2000).seq == seq
        # 0,1,4: 2 lost; 4 -> 3e12 and 3e12+1 -> 7: resets; 7,8,10: 1 lost
        assert sub.stats.gaps == 3 and sub.stats.resets == 2


def test_sequence_keys_are_bounded(ipc_endpoint):
    with Publisher(ipc_endpoint, key=None) as pub, Subscriber(ipc_endpoint, [b"frames/"], hwm=1000, key=None) as sub:
        assert pub.wait_for_subscriber(5.0)
        for k in range(200):
            fs = _fs(k)
            assert pub.send(
                FrameSet(fs.rig, 5, fs.t_ref_ns, fs.t_pub_ns, fs.views, fs.buffers, source=f"s{k}"), wait_ms=500
            )
            assert sub.recv(2000) is not None
        assert len(sub._last_seq) <= 64


@pytest.mark.skipif(not zmq.has("curve"), reason="libzmq without CURVE")
def test_curve_encrypts_and_authenticates_tcp(tmp_path):
    server, client, intruder = curve_keypair(), curve_keypair(), curve_keypair()
    pub_file, sec_file = save_curve_keys(server, tmp_path / "capture")
    assert load_curve_key(pub_file) == server.public and (sec_file.stat().st_mode & 0o777) == 0o600
    port = _free_port()
    ep = f"tcp://127.0.0.1:{port}"
    with (
        Publisher(ep, key=None, curve=CurveServer(server, allowed_clients=(client.public,))) as pub,
        Subscriber(ep, [b"frames/"], key=None, curve=CurveClient(client, load_curve_key(pub_file))) as good,
        Subscriber(ep, [b"frames/"], key=None, curve=CurveClient(intruder, server.public)) as refused,
        Subscriber(ep, [b"frames/"], key=None, curve=CurveClient(client, intruder.public)) as wrong_server,
        Subscriber(ep, [b"frames/"], key=None) as plain,
    ):
        assert pub.wait_for_subscriber(5.0)
        end = time.monotonic() + 3.0
        seen = {"good": 0, "refused": 0, "wrong_server": 0, "plain": 0}
        seq = 0
        while time.monotonic() < end and seen["good"] < 5:
            pub.send(_fs(seq))
            seq += 1
            for name, sub in (("good", good), ("refused", refused), ("wrong_server", wrong_server), ("plain", plain)):
                seen[name] += sub.recv(20) is not None
        assert seen["good"] >= 5
        assert seen["refused"] == seen["wrong_server"] == seen["plain"] == 0
    with pytest.raises(EndpointError, match="CURVE is for tcp"):
        Publisher("ipc:///tmp/sp3d-curve-x", key=None, curve=CurveServer(server))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not zmq.has("curve"), reason="libzmq without CURVE")
def test_capture_and_record_over_curve_from_the_command_line(tmp_path, image_rig):
    """`selfpose3d capture --set stream.curve_keys=...` and `record --connect --curve-server-key`:
    the allowed recorder records, a plain one gets nothing."""
    import subprocess
    import sys
    from pathlib import Path

    from capture.session import SessionReader

    repo = Path(__file__).resolve().parents[2]
    save_curve_keys(curve_keypair(), tmp_path / "capture")
    save_curve_keys(curve_keypair(), tmp_path / "rec")
    Path(image_rig).write_text(Path(image_rig).read_text().replace("realtime: false", "realtime: false, loop: true"))
    ep = f"tcp://127.0.0.1:{_free_port()}"
    cap = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "capture",
            str(image_rig),
            "--endpoint",
            ep,
            "--seconds",
            "25",
            "--set",
            f"stream.curve_keys={tmp_path / 'capture'}",
            "--set",
            f"stream.curve_clients=[{tmp_path / 'rec.key'}]",
        ],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = [sys.executable, "-m", "app.cli", "record", "--rig", str(image_rig), "--connect", ep]
        plain = subprocess.run(
            [*base[:4], str(tmp_path / "plain"), *base[4:], "--seconds", "4"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=60,
        )
        good = subprocess.run(
            [
                *base[:4],
                str(tmp_path / "good"),
                *base[4:],
                "--frames",
                "5",
                "--seconds",
                "20",
                "--curve-server-key",
                str(tmp_path / "capture.key"),
                "--curve-keys",
                str(tmp_path / "rec"),
            ],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        cap.terminate()
        cap.wait(20)
    assert good.returncode == 0, good.stderr[-2000:] + cap.stderr.read()[-2000:]
    assert len(SessionReader(tmp_path / "good").sets) == 5
    # the plain recorder gets nothing: an empty (readable) session and a non-zero exit saying so
    assert plain.returncode == 2 and "nothing recorded: no frameset arrived" in plain.stderr
    assert len(SessionReader(tmp_path / "plain").sets) == 0


def test_curve_clients_need_curve_keys():
    from calib.configkit import ConfigError
    from capture.config import StreamConfig

    with pytest.raises(ConfigError, match="curve_clients"):
        StreamConfig(endpoint="tcp://127.0.0.1:5555", curve_clients=("a.key",))
