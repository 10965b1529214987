"""The rep measurement's fast replacements of NumPy calls give NumPy's values to the bit.

``sensorhub.drills.reps`` measures every rep with a dozen medians, short means, a NaN-mean and two
gradients on one time base; since the fifth performance round these go through small helpers
without NumPy's per-call overhead. A rep's numbers must not change by that, so each helper is
compared with the NumPy call it replaces on random inputs (ties, NaN, uneven and even steps).
"""

from __future__ import annotations

import math

import numpy as np

from sensorhub.drills import reps


def test_median_equals_numpy_median_to_the_bit() -> None:
    rng = np.random.default_rng(5)
    for _ in range(3000):
        n = int(rng.integers(1, 150))
        x = rng.normal(0.0, 10.0 ** rng.uniform(-3, 3), n)
        if rng.random() < 0.3:
            x = np.round(x)  # ties
        if rng.random() < 0.1:
            x[int(rng.integers(0, n))] = np.nan
        want = float(np.median(x))
        got = reps._median(x)
        assert (math.isnan(got) and math.isnan(want)) or got == want, (n, got, want)


def test_short_mean_equals_numpy_mean_to_the_bit() -> None:
    rng = np.random.default_rng(6)
    for _ in range(20000):
        values = rng.normal(0.0, 10.0 ** rng.uniform(-3, 3), int(rng.integers(1, 12))).tolist()
        assert reps._mean_short(values) == float(np.mean(values))
    assert math.isnan(reps._mean_short([]))


def test_nanmean_equals_numpy_nanmean_to_the_bit() -> None:
    rng = np.random.default_rng(7)
    for _ in range(2000):
        n = int(rng.integers(1, 600))
        x = rng.normal(90.0, 5.0, n)
        x[rng.random(n) < rng.uniform(0.0, 0.5)] = np.nan
        if np.isnan(x).all():
            continue
        assert reps._nanmean(x) == float(np.nanmean(x))


def test_gradient_equals_numpy_gradient_to_the_bit() -> None:
    rng = np.random.default_rng(8)
    for case in range(600):
        n = int(rng.integers(2, 400))
        if case % 3 == 0:
            t = 12.5 + np.arange(n) * 0.01  # float steps that are not all equal
        elif case % 3 == 1:
            t = np.arange(n) * 0.25  # exactly equal steps: NumPy's scalar-spacing branch
        else:
            t = np.cumsum(rng.uniform(0.005, 0.02, n))
        grad = reps._Gradient(t)
        for _ in range(2):
            f = np.cumsum(rng.normal(0.0, 1.0, n))
            np.testing.assert_array_equal(grad(f), np.gradient(f, t))


def test_sparc_is_nan_for_profiles_without_a_finite_motion() -> None:
    from sensorhub.drills.scoring import sparc

    speed = np.abs(np.sin(np.linspace(0.0, np.pi, 80)))
    assert math.isfinite(sparc(speed, 100.0))
    for bad in (np.nan, np.inf, -np.inf):
        s = speed.copy()
        s[40] = bad
        assert math.isnan(sparc(s, 100.0))
    assert math.isnan(sparc(np.zeros(80), 100.0))
    assert math.isnan(sparc(speed[:3], 100.0))
