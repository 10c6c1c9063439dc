"""The original-code benchmark skips cleanly (status 0, one line) when no checkout is given."""

from __future__ import annotations

from benchmarks.bench_original import main


def test_skips_without_a_checkout(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["--original", str(tmp_path / "absent"), "--out", str(out)]) == 0
    assert main(["--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("skipped: no original SelfPose3d checkout") == 2 and not out.exists()
