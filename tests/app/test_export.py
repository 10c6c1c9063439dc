"""Exports: JSONL per frame (truncation-safe), CSV rows, TRC layout and axes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main
from app.export import CsvWriter, JsonlWriter, ZUP_TO_YUP, read_jsonl, take_tracks
from capture.messages import Poses
from calib.common.skeleton import PANOPTIC15


def _msg(seq, ids, offset):
    P = len(ids)
    poses = np.zeros((P, 15, 4), np.float32)
    poses[..., :3] = np.arange(45, dtype=np.float32).reshape(15, 3)[None] + offset + 1000 * np.arange(P)[:, None, None]
    poses[..., 3] = 0.9
    return Poses(
        rig="toy",
        seq=seq,
        frameset_seq=seq,
        t_capture_ns=10**9 + seq * 66_666_667,
        t_publish_ns=10**9 + seq * 66_666_667 + 50_000_000,
        skeleton_name="panoptic15",
        joints=PANOPTIC15.joints,
        edges=PANOPTIC15.edges,
        poses=poses,
        track_ids=np.asarray(ids, np.int64),
        timings_ms={"backbone": 1.0},
    )


def _take(path, frames=30):
    w = JsonlWriter(path)
    for k in range(frames):
        w.write(_msg(k, [3, 5] if k < 20 else [5], offset=10.0 * k))
    w.close()


def test_jsonl_round_trip_and_truncated_tail(tmp_path):
    path = tmp_path / "take.jsonl"
    _take(path)
    with open(path, "a") as f:
        f.write('{"seq": 99, "peo')  # a writer killed mid-line
    recs = list(read_jsonl(path))
    assert len(recs) == 30 and recs[0]["people"][0]["id"] == 3
    times, tracks, joints = take_tracks(path)
    assert sorted(tracks) == [3, 5] and joints[2] == "mid_hip"
    assert np.isnan(tracks[3][25]).all() and np.isfinite(tracks[5]).all()
    np.testing.assert_allclose(times[1], 0.066666667, atol=1e-6)
    np.testing.assert_allclose(tracks[3][4, 1], [3 + 40, 4 + 40, 5 + 40], atol=0.01)


def test_csv_writer_rows(tmp_path):
    w = CsvWriter(tmp_path / "t.csv", PANOPTIC15.joints)
    w.write(_msg(0, [1, 2], 0.0))
    w.close()
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0].startswith("seq,t_capture_s,track_id,score,neck_x_mm")
    assert len(lines) == 3 and lines[2].split(",")[2] == "2"


def test_export_command_trc_and_csv(tmp_path, capsys):
    take = tmp_path / "take.jsonl"
    _take(take)
    assert main(["export", str(take), "--format", "trc", "--out", str(tmp_path / "p.trc")]) == 0
    text = (tmp_path / "p.trc").read_text().splitlines()
    assert text[0].startswith("PathFileType\t4") and "mm" in text[2]
    assert text[2].split("\t")[2] == "30"  # default: the longest track (5, all 30 frames)
    row = [float(v) for v in text[5].split("\t")[2:5]]  # first frame, neck, y-up
    expected = (np.array([0.0, 1.0, 2.0]) + 1000.0) @ ZUP_TO_YUP.T  # track 5 is person index 1 (+1000)
    np.testing.assert_allclose(row, expected, atol=0.01)
    assert main(["export", str(take), "--format", "trc", "--track", "7", "--out", str(tmp_path / "x.trc")]) == 2
    assert "no track 7" in capsys.readouterr().err
    assert main(["export", str(take), "--format", "csv", "--out", str(tmp_path / "all.csv")]) == 0
    assert len((tmp_path / "all.csv").read_text().splitlines()) == 1 + 20 * 2 + 10


def test_missing_take_is_clear(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope.jsonl"), "--format", "csv", "--out", "x.csv"]) == 2
    assert "take not found" in capsys.readouterr().err


def test_yup_is_a_rotation():
    assert np.linalg.det(ZUP_TO_YUP) == pytest.approx(1.0)
    np.testing.assert_allclose(ZUP_TO_YUP @ [0, 0, 1], [0, 1, 0])


def test_jsonl_corrupt_middle_line_does_not_lose_the_rest(tmp_path, caplog):
    path = tmp_path / "take.jsonl"
    _take(path, frames=10)
    lines = path.read_text().splitlines()
    lines.insert(4, '{"seq": 3, "people": [garbage')
    lines.insert(7, "[1, 2, 3]")  # valid JSON but not a record
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level("WARNING"):
        recs = list(read_jsonl(path))
    assert [r["seq"] for r in recs] == [
        json.loads(line)["seq"]
        for line in path.read_text().splitlines()
        if "garbage" not in line and line.startswith("{")
    ]
    assert len(recs) == 10
    assert "skipped 2 unreadable line(s) (first: line 5)" in caplog.text
