"""align.akima_at must give exactly SciPy's Akima1DInterpolator values (it replaces it in to_uniform_rate)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import Akima1DInterpolator

from sensorhub.motion.align import akima_at


def _series(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(3, 300))
    x = np.cumsum(rng.uniform(0.001, 0.02, n)) + rng.uniform(-5.0, 5.0)
    if kind == "quantised":  # millisecond timestamps: many equal intervals
        x = np.unique(np.round(x * 1000.0) / 1000.0)
    y = rng.normal(size=(len(x), 3))
    if kind == "flat_runs":  # equal neighbouring slopes: Akima's undefined-slope branch
        y[rng.integers(0, len(x), len(x) // 2)] = 1.0
    if kind == "constant":
        y[:] = 2.0
    return x, y


@pytest.mark.parametrize("kind", ["random", "quantised", "flat_runs", "constant"])
def test_akima_at_equals_scipy_bit_for_bit(kind: str) -> None:
    rng = np.random.default_rng(11)
    for _ in range(40):
        x, y = _series(rng, kind)
        if len(x) < 3:
            continue
        # Inside the span, including every breakpoint and both ends exactly.
        x_new = np.sort(np.concatenate((rng.uniform(x[0], x[-1], 400), x)))
        expected = Akima1DInterpolator(x, y, axis=0)(x_new)
        got = akima_at(x, y, x_new)
        assert got.shape == expected.shape
        assert np.array_equal(got, expected)


def test_akima_at_rejects_what_scipy_rejects() -> None:
    x = np.array([0.0, 1.0, 1.0, 2.0])
    with pytest.raises(ValueError):
        akima_at(x, np.zeros((4, 3)), np.array([0.5]))
