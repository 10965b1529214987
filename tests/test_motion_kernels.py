"""The batch motion kernels (sensorhub.motion.kernels) against the NumPy code they replace.

Where a kernel does the same operations in the same order as the NumPy reference the test asks for
the same bits (``assert_array_equal``, NaNs equal); where it sums left to right what NumPy sums
pairwise, or wraps angles by arithmetic instead of a complex exponential, it asks for 1e-12.
Random inputs plus the edge cases the pipeline can meet: NaN rows, an empty input, a single row,
grid points outside the samples, gaps flagged and unflagged.
"""

from __future__ import annotations

import numpy as np
import pytest

from sensorhub.motion import align, angles, heading, kernels, quat
from sensorhub.samples import ImuSamples


def _samples(rng: np.random.Generator, n: int, *, mag: bool = True, flags: bool = True) -> ImuSamples:
    dt = np.full(n - 1, 0.01) + rng.normal(0.0, 2e-4, n - 1)
    if n > 10:
        dt[rng.integers(0, n - 1, 4)] = 0.2  # lost stretches under the bridge limit
        dt[rng.integers(0, n - 1, 2)] = 0.9  # and longer ones
    t = 3.0 + np.concatenate(([0.0], np.cumsum(dt)))
    gap_before = None
    if flags:
        gap_before = np.zeros(n, dtype=bool)
        gap_before[rng.integers(1, n, 3)] = True
    return ImuSamples(t_s=t, acc_m_s2=rng.normal(0.0, 9.0, (n, 3)), gyr_rad_s=rng.normal(0.0, 1.0, (n, 3)),
                      mag_uT=rng.normal(0.0, 40.0, (n, 3)) if mag else None, gap_before=gap_before)


def _grid(smp: ImuSamples) -> np.ndarray:
    return np.arange(np.floor(smp.t_s[0] * 100) - 5, np.ceil(smp.t_s[-1] * 100) + 5) / 100.0  # past both ends


def _quats(rng: np.random.Generator, n: int) -> np.ndarray:
    return quat.normalize(rng.normal(0.0, 1.0, (n, 4)))


def test_grid_intervals_equal_searchsorted() -> None:
    rng = np.random.default_rng(1)
    for _ in range(30):
        n = int(rng.integers(1, 400))
        t = np.sort(rng.uniform(0.0, 10.0, n))
        t[rng.integers(0, n, 3)] = t[0]  # repeated times
        t = np.sort(t)
        grid = np.sort(rng.uniform(-1.0, 11.0, int(rng.integers(0, 500))))
        np.testing.assert_array_equal(kernels.grid_intervals(t, grid), np.searchsorted(t, grid, side="right") - 1)
    assert kernels.grid_intervals(np.zeros(0), np.array([1.0, 2.0])).tolist() == [-1, -1]
    assert kernels.grid_intervals(np.array([1.0]), np.zeros(0)).shape == (0,)


@pytest.mark.parametrize("mag", [True, False])
@pytest.mark.parametrize("flags", [True, False])
def test_resample_on_grid_equals_gap_mask_and_resample_samples(mag: bool, flags: bool) -> None:
    rng = np.random.default_rng(2)
    for n in (2, 3, 57, 2000):
        smp = _samples(rng, n, mag=mag, flags=flags)
        grid = _grid(smp)
        j = kernels.grid_intervals(smp.t_s, grid)
        period = float(np.median(np.diff(smp.t_s)))
        parts = (smp.acc_m_s2, smp.gyr_rad_s) + ((smp.mag_uT,) if smp.mag_uT is not None else ())
        values, in_gap, in_long = kernels.resample_on_grid(
            smp.t_s, parts, np.zeros(0, dtype=bool) if smp.gap_before is None else smp.gap_before, grid, j,
            1.5 * period, align.DEFAULT_MAX_BRIDGE_S)
        ref_gap, ref_long = align.gap_mask(smp, grid)
        ref = align.resample_samples(smp, grid, ref_gap, shared_weights=True)
        np.testing.assert_array_equal(in_gap, ref_gap)
        np.testing.assert_array_equal(in_long, ref_long)
        np.testing.assert_array_equal(values[:, 0:3], ref.acc_m_s2)
        np.testing.assert_array_equal(values[:, 3:6], ref.gyr_rad_s)
        if mag:
            np.testing.assert_array_equal(values[:, 6:9], ref.mag_uT)
        if n > 10:
            assert in_gap.any() and in_long.any()  # the case the test is about occurs


def test_resample_on_grid_carries_nan_rows_like_numpy() -> None:
    rng = np.random.default_rng(3)
    smp = _samples(rng, 300)
    smp.gyr_rad_s[[10, 11, 200]] = np.nan
    grid = _grid(smp)
    j = kernels.grid_intervals(smp.t_s, grid)
    values, _, _ = kernels.resample_on_grid(smp.t_s, (smp.acc_m_s2, smp.gyr_rad_s), np.asarray(smp.gap_before), grid, j,
                                            1.5 * float(np.median(np.diff(smp.t_s))), align.DEFAULT_MAX_BRIDGE_S)
    ref = align.resample_samples(smp, grid, shared_weights=True)
    assert np.isnan(values[:, 3:6]).any()
    np.testing.assert_array_equal(values[:, 3:6], ref.gyr_rad_s)


def test_nlerp_segment_equals_resample_quat_and_segment_orientation() -> None:
    rng = np.random.default_rng(4)
    for n in (2, 3, 500):
        smp = _samples(rng, n)
        grid = _grid(smp)
        q = _quats(rng, n)
        q[1::7] *= -1.0  # sign flips between neighbours
        mount = _quats(rng, 1)[0]
        q_grid, q_seg = kernels.nlerp_segment(smp.t_s, q, kernels.grid_intervals(smp.t_s, grid), grid, mount)
        ref = align.resample_quat(smp.t_s, q, grid, nlerp=True)
        np.testing.assert_allclose(q_grid, ref, rtol=0.0, atol=4e-16)
        np.testing.assert_array_equal(q_seg, angles.segment_orientation(q_grid, mount))
        np.testing.assert_array_equal(kernels.segment_orientation(q_grid, mount), angles.segment_orientation(q_grid, mount))


def test_turns_equal_quat_turn_heading() -> None:
    rng = np.random.default_rng(5)
    for n in (0, 1, 999):
        q1, q2 = _quats(rng, n), _quats(rng, n)
        delta = rng.uniform(-20.0, 20.0, n)
        if n > 1:
            q1[0] = np.nan
            delta[1] = np.nan
        ref1, ref2 = quat.turn_heading_each(delta, (q1, q2))
        o1, o2 = q1.copy(), q2.copy()
        kernels.turn_pair_inplace(delta, o1, o2)
        np.testing.assert_array_equal(o1, ref1)
        np.testing.assert_array_equal(o2, ref2)
        # a linear drift turned back: -rate * (t - t_ref), as pipeline._remove_heading_trends had it
        t = np.linspace(0.0, 1800.0, n)
        ref1, ref2 = quat.turn_heading_each(-1.7e-3 * (t - 12.25), (q1, q2))
        o1, o2 = q1.copy(), q2.copy()
        kernels.turn_linear_pair_inplace(1.7e-3, t, 12.25, o1, o2)
        np.testing.assert_array_equal(o1, ref1)
        np.testing.assert_array_equal(o2, ref2)


def test_axes_equal_rotate_axis() -> None:
    rng = np.random.default_rng(6)
    for n in (0, 1, 700):
        q = rng.normal(0.0, 1.0, (n, 4))  # not normalised: the same formula either way
        if n:
            q[0] = np.nan
        vx, vy = kernels.axes_xy(q)
        np.testing.assert_array_equal(vx.T, quat.rotate_axis(q, 0))
        np.testing.assert_array_equal(vy.T, quat.rotate_axis(q, 1))


def test_unwrap_equals_numpy() -> None:
    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 5000):
        p = np.cumsum(rng.normal(0.0, 1.5, n))
        wrapped = np.arctan2(np.sin(p), np.cos(p))
        for x in (p, wrapped):
            np.testing.assert_array_equal(kernels.unwrap(x), np.unwrap(x))
    edge = np.array([0.0, np.pi, 0.0, -np.pi, 2.0 * np.pi, 0.5, np.nan, 0.1, 7.0])  # jumps of exactly π, NaN
    np.testing.assert_array_equal(kernels.unwrap(edge), np.unwrap(edge))


def test_line_fit_equals_polyfit_and_std() -> None:
    rng = np.random.default_rng(8)
    for _ in range(20):
        n = int(rng.integers(3, 4000))
        t = np.sort(rng.uniform(0.0, 1800.0, n))
        y = 3e-3 * t + rng.normal(0.0, 0.05, n) + 2.0
        m = rng.random(n) < 0.7
        m[:2] = True
        count, span, slope, intercept, std = kernels.line_fit(t, y, m)
        coef = np.polyfit(t[m], y[m], 1)
        assert count == np.count_nonzero(m)
        assert span == np.ptp(t[m])
        np.testing.assert_allclose([slope, intercept], coef, rtol=1e-9)
        np.testing.assert_allclose(std, np.std(y[m] - np.polyval(coef, t[m])), rtol=1e-9)
    count, _, slope, _, _ = kernels.line_fit(np.array([1.0, 2.0]), np.array([0.0, 1.0]), np.array([True, False]))
    assert (count, slope) == (1, 0.0)


def test_masked_means_equal_numpy() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(0.0, 1.0, 1000)
    x[[3, 50]] = np.nan
    m = rng.random(1000) < 0.5
    np.testing.assert_allclose(kernels.masked_abs_mean(x, m), np.nanmean(np.abs(x[m])), rtol=1e-13)
    # no row masked: all rows, as heading.segment_heading_rad
    np.testing.assert_allclose(kernels.masked_abs_mean(x, np.zeros(1000, dtype=bool)), np.nanmean(np.abs(x)), rtol=1e-13)
    np.testing.assert_array_equal(kernels.abs_below(x, 0.5), np.abs(x) < 0.5)
    group = rng.integers(-1, 2, 1000)
    h = rng.uniform(-np.pi, np.pi, 1000) * 0.3 + 2.9
    sel = (group == 1) & m
    np.testing.assert_allclose(kernels.circular_mean(h, group, 1, m), np.angle(np.mean(np.exp(1j * h[sel]))), atol=1e-13)
    assert np.isnan(kernels.circular_mean(h, group, 5, m))


def test_wrap_about_equals_wrap_rad() -> None:
    rng = np.random.default_rng(10)
    x = rng.uniform(-30.0, 30.0, 5000)
    group = rng.integers(-1, 2, 5000)
    ref = x.copy()
    sel = group == 1
    ref[sel] = heading.wrap_rad(ref[sel] - 0.7) + 0.7
    out = x.copy()
    kernels.wrap_about(out, group, 1, 0.7)
    np.testing.assert_array_equal(out[~sel], x[~sel])
    np.testing.assert_allclose(out, ref, rtol=0.0, atol=1e-13)


def test_relative_heading_groups_and_rest_runs_equal_the_numpy_steps() -> None:
    rng = np.random.default_rng(11)
    n = 6000
    t: np.ndarray = np.arange(n, dtype=np.float64) * 0.01
    q_f, q_p = _quats(rng, n), _quats(rng, n)
    vx, vy, px = quat.rotate_axis(q_f, 0), quat.rotate_axis(q_f, 1), quat.rotate_axis(q_p, 0)
    # The reference: pipeline._rest_drift_curve's NumPy code before the kernels.
    h_p = np.arctan2(px[:, 1], px[:, 0])
    upright = np.abs(vy[:, 2]) > 0.7
    flat = np.abs(vy[:, 2]) < 0.4
    group = np.where(upright, 0, np.where(flat, 1, -1))
    group[np.abs(px[:, 2]) > 0.5] = -1
    rel = np.arctan2(vy[:, 1], vy[:, 0])
    rel[upright] = np.arctan2(vx[upright, 1], vx[upright, 0])
    rel -= h_p
    k_rel, k_group, k_up = kernels.relative_heading_groups(
        np.ascontiguousarray(vy[:, 2]), np.ascontiguousarray(px[:, 2]), np.arctan2(vx[:, 1], vx[:, 0]),
        np.arctan2(vy[:, 1], vy[:, 0]), h_p)
    np.testing.assert_array_equal(k_rel, rel)
    np.testing.assert_array_equal(k_group, group)
    np.testing.assert_array_equal(k_up, upright)
    # Rest moments: a slowly varying rate with runs below the threshold of various lengths.
    rate = 10.0 + 8.0 * np.sin(t * 1.3) + rng.normal(0.0, 1.0, n)
    group_runs = np.repeat(rng.integers(-1, 2, n // 50), 50)
    mask = rng.random(n) < 0.98
    heading_rad = rng.normal(0.0, 0.1, n)
    heading_rad[100] = np.nan
    ref = heading.rest_points(t, heading_rad, group_runs, rate, mask)
    dt = float(np.median(np.diff(t)))
    tm, hm, gm = kernels.rest_runs(t, heading_rad, group_runs, rate, mask, heading.REST_MAX_DEG_S, dt, heading.REST_MIN_S)
    assert len(ref) > 10
    assert gm.tolist() == [p.group for p in ref]
    np.testing.assert_allclose(tm, [p.t_s for p in ref], rtol=1e-14)
    np.testing.assert_allclose(hm, [p.heading_rad for p in ref], rtol=0.0, atol=1e-15)


@pytest.mark.parametrize("side", ["left", "right"])
def test_cardan_kernels_equal_angles(side: str) -> None:
    rng = np.random.default_rng(12)
    for n in (0, 1, 3000):
        q_p, q_t = _quats(rng, n), _quats(rng, n)
        if n > 1:
            q_t[1] = np.nan
        mount = _quats(rng, 1)[0]
        delta = rng.uniform(-4.0, 4.0, n)
        sign = angles.side_sign(side)
        # hip: turn(Δ) ⊗ (thigh ⊗ mount*) against the pelvis
        ref = angles.hip_angles_deg(q_p, quat.turn_heading(delta, angles.segment_orientation(q_t, mount)), side)
        got = kernels.cardan_deg(kernels.hip_cardan_args(q_p, q_t, mount, delta), sign)
        np.testing.assert_array_equal(got, ref)
        # the identity mount leaves the femur as it is
        q_f = angles.segment_orientation(q_t, mount)
        np.testing.assert_array_equal(kernels.cardan_deg(kernels.hip_cardan_args(q_p, q_f, quat.IDENTITY, delta), sign),
                                      angles.hip_angles_deg(q_p, quat.turn_heading(delta, q_f), side))
        # pelvis relative to one neutral orientation
        q_n = _quats(rng, 1)[0]
        np.testing.assert_array_equal(kernels.cardan_deg(kernels.cardan_args(q_n[None, :], q_p)),
                                      angles.pelvis_angles_deg(q_p, q_n))
        np.testing.assert_array_equal(kernels.cardan_deg(kernels.cardan_args(q_p, q_t), sign),
                                      angles.hip_angles_deg(q_p, q_t, side))
        if n > 1:
            assert np.isnan(got[1]).all() and np.isfinite(got[0]).all()


def test_rate_norm_equals_norm3_in_degrees() -> None:
    rng = np.random.default_rng(13)
    g = rng.normal(0.0, 2.0, (4000, 9))
    g[5, 4] = np.nan
    view = g[:, 3:6]  # the gyroscope columns of the resampled block: a strided view
    np.testing.assert_array_equal(kernels.rate_norm_deg_s(view), np.degrees(quat.norm3(view)))
    np.testing.assert_array_equal(kernels.rate_norm_deg_s(np.zeros((0, 3))), np.zeros(0))


def test_shared_helpers_give_the_same_bits_on_long_series() -> None:
    """quat.rotate / rotate_axis / norm3 and heading.wrap_rad / magnetic_relative_heading switch to the
    kernels from kernels.MIN_ROWS rows: the same bits as their NumPy code (which short blocks keep)."""
    rng = np.random.default_rng(14)
    n = kernels.MIN_ROWS + 123
    q = rng.normal(0.0, 1.0, (n, 4))
    v = rng.normal(0.0, 30.0, (n, 3))
    q[7] = np.nan
    v[9, 1] = np.inf
    a = rng.uniform(-40.0, 40.0, n)
    a[:5] = [0.0, -0.0, np.pi, -np.pi, 1e300]
    # The NumPy code run on two halves (below MIN_ROWS each) is the reference: element-wise maths.
    halves = [slice(0, n // 2), slice(n // 2, n)]
    np.testing.assert_array_equal(quat.rotate(q, v), np.concatenate([quat.rotate(q[h], v[h]) for h in halves]))
    for axis in (0, 1, 2):
        np.testing.assert_array_equal(quat.rotate_axis(q, axis), np.concatenate([quat.rotate_axis(q[h], axis) for h in halves]))
    np.testing.assert_array_equal(quat.norm3(v), np.concatenate([quat.norm3(v[h]) for h in halves]))
    np.testing.assert_array_equal(quat.norm3(v[:, ::-1]), np.linalg.norm(v[:, ::-1], axis=1))  # strided input
    np.testing.assert_array_equal(quat.conjugate(q[8:]), np.concatenate([quat.conjugate(q[8:][h]) for h in halves]))
    np.testing.assert_array_equal(quat.conjugate(q), q * np.array([1.0, -1.0, -1.0, -1.0]))  # NaN row: NumPy path
    wrapped = heading.wrap_rad(a)
    np.testing.assert_array_equal(wrapped, np.concatenate([heading.wrap_rad(a[h]) for h in halves]))
    assert np.all(np.signbit(wrapped[:2]) == np.signbit(np.arctan2(np.exp(1j * a[:2]).imag, np.exp(1j * a[:2]).real)))
    a_bad = a.copy()
    a_bad[100] = np.nan  # non-finite: the NumPy path
    np.testing.assert_array_equal(heading.wrap_rad(a_bad), np.arctan2(np.exp(1j * a_bad).imag, np.exp(1j * a_bad).real))
    # magnetic relative heading: the unwrap of the whole series (not of halves) as np.unwrap does it
    qp, qt = quat.normalize(rng.normal(0.0, 1.0, (n, 4))), quat.normalize(rng.normal(0.0, 1.0, (n, 4)))
    mp, mt = rng.normal(0.0, 40.0, (n, 3)), rng.normal(0.0, 40.0, (n, 3))
    psi = heading.wrap_rad(heading.mag_heading_rad(qp, mp) - heading.mag_heading_rad(qt, mt))
    np.testing.assert_array_equal(heading.magnetic_relative_heading(qp, mp, qt, mt), np.unwrap(psi))


def test_field_kernels_equal_mag_norm_dip_and_disturbed_mask_arithmetic() -> None:
    rng = np.random.default_rng(15)
    n = kernels.MIN_ROWS + 77
    m = rng.normal(0.0, 30.0, (n, 3))
    m[3] = 0.0  # zero field: the 1e-12 floor
    m[4, 2] = np.nan
    m[5] = [0.0, 0.0, 1e-14]
    norm, dip = heading.mag_norm_dip(np.zeros((n, 4)), np.zeros((n, 3)), m_earth=m)  # the kernel path
    ref_norm = quat.norm3(m[:100])  # NumPy path on a short block, and the arithmetic written out
    np.testing.assert_array_equal(norm[:100], ref_norm)
    np.testing.assert_array_equal(dip, np.degrees(np.arcsin(np.clip(m[:, 2] / np.maximum(norm, 1e-12), -1.0, 1.0))))
    bad, dn, dd = kernels.field_deviation(norm, dip, 42.0, -60.0, heading.MAG_NORM_TOL * 42.0, heading.MAG_DIP_TOL_DEG)
    np.testing.assert_array_equal(dn, np.abs(norm - 42.0))
    np.testing.assert_array_equal(dd, np.abs(dip - -60.0))
    np.testing.assert_array_equal(bad, (np.abs(norm - 42.0) > heading.MAG_NORM_TOL * 42.0) | (np.abs(dip + 60.0) > heading.MAG_DIP_TOL_DEG))


def test_interval_jitter_equals_the_numpy_figures() -> None:
    rng = np.random.default_rng(16)
    t = np.cumsum(rng.normal(0.01, 0.002, 3000))
    flags = rng.random(3000) < 0.01
    for gap_before in (flags, None):
        gaps, jitter, any_ok = kernels.interval_jitter(t, np.zeros(0, dtype=bool) if gap_before is None else gap_before, 100.0)
        ok = np.ones(2999, dtype=bool) if gap_before is None else ~gap_before[1:]
        assert gaps == (0 if gap_before is None else int(np.count_nonzero(gap_before[1:])))
        assert jitter == float(np.max(np.abs(np.diff(t)[ok] * 100.0 - 1.0)))
        assert any_ok
    _, jitter, _ = kernels.interval_jitter(np.array([0.0, np.nan, 0.02]), np.zeros(0, dtype=bool), 100.0)
    assert np.isnan(jitter)
    assert kernels.interval_jitter(np.array([0.0, 0.5]), np.array([False, True]), 100.0) == (1, -np.inf, False)
