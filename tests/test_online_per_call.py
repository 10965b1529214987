"""The live pipeline's per-call shortcuts give exactly what the array code they replace gave.

Each shortcut in ``OnlinePipeline.push`` (session 2, afternoon: docs/performance.md, "Live pipeline per
call") is checked bit for bit against the NumPy formulation it replaced, written out here. The whole
pipeline is checked on every replay_data recording by ``benchmarks/online_identity.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sensorhub.motion import heading
from sensorhub.motion.angles import rotation_matrices
from sensorhub.motion.fusion import OrientationFilter
from sensorhub.motion.pipeline import _Stream, _Tail
from sensorhub.samples import ImuSamples


def _textbook_rotation_matrices(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    return np.stack(
        (1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
         2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
         2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy)),
        axis=1,
    ).reshape(-1, 3, 3)


def test_rotation_matrices_equal_the_textbook_formula_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    q = rng.normal(size=(4000, 4))
    q /= np.sqrt((q * q).sum(axis=1, keepdims=True))
    # Zeros of either sign in every position: the signed zeros of the sums must match too.
    q[:64] = rng.choice([0.0, -0.0, 0.5, -0.5, 1.0, -1.0], size=(64, 4))
    expected = _textbook_rotation_matrices(q)
    got = rotation_matrices(q)
    assert np.array_equal(got, expected)
    assert np.array_equal(np.signbit(got), np.signbit(expected))
    out = np.empty((len(q), 3, 3))
    assert rotation_matrices(q, out=out) is out
    assert np.array_equal(out, expected)


class _NumpyTrend:
    """OnlineTrend.add as it was before the Python-float sums (the reference)."""

    def __init__(self) -> None:
        self.n = 0
        self.t0: float | None = None
        self.sums = np.zeros(5)
        self.last: float | None = None

    def add(self, t_s: np.ndarray, y: np.ndarray, ok: np.ndarray) -> None:
        if not np.any(ok):
            return
        t = t_s[ok]
        v = np.array(heading._unwrap_floats(self.last, y[ok].tolist()))
        self.last = float(v[-1])
        if self.t0 is None:
            self.t0 = float(t[0])
        tt = t - self.t0
        self.n += len(t)
        self.sums += (tt.sum(), v.sum(), (tt * tt).sum(), (tt * v).sum(), (v * v).sum())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_online_trend_sums_equal_numpy_sums_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    trend, ref = heading.OnlineTrend(5.0), _NumpyTrend()
    t_next = 12.34
    for _ in range(1500):
        k = int(rng.integers(1, 14))  # below and above NumPy's 8-element pairwise threshold
        t = t_next + np.arange(k, dtype=np.float64) * 0.01
        t_next = float(t[-1] + 0.01)
        y = rng.uniform(-math.pi, math.pi, k) * rng.choice([1e-3, 1.0])
        ok = rng.random(k) < rng.choice([0.0, 0.7, 1.0])
        trend.add(t, y, ok)
        ref.add(t, y, ok)
        assert [float(s) for s in trend._sums] == ref.sums.tolist()
        assert trend._n == ref.n
    assert trend.ready
    st, sy, stt, sty, _ = ref.sums
    assert trend.rate == float((ref.n * sty - st * sy) / (ref.n * stt - st * st))


def test_tail_buffer_equals_concatenation_and_slicing() -> None:
    rng = np.random.default_rng(4)
    tail = _Tail()
    t0 = np.arange(300, dtype=np.float64) * 0.01
    q0, m0 = rng.normal(size=(300, 4)), rng.normal(size=(300, 3))
    tail.reset(t0, q0, m0, np.zeros(300, dtype=bool))
    ref = [t0, q0, m0, np.zeros(300, dtype=bool)]
    for _ in range(2000):
        k = int(rng.integers(1, 9))
        t = ref[0][-1] + 0.01 * (1 + np.arange(k))
        q, gap = rng.normal(size=(k, 4)), rng.random(k) < 0.2
        mag = rng.normal(size=(k, 3)) if rng.random() < 0.5 else 0.0
        tail.append(t, q, mag, gap)
        new = (t, q, np.zeros((k, 3)) if isinstance(mag, float) else mag, gap)
        ref = [np.concatenate((r, x)) for r, x in zip(ref, new)]
        drop = int(rng.integers(0, max(1, len(ref[0]) - 2)))
        tail.drop(drop)
        ref = [r[drop:] for r in ref]
        assert len(tail) == len(ref[0])
        for got, want in zip((tail.t_s, tail.q, tail.mag, tail.gap), ref):
            assert np.array_equal(got, want)


def test_gap_neighbours_are_the_last_three_samples() -> None:
    rng = np.random.default_rng(9)
    st = _Stream("thigh", 100.0)
    hist = {"t": np.zeros(0), "acc": np.zeros((0, 3)), "gyr": np.zeros((0, 3)), "mag": np.zeros((0, 3))}
    t_next = 0.0
    for _ in range(300):
        k = int(rng.integers(1, 5))
        t = t_next + np.arange(k, dtype=np.float64) * 0.01
        t_next = float(t[-1] + 0.01)
        mag = rng.normal(size=(k, 3)) if rng.random() < 0.7 else None
        block = ImuSamples(t, rng.normal(size=(k, 3)), rng.normal(size=(k, 3)), mag)
        st.remember(block)
        # The concatenations remember() used to do.
        hist["t"] = np.concatenate((hist["t"], t))[-3:]
        hist["acc"] = np.vstack((hist["acc"], block.acc_m_s2))[-3:]
        hist["gyr"] = np.vstack((hist["gyr"], block.gyr_rad_s))[-3:]
        if mag is not None:
            hist["mag"] = np.vstack((hist["mag"], mag))[-3:]
        assert st.last_t == float(t[-1])
        assert np.array_equal(st.hist_t, hist["t"])
        assert np.array_equal(st.hist_acc, hist["acc"])
        assert np.array_equal(st.hist_gyr, hist["gyr"])
        assert np.array_equal(st.hist_mag, hist["mag"])


@pytest.mark.parametrize("has_mag", [False, True])
def test_update_block_returns_the_detailed_results_quaternions(has_mag: bool) -> None:
    rng = np.random.default_rng(2)
    a, b = OrientationFilter("vqf", 100.0, has_mag=has_mag), OrientationFilter("vqf", 100.0, has_mag=has_mag)
    for _ in range(50):
        k = int(rng.integers(1, 8))
        acc = np.array([0.0, 0.0, 9.81]) + 0.3 * rng.normal(size=(k, 3))
        gyr = 0.2 * rng.normal(size=(k, 3))
        mag = np.array([20.0, 0.0, -40.0]) + rng.normal(size=(k, 3)) if has_mag else None
        assert np.array_equal(a.update_block(acc, gyr, mag), b.update_block_detailed(acc, gyr, mag).q_earth_sensor)
    assert a.samples_seen == b.samples_seen
    assert a.update_block(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3)) if has_mag else None).shape == (0, 4)
