"""The live pipeline flags a thigh frame flipped front to back, as batch does (issue 3).

Same situation as tests/test_pipeline_flipped_thigh.py: a 6-axis seated session whose thigh mount is
turned 180° about the femur's long axis reads as a hip extension of about 90°, so no rep is counted.
Live, a coach must see why while the athlete is still on the chair: once the drill has shown
FLIPPED_MIN_S of hip flexion below FLIPPED_FLEXION_DEG, ``OnlinePipeline`` judges the swings step
poor in its calibration (what the service shows as the calibration result), its diagnostics notes
and its live calibration status, with the advice batch gives. The angles are not changed by it.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest

from sensorhub.ingest import Ingest, assemble
from sensorhub.motion import quat
from sensorhub.motion.calibration import (
    Calibration,
    LiveCalibration,
    LiveCalibrationStatus,
)
from sensorhub.motion.evaluate import feed_online
from sensorhub.motion.pipeline import (
    FLIPPED_FLEXION_DEG,
    FLIPPED_MIN_S,
    AngleSeries,
    OnlinePipeline,
    analyze_imu,
)
from sensorhub.samples import ImuSamples
from sensorhub.service import ServiceSettings
from sensorhub.service.athletes import AthleteRegistry
from sensorhub.service.broadcast import Broadcaster
from sensorhub.service.hub import Hub, StreamRuntime
from sensorhub.service.metrics import LiveMetrics
from sensorhub.sim import SimConfig, simulate
from sensorhub.storage import StorageSettings


@pytest.fixture(scope="module")
def six_axis() -> tuple[ImuSamples, ImuSamples, str]:
    session = simulate(SimConfig(drill="seated_rotation", seed=3, reps=4, compensation_reps=(), no_mag=True))
    data = assemble(session.notifications, Ingest())
    seg = {s.sensor_id: name for name, s in session.sensors.items()}
    samples = {seg[sid]: x for sid, x in data.items()}
    return samples["pelvis"], samples["thigh"], session.config.side


@pytest.fixture(scope="module")
def good_batch(six_axis: tuple[ImuSamples, ImuSamples, str]) -> AngleSeries:
    return analyze_imu(*six_axis)


@pytest.fixture(scope="module")
def good_live(six_axis: tuple[ImuSamples, ImuSamples, str]) -> OnlinePipeline:
    pelvis, thigh, side = six_axis
    return feed_online(side, pelvis, thigh)


def _flipped(cal: Calibration) -> Calibration:
    q_mount = quat.multiply(quat.from_axis_angle(np.array([0.0, 1.0, 0.0]), np.pi), cal.q_segment_sensor["thigh"])
    return dataclasses.replace(cal, q_segment_sensor={**cal.q_segment_sensor, "thigh": q_mount}, thigh_mag_refined_deg=None)


def _swings(cal: Calibration | None) -> tuple[bool, str, dict[str, float]]:
    assert cal is not None
    step = next(s for s in cal.quality.steps if s.step == "swings")
    return step.ok, step.advice, step.metrics


def test_a_correct_thigh_frame_is_not_flagged_live(good_live: OnlinePipeline) -> None:
    assert good_live.state == "streaming"
    cal = good_live.calibration
    assert cal is not None
    assert cal.quality.ok, cal.quality.advice
    assert not any("flipped" in n for n in good_live.diagnostics.notes)
    status = good_live.status
    assert status is not None and all(v.ok for v in status.verdicts if v.step == "swings")
    series = good_live.series()
    assert np.nanmedian(series.hip_flexion_deg) > 60.0  # seated, the check had every chance to fire


def test_a_flipped_stored_calibration_is_flagged_live(six_axis: tuple[ImuSamples, ImuSamples, str], good_batch: AngleSeries,
                                                      caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    pelvis, thigh, side = six_axis
    assert good_batch.diagnostics.calibration is not None
    flipped = _flipped(good_batch.diagnostics.calibration)
    with caplog.at_level(logging.WARNING, logger="sensorhub.motion.pipeline"):
        live = feed_online(side, pelvis, thigh, online=OnlinePipeline(side, calibration=flipped))
    series = live.series()
    assert float(np.nanmedian(series.hip_flexion_deg)) < FLIPPED_FLEXION_DEG  # the seated drill reads as an extension

    ok, advice, metrics = _swings(live.calibration)
    assert not ok and live.calibration is not None and not live.calibration.quality.ok
    # A stored calibration: the whole calibration is to be redone (batch words it the same way).
    assert "flipped" in advice and "redo the calibration, with the swings further forward than back" in advice
    # It fired as soon as FLIPPED_MIN_S of extension had been seen, not at the end of the session.
    assert FLIPPED_MIN_S <= metrics["drill_extension_s"] < FLIPPED_MIN_S + 0.1
    batch = analyze_imu(pelvis, thigh, side, calibration=flipped)
    _, _, batch_metrics = _swings(batch.diagnostics.calibration)
    assert metrics["drill_flexion_deg"] == pytest.approx(batch_metrics["drill_flexion_deg"], abs=10.0)
    assert live.diagnostics.calibration is live.calibration
    assert [n for n in live.diagnostics.notes if "flipped" in n] == [advice]  # once, not per frame
    assert any("flipped" in r.getMessage() and side in r.getMessage() for r in caplog.records)
    assert live.status is None  # no live protocol ran

    # The check does not change the angles.
    monkeypatch.setattr(OnlinePipeline, "_watch_flipped_thigh", lambda self, flexion_deg: None)
    unchecked = feed_online(side, pelvis, thigh, online=OnlinePipeline(side, calibration=flipped)).series()
    np.testing.assert_array_equal(unchecked.as_array(), series.as_array())


def test_a_flipped_live_calibration_shows_in_the_live_status(six_axis: tuple[ImuSamples, ImuSamples, str],
                                                             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The live protocol produced the flipped frame (the athlete swung further back than forward;
    injected here by flipping the calibration the live protocol hands over)."""
    pelvis, thigh, side = six_axis
    original = LiveCalibration.feed

    def feed_flipped(self: LiveCalibration, pelvis_grid: ImuSamples, thigh_grid: ImuSamples) -> LiveCalibrationStatus:
        status = original(self, pelvis_grid, thigh_grid)
        if status.calibration is None:
            return status
        return dataclasses.replace(status, calibration=_flipped(status.calibration))

    monkeypatch.setattr(LiveCalibration, "feed", feed_flipped)
    live = feed_online(side, pelvis, thigh)
    assert live.state == "streaming"
    ok, advice, metrics = _swings(live.calibration)
    assert not ok
    assert "flipped" in advice and "redo the swings of the calibration, further forward than back" in advice
    assert metrics["drill_flexion_deg"] < FLIPPED_FLEXION_DEG
    status = live.status
    assert status is not None
    swings = [v for v in status.verdicts if v.step == "swings"]
    assert len(swings) == 1 and not swings[0].ok and swings[0].advice == advice
    # The other verdicts of the live protocol are kept as they were.
    assert live.live_calibration is not None
    others = [v for v in live.live_calibration.status().verdicts if v.step != "swings"]
    assert others and [v for v in status.verdicts if v.step != "swings"] == others

    # What the service's calibration view shows for the stream (GET /api/streams/... calibration).
    hub = Hub(ServiceSettings(ble=False, storage=StorageSettings(data_dir=tmp_path)), store=None, metrics=LiveMetrics(),
              broadcaster=Broadcaster(), athletes=AthleteRegistry(None))
    view = hub.calibration_json(StreamRuntime("a", side, live))
    assert view["result"]["ok"] is False and any("flipped" in a for a in view["result"]["advice"])
    [shown] = [v for v in view["verdicts"] if v["step"] == "swings"]
    assert shown["ok"] is False and "flipped" in shown["advice"]
