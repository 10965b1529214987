"""End-to-end checks of ``sensorhub analyze`` on recordings and on IMU CSV pairs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sensorhub.cli import main
REPLAY_DATA = Path(__file__).resolve().parent.parent / "replay_data"

ANGLE_HEADER = ["t", "hip_flexion", "hip_adduction", "hip_rotation", "pelvis_tilt", "pelvis_obliquity", "pelvis_rotation"]


def _check_against_truth(out: Path, truth_reps: list[dict], time_offset_s: float = 0.0) -> None:
    with (out / "angles.csv").open() as fh:
        reader = csv.reader(fh)
        assert next(reader) == ANGLE_HEADER
        rows = [list(map(float, r)) for r in reader]
    t = [r[0] for r in rows]
    assert len(rows) > 1000
    assert (len(t) - 1) / (t[-1] - t[0]) >= 50.0  # at least 50 Hz
    doc = json.loads((out / "reps.json").read_text())
    reps = doc["reps"]
    assert len(reps) == len(truth_reps)
    for got, want in zip(reps, truth_reps):
        for key in ("index", "t_start", "t_end", "peak_internal_rotation", "peak_external_rotation", "compensation", "score"):
            assert key in got
        assert got["peak_internal_rotation"] == pytest.approx(want["peak_internal_rotation"], abs=3.0)
        assert got["peak_external_rotation"] == pytest.approx(want["peak_external_rotation"], abs=3.0)
        assert got["compensation"] is want["compensation"]
        assert 0.0 <= got["score"] <= 100.0
        assert got["t_start"] == pytest.approx(want["t_start"] + time_offset_s, abs=1.0)
    assert doc["summary"]
    assert (out / "report.png").stat().st_size > 10_000
    assert (out / "calibration.json").exists()


def test_analyze_recording_matches_simulated_truth(tmp_path: Path) -> None:
    rec = REPLAY_DATA / "seated_right_9axis.shr"
    assert main(["analyze", str(rec), "--out", str(tmp_path)]) == 0
    truth = json.loads((REPLAY_DATA / "seated_right_9axis.reps.json").read_text())
    truth_reps = truth["reps"] if isinstance(truth, dict) else truth
    _check_against_truth(tmp_path, truth_reps)


def test_analyze_csv_pair_matches_example_truth(examples_dir: Path, tmp_path: Path) -> None:
    ex = examples_dir / "standing_left_6axis"
    rc = main(["analyze", "--pelvis", str(ex / "pelvis.csv"), "--thigh", str(ex / "thigh.csv"),
               "--side", "left", "--drill", "standing_rotation", "--out", str(tmp_path), "--no-report"])
    assert rc == 0
    truth_reps = json.loads((ex / "reps.json").read_text())
    assert len(json.loads((tmp_path / "reps.json").read_text())["reps"]) == len(truth_reps)
    assert not (tmp_path / "report.png").exists()


def test_stored_calibration_can_be_applied(tmp_path: Path) -> None:
    rec = REPLAY_DATA / "seated_right_9axis.shr"
    assert main(["analyze", str(rec), "--out", str(tmp_path / "a"), "--no-report"]) == 0
    cal = tmp_path / "a" / "calibration.json"
    assert main(["analyze", str(rec), "--out", str(tmp_path / "b"), "--no-report", "--calibration", str(cal)]) == 0
    doc = json.loads((tmp_path / "b" / "reps.json").read_text())
    assert doc["analysis"]["calibration_source"] != json.loads((tmp_path / "a" / "reps.json").read_text())["analysis"]["calibration_source"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["analyze", "--out", "X"], "give a recording"),
        (["analyze", "--pelvis", "p.csv", "--thigh", "t.csv", "--out", "X"], "needs --side"),
        (["analyze", "missing.shr", "--out", "X"], "recording not found: missing.shr"),
    ],
)
def test_bad_invocations_give_one_clear_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_unknown_drill_lists_valid_names(examples_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ex = examples_dir / "seated_right_9axis"
    rc = main(["analyze", "--pelvis", str(ex / "pelvis.csv"), "--thigh", str(ex / "thigh.csv"), "--side", "right",
               "--drill", "moonwalk", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "moonwalk" in err and "seated_rotation" in err
