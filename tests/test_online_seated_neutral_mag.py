"""Live seated neutral hold with magnetometers (issue 3, live accuracy).

Seated 9-axis sessions: the magnetometers refine the thigh mount about the femur axis at neutral
standing, and a field turned slightly at calibration (a chair nearby, a residual hard iron) turns
that mount by a few degrees, which a seated drill shows as hip rotation and adduction error. Batch
blends the mag-refined mount (σ 1.8°) with the seated neutral hold (σ 1.5°); live now does the same
(``ONLINE_SEATED_NEUTRAL_WITH_MAG``). The session is the live accuracy table's
"sim seated L 9ax 200/60Hz loss5%" (docs/accuracy.md), where live missed the rotation target.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sensorhub.motion import evaluate, pipeline
from sensorhub.motion.evaluate import Case, feed_online, simulated_case
from sensorhub.motion.pipeline import OnlinePipeline


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level("ERROR", logger="sensorhub")
    yield


@pytest.fixture(scope="module")
def case() -> Case:
    return simulated_case("seated L 9ax 200/60Hz loss5%", drill="seated_rotation", side="left", seed=18,
                          rates=(200.0, 60.0), loss=0.05)


def _run(case: Case) -> tuple[OnlinePipeline, dict[str, float]]:
    live = feed_online(case.side, case.pelvis, case.thigh)
    return live, evaluate.score(case, live.series(), "online", 0.0).rmse_deg


def test_live_blends_the_mag_refined_mount_with_the_seated_neutral_hold(case: Case) -> None:
    live, rmse = _run(case)
    notes = live.diagnostics.notes
    assert any("towards the magnetometer heading at neutral" in n for n in notes), notes
    seated = [n for n in notes if "seated neutral hold" in n]
    assert len(seated) == 1, notes
    assert live.diagnostics.heading_mode.startswith("magnetometer relative heading")
    # The acceptance targets, live.
    assert rmse["hip_flexion"] <= 2.0 and rmse["hip_adduction"] <= 3.0 and rmse["hip_rotation"] <= 2.0, rmse


def test_without_the_blend_live_keeps_the_magnetic_mount_error(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    with_blend = _run(case)[1]
    monkeypatch.setattr(pipeline, "ONLINE_SEATED_NEUTRAL_WITH_MAG", False)
    live, without = _run(case)
    assert not any("seated neutral hold" in n for n in live.diagnostics.notes)
    # The cause named in docs/accuracy.md: the mag-refined mount alone leaves rotation above the target.
    assert without["hip_rotation"] > 2.0
    assert with_blend["hip_rotation"] < without["hip_rotation"] - 0.5
    assert with_blend["hip_adduction"] < without["hip_adduction"]


def test_the_blend_weight_follows_the_mount_uncertainty(case: Case) -> None:
    """The seated turn is w·(hip rotation in the hold)/(1 − cos flexion) with w = σ_mount²/(σ_mount² + σ_seated²):
    0.59 for the mag-refined mount (σ 1.8°) against 0.88 for the swing axis alone (σ 4°)."""
    live, _ = _run(case)
    sigma = (pipeline.SWING_AXIS_SIGMA_DEG**-2 + pipeline.MAG_HEADING_SIGMA_DEG**-2) ** -0.5
    assert live._mount_sigma_deg == pytest.approx(sigma)
    assert sigma == pytest.approx(1.79, abs=0.01)
    w = sigma**2 / (sigma**2 + pipeline.SEATED_NEUTRAL_SIGMA_DEG**2)
    assert w == pytest.approx(0.587, abs=0.005)
    six = simulated_case("seated L 6ax", drill="seated_rotation", side="left", seed=12, no_mag=True)
    live6 = feed_online(six.side, six.pelvis, six.thigh)
    assert live6._mount_sigma_deg == pipeline.SWING_AXIS_SIGMA_DEG
    assert np.isfinite(live6.series().hip_rotation_deg).any()
