"""The batch motion stage's cheaper forms against the general ones they replace.

``quat.turn_heading`` and ``quat.rotate_axis`` must equal the general product and rotation to the
bit; ``angles.cardan_zxy_deg`` (direct formula) SciPy's ``as_euler`` to 1e-12° away from gimbal
lock; ``align.fill_gaps`` must keep every received sample and put the Akima spline's values (the
values ``align.to_uniform_rate`` uses) at the lost ones; and the batch causal filter restarts after
a long gap with the heading continued.
"""

from __future__ import annotations

import numpy as np
import pytest

from sensorhub.motion import align, angles, pipeline, quat
from sensorhub.samples import ImuSamples


def _random_unit_quats(n: int, seed: int) -> np.ndarray:
    return quat.normalize(np.random.default_rng(seed).normal(size=(n, 4)))


def test_turn_heading_equals_product_with_heading_rotation_bit_for_bit() -> None:
    q = _random_unit_quats(20000, 1)
    delta = np.random.default_rng(2).uniform(-10.0, 10.0, len(q))
    np.testing.assert_array_equal(quat.turn_heading(delta, q), quat.multiply(quat.heading_rotation(delta), q))
    np.testing.assert_array_equal(quat.turn_heading(0.7, q), quat.multiply(quat.heading_rotation(0.7), q))
    np.testing.assert_array_equal(quat.turn_heading(-0.3, q[0]), quat.multiply(quat.heading_rotation(-0.3), q[0]))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_rotate_axis_equals_rotate_of_the_unit_vector_bit_for_bit(axis: int) -> None:
    q = _random_unit_quats(20000, 3 + axis)
    e = np.zeros(3)
    e[axis] = 1.0
    np.testing.assert_array_equal(quat.rotate_axis(q, axis), quat.rotate(q, e))


def test_cardan_angles_equal_scipy_as_euler() -> None:
    q = _random_unit_quats(50000, 7) * np.random.default_rng(8).uniform(0.5, 2.0, (50000, 1))  # not unit
    q[11] = np.nan
    got = angles.cardan_zxy_deg(q)
    ok = np.all(np.isfinite(q), axis=1)
    want = quat.to_rotation(q[ok]).as_euler("ZXY", degrees=True)
    assert np.all(np.isnan(got[~ok]))
    away = np.abs(want[:, 1]) < 80.0  # gimbal lock at β = ±90°; hip adduction and pelvis angles stay far from it
    assert np.count_nonzero(away) > 40000
    assert np.max(np.abs(got[ok][away] - want[away])) < 1e-12
    # Near the lock both are still the same rotation.
    back = quat.to_rotation(np.atleast_2d(q[ok][~away])).from_euler("ZXY", got[ok][~away], degrees=True)
    assert np.max(quat.relative_angle_rad(quat.from_rotation(back), q[ok][~away])) < 1e-6


def _lossy_samples(seed: int, n: int = 3000) -> tuple[ImuSamples, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = 5.0 + np.cumsum(np.full(n, 0.01) + rng.normal(0.0, 2e-5, n))
    keep = np.ones(n, dtype=bool)
    for start in rng.integers(5, n - 10, 40):
        keep[start : start + rng.integers(1, 9)] = False
    y = np.column_stack((np.sin(3 * t), np.cos(5 * t), 0.1 * t))
    return ImuSamples(t[keep], y[keep], 2.0 * y[keep], -y[keep]), t, keep


def test_fill_gaps_keeps_received_samples_and_puts_akima_values_at_lost_ones() -> None:
    smp, t, keep = _lossy_samples(5)
    out = align.fill_gaps(smp)
    filled = out.gap_before
    assert out.gap_before is not None and np.count_nonzero(filled) == np.count_nonzero(~keep)
    assert np.all(np.diff(out.t_s) > 0.0)
    np.testing.assert_array_equal(out.t_s[~filled], smp.t_s)
    for got, raw in ((out.acc_m_s2, smp.acc_m_s2), (out.gyr_rad_s, smp.gyr_rad_s), (out.mag_uT, smp.mag_uT)):
        assert got is not None and raw is not None
        np.testing.assert_array_equal(got[~filled], raw)
        # The spline through the whole series, evaluated at the inserted times.
        np.testing.assert_allclose(got[filled], align.akima_at(smp.t_s, raw, out.t_s[filled]), rtol=0, atol=1e-12)
    # Inserted times are on the lost samples' times to within the clock jitter.
    assert np.max(np.abs(out.t_s[filled] - t[~keep])) < 1e-3
    # Without gaps: the samples themselves.
    full = ImuSamples(t, np.ones((len(t), 3)), np.zeros((len(t), 3)), None)
    assert align.fill_gaps(full) is full


def test_fill_gaps_leaves_gaps_longer_than_max_gap_open() -> None:
    smp, _, _ = _lossy_samples(6)
    t = smp.t_s
    cut = np.ones(len(t), dtype=bool)
    cut[1000:1060] = False  # a 0.6-s hole
    holed = ImuSamples(t[cut], smp.acc_m_s2[cut], smp.gyr_rad_s[cut], None)
    out = align.fill_gaps(holed, max_gap_s=align.DEFAULT_MAX_BRIDGE_S)
    assert np.max(np.diff(out.t_s)) > 0.5
    assert np.max(np.diff(out.t_s)[np.diff(out.t_s) < 0.5]) < 0.015


def _flat_sensor(t: np.ndarray, yaw_rate_rad_s: float, tilt_after_s: float = np.inf, tilt_deg: float = 0.0) -> ImuSamples:
    """A sensor turning about the vertical at a constant rate; from ``tilt_after_s`` on tilted about its x axis."""
    n = len(t)
    tilt = np.where(t >= tilt_after_s, np.radians(tilt_deg), 0.0)
    acc = 9.81 * np.column_stack((np.zeros(n), np.sin(tilt), np.cos(tilt)))
    gyr = np.column_stack((np.zeros(n), yaw_rate_rad_s * np.sin(tilt), yaw_rate_rad_s * np.cos(tilt)))
    return ImuSamples(t, acc, gyr, None)


def _inclination_deg(q: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(quat.rotate_axis(q, 2)[:, 2], -1.0, 1.0)))


def test_causal_batch_filter_restarts_after_a_long_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    t = np.arange(0.0, 20.0, 0.01)
    keep = (t < 8.0) | (t > 8.7)  # a 0.7-s gap, longer than the bridge limit, in which the sensor tilts by 30°
    smp = _flat_sensor(t[keep], 0.2, tilt_after_s=8.35, tilt_deg=30.0)
    q, uni = pipeline._fuse_6d(smp, None, "vqf", False, None)
    after = uni.t_s > 8.7
    i = int(np.argmax(after))
    # Received samples keep their place; the gap's samples are filled for the filter.
    assert np.count_nonzero(~uni.gap_before) == len(smp)
    # The new filter has the inclination from the accelerometer at once ...
    assert abs(_inclination_deg(q[i : i + 1])[0] - 30.0) < 0.5
    # The bridged filter alone is still far off right after the gap (what the restart is for) ...
    monkeypatch.setattr(pipeline, "BATCH_CAUSAL_RESTART", False)
    q_bridged, _ = pipeline._fuse_6d(smp, None, "vqf", False, None)
    assert abs(_inclination_deg(q_bridged[i : i + 1])[0] - 30.0) > 5.0
    np.testing.assert_array_equal(q_bridged[:i], q[:i])
    # ... but its heading carries the turn across the gap, and the new filter continues from it
    # (the x axis, about which the sensor tilted, keeps pointing the same way) at 0.2 rad/s.
    h_new = quat.heading_rad(q[i:], (1.0, 0.0, 0.0))
    h_bridged = quat.heading_rad(q_bridged[i - 1 : i + 1], (1.0, 0.0, 0.0))
    assert abs(np.degrees(heading_wrap(h_new[0] - h_bridged[-1]))) < 1.0
    assert abs(np.degrees(heading_wrap(h_bridged[-1] - quat.heading_rad(q[i - 80 : i - 79], (1.0, 0.0, 0.0))[0]))
               - np.degrees(0.2 * (uni.t_s[i] - uni.t_s[i - 80]))) < 1.0
    rate = np.diff(np.unwrap(h_new)) / np.diff(uni.t_s[i:])
    assert np.median(rate) == pytest.approx(0.2, abs=0.01)


def heading_wrap(a: float) -> float:
    return float(np.angle(np.exp(1j * a)))


def test_nlerp_resampling_is_within_a_thousandth_of_a_degree_of_slerp() -> None:
    rng = np.random.default_rng(21)
    n = 5000
    t = np.cumsum(np.full(n, 0.01) + rng.normal(0.0, 2e-5, n))
    # Up to ~400°/s: several degrees between neighbouring samples.
    rate = np.cumsum(rng.normal(0.0, 0.3, (n, 3)), axis=0)
    rate = 7.0 * rate / np.max(np.linalg.norm(rate, axis=1))
    q = np.empty((n, 4))
    q[0] = quat.IDENTITY
    for k in range(1, n):
        q[k] = quat.multiply(q[k - 1], quat.from_axis_angle(rate[k], np.linalg.norm(rate[k]) * 0.01))
    q[::7] *= -1.0  # either sign of the same rotation
    grid = np.arange(t[0] - 0.05, t[-1] + 0.05, 0.01)
    got = align.resample_quat(t, q, grid, nlerp=True)
    want = align.resample_quat(t, q, grid)
    assert np.max(np.degrees(quat.relative_angle_rad(got, want))) < 1e-3
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-12)


def test_shared_interpolation_weights_equal_np_interp() -> None:
    smp, _, _ = _lossy_samples(9)
    grid = np.arange(smp.t_s[0] - 0.02, smp.t_s[-1] + 0.02, 0.01)
    got = align.resample_samples(smp, grid, shared_weights=True)
    want = align.resample_samples(smp, grid)
    for a, b in ((got.acc_m_s2, want.acc_m_s2), (got.gyr_rad_s, want.gyr_rad_s), (got.mag_uT, want.mag_uT)):
        assert a is not None and b is not None
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)
    assert got.gap_before is not None and want.gap_before is not None
    np.testing.assert_array_equal(got.gap_before, want.gap_before)
