"""A thigh frame flipped front to back is flagged by the batch pipeline from the drill's posture.

Without magnetometers nothing in the calibration tells the front of the thigh from its back but
the swings (the side that reached further is taken as flexion). An athlete who swung further back
than forward gets a thigh frame turned 180° about the femur's long axis, and a seated drill then
reads as a hip *extension* of about 90°: no rep is counted (the posture is outside the drill's
range) and, before this check, nothing said why. Here the flipped frame is produced directly (the
session's own calibration with the thigh mount turned by 180° about the femur axis) and the
pipeline must judge the swings step poor and say what to redo; the unflipped session must not be
flagged.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from sensorhub.analysis import to_table
from sensorhub.drills import detect_reps
from sensorhub.ingest import Ingest, assemble
from sensorhub.motion import quat
from sensorhub.motion.calibration import Calibration
from sensorhub.motion.pipeline import FLIPPED_FLEXION_DEG, AngleSeries, analyze_imu
from sensorhub.samples import ImuSamples
from sensorhub.sim import SimConfig, simulate


@pytest.fixture(scope="module")
def six_axis() -> tuple[ImuSamples, ImuSamples, str]:
    session = simulate(SimConfig(drill="seated_rotation", seed=3, reps=4, compensation_reps=(), no_mag=True))
    data = assemble(session.notifications, Ingest())
    seg = {s.sensor_id: name for name, s in session.sensors.items()}
    samples = {seg[sid]: x for sid, x in data.items()}
    return samples["pelvis"], samples["thigh"], session.config.side


@pytest.fixture(scope="module")
def good(six_axis: tuple[ImuSamples, ImuSamples, str]) -> AngleSeries:
    return analyze_imu(*six_axis)


def _flipped(cal: Calibration) -> Calibration:
    q_mount = quat.multiply(quat.from_axis_angle(np.array([0.0, 1.0, 0.0]), np.pi), cal.q_segment_sensor["thigh"])
    return dataclasses.replace(cal, q_segment_sensor={**cal.q_segment_sensor, "thigh": q_mount}, thigh_mag_refined_deg=None)


def test_a_correct_thigh_frame_is_not_flagged(good: AngleSeries) -> None:
    cal = good.diagnostics.calibration
    assert cal is not None and cal.quality.ok, cal.quality.advice if cal else None
    assert not any("flipped" in n for n in good.diagnostics.notes)
    drill = good.t_s > (good.diagnostics.drill_start_s or 0.0)
    assert np.nanmedian(good.hip_flexion_deg[drill]) > 60.0  # seated


def test_a_flipped_thigh_frame_is_flagged_with_what_to_redo(six_axis: tuple[ImuSamples, ImuSamples, str], good: AngleSeries,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    pelvis, thigh, side = six_axis
    assert good.diagnostics.calibration is not None
    with caplog.at_level(logging.WARNING, logger="sensorhub.motion.pipeline"):
        series = analyze_imu(pelvis, thigh, side, calibration=_flipped(good.diagnostics.calibration))
    drill = series.t_s > (series.diagnostics.drill_start_s or 0.0)
    held = float(np.nanmedian(series.hip_flexion_deg[drill]))
    assert held < FLIPPED_FLEXION_DEG  # the seated drill reads as a hip extension
    assert detect_reps(to_table(series), "seated_rotation").reps == []  # what the athlete saw: no reps, no reason

    cal = series.diagnostics.calibration
    assert cal is not None and not cal.quality.ok
    swings = next(s for s in cal.quality.steps if s.step == "swings")
    assert not swings.ok
    assert "flipped" in swings.advice and "further forward than back" in swings.advice
    assert swings.metrics["drill_flexion_deg"] == pytest.approx(held, abs=10.0)
    assert swings.metrics["drill_extension_s"] > 10.0
    assert any("flipped" in n for n in series.diagnostics.notes)
    assert any("flipped" in r.getMessage() and side in r.getMessage() for r in caplog.records)
    # The verdict travels with the analysis diagnostics (reps.json) and the calibration (calibration.json).
    assert series.diagnostics.to_dict()["calibration"]["quality"]["ok"] is False
    # The angles themselves are not changed by the check.
    again = analyze_imu(pelvis, thigh, side, calibration=_flipped(good.diagnostics.calibration))
    np.testing.assert_array_equal(again.hip_flexion_deg, series.hip_flexion_deg)
