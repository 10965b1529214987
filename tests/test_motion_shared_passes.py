"""Work the batch motion stage shares between steps gives the values of the unshared calls, to the bit.

Fifth performance round: one interval search per sensor for the gap masks, the raw samples on the
grid and the orientation on the grid (``align.grid_intervals``), and one cosine/sine for a segment
and its sensor turned by the same heading drift (``quat.turn_heading_each``).
"""

from __future__ import annotations

import numpy as np

from sensorhub.motion import align, quat
from sensorhub.samples import ImuSamples


def _samples(rng: np.random.Generator, n: int) -> ImuSamples:
    dt = np.full(n - 1, 0.01) + rng.normal(0.0, 2e-4, n - 1)
    dt[rng.integers(0, n - 1, 5)] = 0.2  # a few lost stretches
    t = 3.0 + np.concatenate(([0.0], np.cumsum(dt)))
    gap_before = np.zeros(n, dtype=bool)
    gap_before[rng.integers(1, n, 3)] = True
    return ImuSamples(t_s=t, acc_m_s2=rng.normal(0.0, 9.0, (n, 3)), gyr_rad_s=rng.normal(0.0, 1.0, (n, 3)),
                      mag_uT=rng.normal(0.0, 40.0, (n, 3)), gap_before=gap_before)


def test_shared_interval_search_equals_each_call_searching_itself() -> None:
    rng = np.random.default_rng(21)
    for _ in range(20):
        smp = _samples(rng, int(rng.integers(50, 3000)))
        grid = np.arange(np.floor(smp.t_s[0] * 100) - 5, np.ceil(smp.t_s[-1] * 100) + 5) / 100.0  # past both ends
        j = align.grid_intervals(smp.t_s, grid)
        for a, b in zip(align.gap_mask(smp, grid, j=j), align.gap_mask(smp, grid)):
            np.testing.assert_array_equal(a, b)
        shared = align.resample_samples(smp, grid, shared_weights=True, j=j)
        alone = align.resample_samples(smp, grid, shared_weights=True)
        for name in ("t_s", "acc_m_s2", "gyr_rad_s", "mag_uT", "gap_before"):
            np.testing.assert_array_equal(getattr(shared, name), getattr(alone, name))
        q = quat.normalize(rng.normal(0.0, 1.0, (len(smp), 4)))
        np.testing.assert_array_equal(align.resample_quat(smp.t_s, q, grid, nlerp=True, j=j),
                                      align.resample_quat(smp.t_s, q, grid, nlerp=True))


def test_turn_heading_each_equals_turn_heading_per_series() -> None:
    rng = np.random.default_rng(22)
    delta = rng.uniform(-4.0, 4.0, 1000)
    qs = [quat.normalize(rng.normal(0.0, 1.0, (1000, 4))) for _ in range(3)]
    for got, q in zip(quat.turn_heading_each(delta, qs), qs):
        np.testing.assert_array_equal(got, quat.turn_heading(delta, q))
        np.testing.assert_array_equal(got, quat.multiply(quat.heading_rotation(delta), q))


def test_norm3_equals_numpy_norm_to_the_bit() -> None:
    from sensorhub.motion.calibration import SMOOTH_S, smoothed_rate_deg_s

    rng = np.random.default_rng(23)
    v = rng.normal(0.0, 1.0, (20000, 9)) * 10.0 ** rng.uniform(-4, 4, (20000, 1))
    for cols in (v[:, 3:6], np.ascontiguousarray(v[:, :3])):  # a column slice (as in the grid samples) and a plain array
        np.testing.assert_array_equal(quat.norm3(cols), np.linalg.norm(cols, axis=1))
    from scipy.ndimage import uniform_filter1d
    want = uniform_filter1d(np.degrees(np.linalg.norm(v[:, 3:6], axis=1)), round(SMOOTH_S * 100.0), mode="nearest")
    np.testing.assert_array_equal(smoothed_rate_deg_s(v[:, 3:6], 100.0), want)
