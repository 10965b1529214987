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


def _drill_rests(drift_rad: np.ndarray | None, t_rest: np.ndarray, rng: np.random.Generator, level: float,
                 group: int) -> list[heading.RestPoint]:
    """Neutral rests (heading = level + drift + 1° noise) interleaved with end-range holds (±25-40°)."""
    pts = []
    for i, tr in enumerate(t_rest):
        value = level + (0.0 if drift_rad is None else float(drift_rad[i])) + np.radians(rng.normal(0.0, 1.0))
        pts.append(heading.RestPoint(float(tr), value, np.radians(heading.REST_SIGMA_DEG), group))
        end = np.radians(rng.uniform(25.0, 40.0)) * (1 if i % 2 else -1)
        pts.append(heading.RestPoint(float(tr) + 1.5, value + end, np.radians(heading.REST_SIGMA_DEG), group))
    return pts


def test_rest_drift_recovers_a_linear_drift_and_ignores_end_range_holds() -> None:
    rng = np.random.default_rng(3)
    rate = np.radians(9.0) / 60.0  # 9°/min of relative heading drift
    t_ref = 15.0
    still = [heading.RestPoint(t, rate * (t - t_ref) + np.radians(e), np.radians(0.5), 0, fixed=True)
             for t, e in ((3.0, 0.6), (15.0, -0.3))]  # still phases with sway errors
    t_rest = np.arange(21.0, 70.0, 3.0)
    pts = still + _drill_rests(rate * (t_rest - t_ref), t_rest, rng, 0.0, 0)
    # Started from a still-phase estimate that is 60 % off (as sway makes it).
    curve = heading.fit_rest_drift(pts, t_ref, 70.0, 0.4 * rate)
    assert curve is not None
    assert curve.n_rest_used == len(t_rest)  # every neutral rest, no end-range hold
    assert np.degrees(curve.mean_rate_rad_s()) * 60 == pytest.approx(9.0, abs=1.0)
    assert np.degrees(curve(np.array([70.0]))[0]) == pytest.approx(np.degrees(rate * 55.0), abs=1.0)
    assert curve.rms_residual_deg < 1.5


def test_rest_drift_follows_a_bending_drift_in_a_long_set_with_its_own_posture_level() -> None:
    rng = np.random.default_rng(4)
    t_ref = 15.0
    still = [heading.RestPoint(t, 0.0, np.radians(0.5), 0, fixed=True) for t in (3.0, 15.0)]
    t_rest = np.arange(25.0, 300.0, 2.5)
    # Drift that turns around mid-set (a wandering bias), seated level 30° away from standing.
    drift = np.radians(8.0) * np.sin(np.pi * (t_rest - t_ref) / 285.0)
    pts = still + _drill_rests(drift, t_rest, rng, np.radians(30.0), 1)
    curve = heading.fit_rest_drift(pts, t_ref, 300.0, 0.0)
    assert curve is not None
    assert len(curve.knots_t_s) >= 5  # several segments over a 5-minute set
    t = np.linspace(40.0, 290.0, 200)
    truth = np.radians(8.0) * np.sin(np.pi * (t - t_ref) / 285.0)
    # The level of the seated posture is free, so compare shapes (drift relative to its mean).
    err = np.degrees((curve(t) - truth) - np.mean(curve(t) - truth))
    assert np.max(np.abs(err)) < 1.5
    # A single line through the same points would leave several degrees.
    line = np.polyval(np.polyfit(t, truth, 1), t)
    assert np.max(np.abs(np.degrees(line - truth))) > 3.0


def test_rest_drift_needs_enough_neutral_rests() -> None:
    still = [heading.RestPoint(t, 0.0, np.radians(0.5), 0, fixed=True) for t in (3.0, 15.0)]
    few = [heading.RestPoint(30.0, 0.0, np.radians(1.5), 0), heading.RestPoint(40.0, 0.5, np.radians(1.5), 0)]
    assert heading.fit_rest_drift(still + few, 15.0, 60.0, 0.0) is None


def test_rest_drift_places_a_heading_step_where_packets_were_lost() -> None:
    rng = np.random.default_rng(5)
    t_ref = 15.0
    still = [heading.RestPoint(t, 0.0, np.radians(0.5), 0, fixed=True) for t in (3.0, 15.0)]
    t_rest = np.arange(21.0, 70.0, 2.5)
    jump = np.radians(4.0)  # the filter lost 4° of heading across a gap at 42.3 s
    pts = still + _drill_rests(np.where(t_rest > 42.3, jump, 0.0), t_rest, rng, 0.0, 0)
    curve = heading.fit_rest_drift(pts, t_ref, 70.0, 0.0, steps=[(42.3, np.radians(3.0)), (55.1, np.radians(3.0))])
    assert curve is not None
    (t1, j1), (t2, j2) = curve.steps
    assert (t1, t2) == (42.3, 55.1)
    assert np.degrees(j1) == pytest.approx(4.0, abs=1.0)
    assert abs(np.degrees(j2)) < 1.0  # no jump there: the prior and the rests keep it near zero
    assert np.degrees(curve(np.array([60.0]))[0]) == pytest.approx(4.0, abs=1.0)


def test_rest_points_one_per_slow_run_and_none_across_a_posture_change() -> None:
    t = np.arange(0.0, 10.0, 0.01)
    rate = np.full(len(t), 60.0)  # deg/s: moving
    h = np.radians(5.0 * t)  # a heading ramp, so each point's value says where it was taken
    group = np.zeros(len(t), dtype=int)
    for a, b in ((1.0, 1.3), (3.0, 3.05), (5.0, 5.5), (8.0, 8.4)):
        rate[(t >= a) & (t < b)] = 2.0
    group[t >= 8.2] = 1  # the last slow run straddles a posture change
    pts = heading.rest_points(t, h, group, rate, np.ones(len(t), dtype=bool))
    # 3.0-3.05 is shorter than REST_MIN_S; 8.0-8.4 mixes postures.
    assert [round(p.t_s, 2) for p in pts] == [1.15, 5.25]
    assert np.degrees(pts[1].heading_rad) == pytest.approx(5.0 * 5.245, abs=0.05)
    assert all(p.group == 0 and not p.fixed for p in pts)
