"""The rep measurement's fast replacements of NumPy calls give NumPy's values to the bit.

The short means of the scoring stay in Python (here); the medians, the NaN-mean's sum and the
gradients moved into the compiled kernel in session 3 and are compared with NumPy in
tests/test_reps_kernels.py.
"""

from __future__ import annotations

import math

import numpy as np

from sensorhub.drills import reps


def test_short_mean_equals_numpy_mean_to_the_bit() -> None:
    rng = np.random.default_rng(6)
    for _ in range(20000):
        values = rng.normal(0.0, 10.0 ** rng.uniform(-3, 3), int(rng.integers(1, 12))).tolist()
        assert reps._mean_short(values) == float(np.mean(values))
    assert math.isnan(reps._mean_short([]))


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
