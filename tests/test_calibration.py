"""Calibration from the protocol: phase detection, sensor-to-segment alignment, quality, storage, live mode.

The shared examples carry the true sensor mounts (meta.json), which the pipeline never sees; here
they are the reference the estimated mounts are checked against.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sensorhub.csv_import import read_imu_csv
from sensorhub.motion import align, quat
from sensorhub.motion.calibration import (
    Calibration,
    CalibrationFileError,
    CalibrationPhaseError,
    CalibrationStep,
    LiveCalibration,
    calibrate,
    detect_phases,
    principal_axis,
)
from sensorhub.samples import ImuSamples

EXAMPLES = ("seated_right_9axis", "standing_left_6axis")


def _grid(examples_dir: Path, name: str) -> tuple[ImuSamples, ImuSamples, dict]:
    d = examples_dir / name
    pelvis, thigh = read_imu_csv(d / "pelvis.csv"), read_imu_csv(d / "thigh.csv")
    grid = align.common_grid(pelvis.t_s, thigh.t_s, 100.0)
    meta = json.loads((d / "meta.json").read_text())
    return align.resample_samples(pelvis, grid.t_s), align.resample_samples(thigh, grid.t_s), meta


def _axis_error_deg(q_est: np.ndarray, q_true: np.ndarray, axis: list[float]) -> float:
    """Angle between one segment axis as the two mounts see it in the sensor frame."""
    a = quat.rotate(quat.conjugate(q_est), np.array(axis))
    b = quat.rotate(quat.conjugate(q_true), np.array(axis))
    return float(np.degrees(np.arccos(np.clip(a @ b, -1.0, 1.0))))


@pytest.mark.parametrize("name", EXAMPLES)
def test_phases_are_found_where_the_protocol_was(examples_dir: Path, name: str) -> None:
    pelvis, thigh, meta = _grid(examples_dir, name)
    ph = detect_phases(pelvis.t_s, pelvis.gyr_rad_s, thigh.gyr_rad_s)
    seg = meta["segments"]
    assert ph.still1.start_s < 0.5 and abs(ph.still1.end_s - seg["static"][0][1]) < 0.4
    assert abs(ph.swings.start_s - seg["functional"][0][0]) < 0.4
    assert abs(ph.swings.end_s - seg["functional"][0][1]) < 0.6
    assert abs(ph.bows.start_s - seg["hinge"][0][0]) < 0.6
    assert abs(ph.still2.start_s - seg["static"][1][0]) < 0.4
    assert abs(ph.end_s - seg["static"][1][1]) < 0.4


@pytest.mark.parametrize("name", EXAMPLES)
def test_mounts_match_the_true_strapping(examples_dir: Path, name: str) -> None:
    pelvis, thigh, meta = _grid(examples_dir, name)
    cal = calibrate(pelvis, thigh, meta["side"])
    assert cal.quality.ok, cal.quality.advice
    q_true = {k: np.asarray(v) for k, v in meta["mounts_wxyz"].items()}
    # Pelvis: gravity and the bow axis pin it down to well under a degree.
    assert np.degrees(quat.relative_angle_rad(cal.q_segment_sensor["pelvis"], q_true["pelvis"])) < 1.0
    # Thigh: the long axis (gravity) is as good; the flexion axis carries the ab/adduction that the
    # example's swings couple to flexion (6-8 %, i.e. 3.5-4.6° about the long axis).
    assert _axis_error_deg(cal.q_segment_sensor["thigh"], q_true["thigh"], [0.0, 1.0, 0.0]) < 1.0
    assert np.degrees(quat.relative_angle_rad(cal.q_segment_sensor["thigh"], q_true["thigh"])) < 6.0
    for name_, b in cal.gyr_bias_rad_s.items():
        assert np.degrees(np.linalg.norm(b)) < 1.5, name_
    assert ("pelvis" in cal.mag_ref) == (pelvis.mag_uT is not None)


def test_poor_steps_are_named_with_what_to_redo(examples_dir: Path) -> None:
    pelvis, thigh, _ = _grid(examples_dir, "seated_right_9axis")
    ph = detect_phases(pelvis.t_s, pelvis.gyr_rad_s, thigh.gyr_rad_s)
    t = thigh.t_s
    # Fidgeting (4 deg/s, 1.5 Hz) during the first still phase, and swings cut to a fifth.
    gyr = thigh.gyr_rad_s.copy()
    s1 = ph.still1.mask(t)
    gyr[s1, 0] += np.radians(4.0) * np.sqrt(2.0) * np.sin(2 * np.pi * 1.5 * t[s1])
    gyr[ph.swings.mask(t)] *= 0.2
    poor = ImuSamples(t, thigh.acc_m_s2, gyr, thigh.mag_uT)
    cal = calibrate(pelvis, poor, "right", phases=ph)
    assert not cal.quality.ok
    advice = " | ".join(cal.quality.advice)
    assert "moved during the first still phase" in advice and "stand still 3 s" in advice
    assert "swings too small" in advice and "swing at least 30°" in advice
    swings = next(s for s in cal.quality.steps if s.step == "swings")
    assert 5.0 < swings.metrics["amplitude_deg"] < 15.0


def test_missing_protocol_step_raises_naming_it() -> None:
    t = np.arange(0.0, 10.0, 0.01)
    still = np.zeros((len(t), 3))
    with pytest.raises(CalibrationPhaseError, match="no leg swings"):
        detect_phases(t, still, still)


def test_principal_axis_of_a_noisy_hinge() -> None:
    rng = np.random.default_rng(0)
    axis = np.array([0.3, -0.5, 0.81])
    axis /= np.linalg.norm(axis)
    rate = np.sin(np.linspace(0, 20, 2000))[:, None] * axis + rng.normal(0, 0.02, (2000, 3))
    est, share = principal_axis(rate)
    assert abs(est @ axis) > 0.999
    assert share > 0.99


def test_calibration_json_round_trip_and_errors(examples_dir: Path, tmp_path: Path) -> None:
    pelvis, thigh, _ = _grid(examples_dir, "standing_left_6axis")
    cal = calibrate(pelvis, thigh, "left")
    path = tmp_path / "cal.json"
    cal.save(path)
    back = Calibration.load(path)
    for k in ("pelvis", "thigh"):
        np.testing.assert_allclose(back.q_segment_sensor[k], cal.q_segment_sensor[k], atol=1e-12)
        np.testing.assert_allclose(back.gyr_bias_rad_s[k], cal.gyr_bias_rad_s[k], atol=1e-15)
    assert back.side == "left" and back.quality.ok == cal.quality.ok
    assert back.phases is not None and back.phases.end_s == pytest.approx(cal.phases.end_s)  # type: ignore[union-attr]
    bad = tmp_path / "bad.json"
    bad.write_text('{"side": "up", "q_segment_sensor": {}}')
    with pytest.raises(CalibrationFileError, match="bad.json.*side"):
        Calibration.load(bad)
    bad.write_text("{not json")
    with pytest.raises(CalibrationFileError, match="line 1"):
        Calibration.load(bad)


def test_live_calibration_walks_the_steps_and_agrees_with_batch(examples_dir: Path) -> None:
    pelvis, thigh, _ = _grid(examples_dir, "seated_right_9axis")
    live = LiveCalibration("right", rate_hz=100.0)
    seen = []
    status = None
    for i0 in range(0, 2300, 10):  # 0.1-s blocks up to 23 s
        sl = slice(i0, i0 + 10)
        status = live.feed(*(ImuSamples(s.t_s[sl], s.acc_m_s2[sl], s.gyr_rad_s[sl], None if s.mag_uT is None else s.mag_uT[sl])
                             for s in (pelvis, thigh)))
        if not seen or seen[-1] != status.step:
            seen.append(status.step)
        if status.step is CalibrationStep.DONE:
            break
    assert seen == [CalibrationStep.STILL1, CalibrationStep.SWINGS, CalibrationStep.BOWS, CalibrationStep.STILL2, CalibrationStep.DONE]
    assert status is not None and status.calibration is not None
    verdicts = {v.step: v for v in status.verdicts}
    assert all(verdicts[s].ok for s in ("still1", "swings", "bows", "still2"))
    assert verdicts["swings"].metrics["count"] >= 4 and verdicts["bows"].metrics["count"] >= 2
    batch = calibrate(pelvis, thigh, "right")
    for k in ("pelvis", "thigh"):
        assert np.degrees(quat.relative_angle_rad(status.calibration.q_segment_sensor[k], batch.q_segment_sensor[k])) < 1.0
