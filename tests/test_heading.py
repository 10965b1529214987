"""Heading helpers (relative heading, disturbance masks, trends, hard iron) and time alignment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sensorhub.motion import align, heading, quat
from sensorhub.samples import ImuSamples

EARTH_UT = np.array([0.0, 21.5, -44.0])  # ENU: north and down, 49 µT, dip −64°


def _random_orientations(n: int, seed: int) -> np.ndarray:
    return quat.from_rotation(Rotation.random(n, random_state=np.random.default_rng(seed)))


def test_disturbance_mask_and_events_follow_norm_and_dip() -> None:
    t = np.arange(0.0, 20.0, 0.01)
    q = _random_orientations(len(t), 1)
    field = np.tile(EARTH_UT, (len(t), 1))
    field[(t > 8.0) & (t < 12.0)] += np.array([0.0, 0.0, 10.0])  # 10 µT upwards: norm and dip change
    mag = quat.rotate(quat.conjugate(q), field)
    ref = heading.reference_from(q[:100], mag[:100])
    assert ref.norm_uT == pytest.approx(np.linalg.norm(EARTH_UT), rel=1e-9)
    assert ref.dip_deg == pytest.approx(np.degrees(np.arctan2(-44.0, 21.5)), abs=1e-6)
    bad, dn, dd = heading.disturbed_mask(t, q, mag, ref, margin_s=0.5)
    events = heading.events_from_mask("thigh", t, bad, dn, dd)
    assert len(events) == 1
    assert events[0].start_s == pytest.approx(7.5, abs=0.02) and events[0].end_s == pytest.approx(12.5, abs=0.02)
    assert "thigh magnetometer disturbed" in events[0].describe()


def test_magnetic_relative_heading_sees_the_heading_offset_between_two_frames() -> None:
    n = 50
    q_p = _random_orientations(n, 2)
    q_t = _random_orientations(n, 3)
    m_p = quat.rotate(quat.conjugate(q_p), np.tile(EARTH_UT, (n, 1)))
    m_t = quat.rotate(quat.conjugate(q_t), np.tile(EARTH_UT, (n, 1)))  # what the thigh sensor measures
    # The thigh filter's earth frame is turned by 0.7 rad about the vertical against the true one.
    turn = quat.heading_rotation(0.7)
    q_t_filter = quat.multiply(turn, q_t)
    delta = heading.magnetic_relative_heading(q_p, m_p, q_t_filter, m_t)
    # Δ takes the thigh filter's frame back into the pelvis's (true) frame: −0.7 rad.
    np.testing.assert_allclose(heading.wrap_rad(delta), -0.7, atol=1e-9)


def test_online_trend_matches_least_squares_and_reports_spread() -> None:
    rng = np.random.default_rng(4)
    t = np.arange(0.0, 60.0, 0.01)
    y = 0.002 * t + 0.01 * np.sin(t) + rng.normal(0, 0.003, len(t))
    tr = heading.OnlineTrend(min_span_s=20.0)
    for i in range(0, len(t), 37):
        tr.add(t[i:i + 37], y[i:i + 37], np.ones(len(t[i:i + 37]), dtype=bool))
        if t[min(i + 36, len(t) - 1)] < 19.0:
            assert not tr.ready
    assert tr.ready
    slope, icpt = np.polyfit(t, y, 1)
    assert tr.rate == pytest.approx(slope, rel=1e-6)
    assert tr.spread == pytest.approx(np.std(y - (slope * t + icpt)), rel=1e-3)


def test_hard_iron_offset_is_recovered_from_varied_orientations() -> None:
    n = 3000
    q = _random_orientations(n, 5)
    h_true = np.array([0.8, -0.5, 0.3])
    mag = quat.rotate(quat.conjugate(q), np.tile(EARTH_UT, (n, 1))) + h_true + np.random.default_rng(6).normal(0, 0.25, (n, 3))
    up = quat.rotate(quat.conjugate(q), np.array([0.0, 0.0, 1.0]))
    h = heading.estimate_hard_iron(mag, up, np.ones(n, dtype=bool))
    np.testing.assert_allclose(h, h_true, atol=0.1)
    # Without variety in orientation the prior keeps the estimate near zero instead of inventing one.
    one = np.repeat(q[:1], 500, axis=0)
    mag1 = quat.rotate(quat.conjugate(one), np.tile(EARTH_UT, (500, 1)))
    up1 = quat.rotate(quat.conjugate(one), np.array([0.0, 0.0, 1.0]))
    assert np.linalg.norm(heading.estimate_hard_iron(mag1, up1, np.ones(500, dtype=bool))) < 0.5


def test_heading_trend_of_a_drifting_segment() -> None:
    t = np.arange(0.0, 60.0, 0.01)
    drift = np.radians(6.0 / 60.0) * t  # 6°/min
    upright = Rotation.from_matrix(np.column_stack(([1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0])))
    q = quat.multiply(quat.heading_rotation(drift), quat.from_rotation(upright))
    rate = heading.heading_trend_rad_s(t, q, t > 5.0)
    assert np.degrees(rate) * 60.0 == pytest.approx(6.0, rel=1e-6)


def test_alignment_grid_overlap_and_gap_flags() -> None:
    t_a = np.arange(0.013, 10.0, 0.01)
    t_b = np.arange(0.2, 12.0, 1.0 / 120.0)
    grid = align.common_grid(t_a, t_b, 100.0)
    assert grid.t_s[0] >= 0.2 and grid.t_s[-1] <= t_a[-1]
    np.testing.assert_allclose(np.diff(grid.t_s), 0.01)
    keep = np.ones(len(t_b), dtype=bool)
    keep[(t_b > 3.0) & (t_b < 3.05)] = False  # short gap: bridged, flagged
    keep[(t_b > 6.0) & (t_b < 6.5)] = False  # long gap: flagged and not bridged
    z = np.zeros((keep.sum(), 3))
    s = ImuSamples(t_b[keep], z + [0, 0, 9.81], z)
    in_gap, long_gap = align.gap_mask(s, grid.t_s)
    assert in_gap[(grid.t_s > 3.01) & (grid.t_s < 3.04)].all()
    assert not long_gap[(grid.t_s > 3.0) & (grid.t_s < 3.05)].any()
    assert long_gap[(grid.t_s > 6.01) & (grid.t_s < 6.49)].all()
    assert not in_gap[grid.t_s < 2.9].any()
    with pytest.raises(align.AlignmentError, match="do not overlap"):
        align.common_grid(t_a, t_a + 20.0, 100.0)


def test_uniform_rate_fill_keeps_a_smooth_rotation() -> None:
    # 1 Hz sinusoidal rotation rate sampled at 100 Hz with a 130-ms packet lost.
    t = np.arange(0.0, 5.0, 0.01)
    w = np.column_stack((np.sin(2 * np.pi * t), np.zeros_like(t), np.zeros_like(t)))
    keep = ~((t > 2.1) & (t < 2.23))
    s = ImuSamples(t[keep], np.tile([0.0, 0.0, 9.81], (keep.sum(), 1)), w[keep])
    u = align.to_uniform_rate(s, 100.0)
    assert len(u) == len(t)
    filled = u.gap_before
    assert filled is not None and filled.sum() >= 12
    np.testing.assert_allclose(u.gyr_rad_s[:, 0], np.sin(2 * np.pi * u.t_s), atol=0.02)
