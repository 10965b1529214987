"""The live path's float helpers give exactly the NumPy results they replace."""

from __future__ import annotations

import math

import numpy as np

from sensorhub.motion.angles import rotation_matrices
from sensorhub.motion.heading import _unwrap_floats
from sensorhub.motion.quat import normalize


def test_unwrap_floats_equals_np_unwrap_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    for _ in range(2000):
        n = int(rng.integers(1, 9))
        v = rng.uniform(-4.0, 4.0, n)
        if rng.random() < 0.3:  # differences of exactly ±π and 2π: the boundary cases of np.unwrap
            v = np.cumsum(rng.choice([-math.pi, math.pi, 2 * math.pi, 0.1], n))
        prev = None if rng.random() < 0.3 else float(rng.uniform(-20.0, 20.0))
        expected = np.unwrap(v) if prev is None else np.unwrap(np.concatenate(([prev], v)))[1:]
        assert np.array_equal(np.array(_unwrap_floats(prev, v.tolist())), expected)


def test_rotation_matrices_rotate_like_the_quaternion() -> None:
    rng = np.random.default_rng(6)
    q = normalize(rng.normal(size=(50, 4)))
    r = rotation_matrices(q)
    v = np.array([0.3, -1.2, 0.7])
    # Rotating v by q: q·(0, v)·q*, written out.
    w, u = q[:, :1], q[:, 1:]
    expected = v + 2 * w * np.cross(u, v) + 2 * np.cross(u, np.cross(u, v))
    assert np.allclose(r @ v, expected, atol=1e-12)
    assert np.allclose(r @ np.transpose(r, (0, 2, 1)), np.eye(3), atol=1e-12)
