"""The rep stage's compiled kernels (``sensorhub.drills.kernels``) against the NumPy/SciPy code they stand for.

To the bit where the kernel keeps NumPy's arithmetic (pairwise sum, median, gradient, NaN bridging,
the detector's EMAs and neutral tracker); to the level of rounding where it computes differently
(the SPARC spectrum by direct DFT instead of an FFT). The zero-phase filter is compared with SciPy
in tests/test_reps_filters.py; whole reps live against batch in tests/test_reps_batch.py.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import signal

from sensorhub.drills import kernels, reps
from sensorhub.drills.scoring import sparc


def test_pairwise_sum_equals_numpy_sum_to_the_bit() -> None:
    rng = np.random.default_rng(1)
    for n in [*range(300), 511, 1000, 1029, 4097]:
        x = rng.normal(0.0, 1.0, n) * 10.0 ** rng.uniform(-4, 4, n)
        assert kernels.pairwise_sum(x, 0, n) == float(np.sum(x)), n
        if n > 10:  # a slice: what the kernels sum
            assert kernels.pairwise_sum(x, 3, n - 7) == float(np.sum(x[3 : n - 4])), n


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
        got = kernels.median(x)
        assert (math.isnan(got) and math.isnan(want)) or got == want, (n, got, want)
    t = np.cumsum(rng.uniform(0.005, 0.02, 50))
    assert kernels.sample_rate_hz(t) == 1.0 / float(np.median(np.diff(t)))
    rows = np.zeros((7, 50))
    rows[0] = t
    assert kernels.window_rate_hz(rows) == 1.0 / float(np.median(np.diff(t)))
    rows[1, 8:] = np.nan  # 8 samples with a hip rotation: still measured
    assert kernels.window_rate_hz(rows) == 1.0 / float(np.median(np.diff(t)))
    rows[1, 7] = np.inf  # 7: too few
    assert math.isnan(kernels.window_rate_hz(rows))
    assert math.isnan(kernels.window_rate_hz(np.zeros((7, 7))))


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
        f, g = np.cumsum(rng.normal(0.0, 1.0, (2, n)), axis=1)
        out_f, out_g = np.empty(n), np.empty(n)
        kernels.abs_gradients(t, f, g, out_f, out_g)
        np.testing.assert_array_equal(out_f, np.abs(np.gradient(f, t)))
        np.testing.assert_array_equal(out_g, np.abs(np.gradient(g, t)))


def test_filtering_rows_side_by_side_equals_one_row_at_a_time_to_the_bit() -> None:
    """The measuring kernel filters six rows at once (two cut-offs); each row is the single-row filter's."""
    rng = np.random.default_rng(10)
    for n in (16, 17, 19, 64, 757, 2000):
        x = np.cumsum(rng.normal(0.0, 1.0, (6, n)), axis=1) + rng.uniform(-50, 50, (6, 1))
        coef = np.array([reps._filter_coef(3.0 if r == 5 else 6.0, 100.0) for r in range(6)])
        padlen = min(n - 1, 18)
        together = x.copy()
        kernels.filtfilt6(coef, together, padlen)
        for r in range(6):
            alone = x[r].copy()
            kernels.filtfilt2(coef[r], alone, padlen)
            np.testing.assert_array_equal(together[r], alone)


def test_nan_bridging_equals_numpy_interp_to_the_bit() -> None:
    rng = np.random.default_rng(9)
    for _ in range(500):
        n = int(rng.integers(1, 300))
        t = np.cumsum(rng.uniform(0.005, 0.02, n))
        x = np.cumsum(rng.normal(0.0, 1.0, n))
        x[rng.random(n) < rng.uniform(0.0, 0.9)] = np.nan
        ok = np.isfinite(x)
        want = x.copy() if not ok.any() else np.interp(t, t[ok], x[ok])
        got = x.copy()
        kernels._fill_nan(t, got)
        np.testing.assert_array_equal(got, want)


def _sparc_by_dft(speed: np.ndarray, fs_hz: float, fc_hz: float = 10.0, amp: float = 0.05) -> float:
    return kernels._sparc_dft(np.ascontiguousarray(speed), 0, speed.size, fs_hz, fc_hz, amp, 4, kernels.TWIDDLE_COS)


def test_sparc_by_direct_dft_equals_the_fft_version_to_rounding() -> None:
    """Non-negative speed profiles (what a rep's phases are): the same value up to about 1e-13."""
    rng = np.random.default_rng(17)
    worst = 0.0
    for i in range(1500):
        n = int(rng.integers(2, 1100))  # up to a table-length transform (nfft 16384) and one beyond
        fs = float(rng.choice([50.0, 60.0, 100.0, 120.0, 200.0]))
        s = np.linspace(0.0, 1.0, n)
        bump = 30.0 * s**2 * (1 - s) ** 2 * rng.uniform(0.2, 3.0)
        speed = np.abs(bump + rng.normal(0.0, rng.choice([0.0, 0.01, 0.3]), n))
        if i % 100 == 0:
            speed[:] = 0.0
        fc = float(rng.choice([5.0, 10.0, 30.0]))
        got, want = _sparc_by_dft(speed, fs, fc), sparc(speed, fs, fc_hz=fc)
        if math.isnan(want):
            assert math.isnan(got), (n, fs)
            continue
        worst = max(worst, abs(got - want))
        assert abs(got - want) <= 1e-12 * max(1.0, abs(want)), (n, fs, fc, got, want)
    assert worst < 1e-12


def test_sparc_by_direct_dft_rejects_what_sparc_rejects() -> None:
    speed = np.abs(np.sin(np.linspace(0.0, np.pi, 80)))
    assert math.isfinite(_sparc_by_dft(speed, 100.0))
    for bad in (np.nan, np.inf):
        s = speed.copy()
        s[40] = bad
        assert math.isnan(_sparc_by_dft(s, 100.0))
    assert math.isnan(_sparc_by_dft(np.zeros(80), 100.0))
    assert math.isnan(_sparc_by_dft(speed[:3], 100.0))
    # A single bin above the threshold: SPARC's degenerate case 0.
    assert _sparc_by_dft(speed, 100.0, fc_hz=0.01) == sparc(speed, 100.0, fc_hz=0.01) == 0.0


def _scan_params(gains: reps._Gains, *, enter: float = 1e9, exit_deg: float = -1e9, onset: float = 1.0) -> np.ndarray:
    q = np.zeros(kernels.SCAN_PARAMS)
    q[kernels.Q_EMA], q[kernels.Q_KEEP] = gains.ema, gains.ema_keep
    q[kernels.Q_NEUTRAL], q[kernels.Q_NEUTRAL_KEEP] = gains.neutral, gains.neutral_keep
    q[kernels.Q_ENTER], q[kernels.Q_EXIT], q[kernels.Q_ONSET] = enter, exit_deg, onset
    q[kernels.Q_FLEX_LO], q[kernels.Q_FLEX_HI] = -1e9, 1e9
    q[kernels.Q_SIGN], q[kernels.Q_MAX_EXCURSION] = 1.0, 1e9
    return q


@pytest.mark.parametrize("dt_us", [5000, 10000, 16667, 20000, 100000, 500000])
def test_scan_emas_equal_the_per_sample_path_to_the_bit_and_lfilter_to_1e14(dt_us: int) -> None:
    """The batch kernel's EMAs against :meth:`RepDetector._step_emas` (what live runs), state included."""
    rng = np.random.default_rng(dt_us)
    n = 3000
    x = np.cumsum(rng.normal(0.0, 1.0, n)) + 40.0 * np.sin(np.arange(n) / 300.0)
    cols = np.zeros((n, 7))
    cols[:, 0] = np.arange(n) * dt_us * 1e-6
    cols[:, 1] = x
    for start_phase in (None, 0, 7, 40):  # a fresh block, or continuing one part-way through
        det = reps.RepDetector("seated_rotation")
        gains = det._gains(dt_us)
        det._ema1, det._ema2 = 3.25, -1.5
        if start_phase is not None and start_phase + 1 < max(gains.ema_block, 1):
            for v in np.linspace(-2.0, 2.0, start_phase + 1).tolist():
                det._step_emas(v, dt_us, gains)
        start = (det._ema1, det._ema2, 1.0 if det._ema_key == dt_us else -1.0, det._ema_phase, det._ema_s1, det._ema_s2,
                 det._ema_p1, det._ema_p2, 0.0, math.nan, 0.0, 0.0)
        y1_0, y2_0 = det._ema1, det._ema2
        e2, states = [], []
        for v in x.tolist():
            det._step_emas(v, dt_us, gains)
            e2.append(det._ema2)
            states.append((det._ema1, det._ema2, det._ema_phase, det._ema_s1, det._ema_s2, det._ema_p1, det._ema_p2))
        for stop in (1, 2, 63, 64, 65, n // 3, n):
            st = np.array(start)
            assert kernels.scan_quiet(cols, 0, stop, kernels.MODE_EXCURSION, _scan_params(gains), gains.ema_pow_arr,
                                      gains.ema_inv_arr, st) == stop
            got = (st[kernels.S_EMA1], st[kernels.S_EMA2], int(st[kernels.S_PHASE]), st[kernels.S_S1], st[kernels.S_S2],
                   st[kernels.S_P1], st[kernels.S_P2])
            want = states[stop - 1]
            if gains.ema_block == 0:  # plain recurrence: the block state is not used
                got, want = got[:3], want[:3]
            assert got == want, (dt_us, start_phase, stop)
            assert st[kernels.S_PEAK] == max(0.0, max(e2[:stop]))  # the excursion's peak (neutral 0, sign +1)
        gain, keep = gains.ema, gains.ema_keep
        ref1 = signal.lfilter([gain], [1.0, -keep], x, zi=[keep * y1_0])[0]
        ref2 = signal.lfilter([gain], [1.0, -keep], ref1, zi=[keep * y2_0])[0]
        assert np.max(np.abs(np.array(e2) - ref2)) < 1e-14 * float(np.max(np.abs(x))), (dt_us, start_phase)


def test_scan_neutral_tracker_equals_lfilter_to_the_bit_and_stops_at_the_first_row_out() -> None:
    """Resting mode: ``neutral = keep·neutral + gain·ema2`` row by row (EMA gain 1: ema2 is the input)."""
    rng = np.random.default_rng(11)
    n = 5000
    x = np.cumsum(rng.normal(0.0, 1.0, n))
    cols = np.zeros((n, 7))
    cols[:, 0] = np.arange(n) * 0.01
    cols[:, 1] = x
    empty = np.zeros(0)
    for dt_s, tau_s in ((0.01, 0.03), (1 / 60, 0.03), (0.005, 2.0)):
        gain = -np.expm1(-dt_s / tau_s)
        keep = 1.0 - gain
        g = reps._Gains(1.0, 0.0, gain, keep, 0, (), (), empty, empty)  # ema2 == x exactly
        ref = signal.lfilter([gain], [1.0, -keep], x, zi=[keep * 0.5])[0]
        before = np.concatenate(([0.5], ref[:-1]))  # the neutral each row is compared with
        st = np.array([0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, math.nan, 1.0, 0.0])
        assert kernels.scan_quiet(cols, 0, n, kernels.MODE_RESTING, _scan_params(g), empty, empty, st) == n
        assert st[kernels.S_NEUTRAL] == ref[-1]
        quiet = np.flatnonzero(np.abs(x - before) < 1.0)
        assert st[kernels.S_T_QUIET] == cols[quiet[-1], 0] and st[kernels.S_SINCE_GAP] == 0.0
        enter = 0.5 * float(np.max(np.abs(x - before)))
        st = np.array([0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, math.nan, 1.0, 0.0])
        first = int(np.argmax(np.abs(x - before) >= enter))
        assert kernels.scan_quiet(cols, 0, n, kernels.MODE_RESTING, _scan_params(g, enter=enter), empty, empty, st) == first
        assert st[kernels.S_NEUTRAL] == (ref[first - 1] if first else 0.5)


def test_kernels_are_compiled_when_the_module_is_imported() -> None:
    """Explicit signatures: a live rep never waits for the compiler (each kernel has its one compiled version)."""
    code = ("import sensorhub.drills.kernels as k; "
            "print(all(len(f.signatures) == 1 for f in (k.measure_core, k.scan_quiet, k.window_rate_hz)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    assert out == "True"
