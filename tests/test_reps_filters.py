"""The rep detector's own filters against SciPy's (``sensorhub.drills.reps`` no longer imports scipy.signal).

SciPy is imported here, in the test only: the 2nd-order Butterworth design, its steady-state
initial conditions, the zero-phase filter of a rep's window and the batch EMAs must give SciPy's
numbers (the neutral tracker to the bit; the two smoothing EMAs, evaluated in blocks since the fifth
round, to about 1e-15 of the signal, and to the bit equal to the per-sample path, which the batch
detector relies on).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import signal

from sensorhub.drills import reps

RATES_HZ = (50.0, 60.0, 100.0, 120.0, 200.0)
CUTOFFS_HZ = (3.0, 6.0, 10.0)  # the detector uses 3 and 6 Hz


def _angle_like(rng: np.random.Generator, rows: int, n: int, fs_hz: float) -> np.ndarray:
    """Rep-like angle series (deg): slow swings up to about ±70° plus noise and an offset."""
    t = np.arange(n) / fs_hz
    out = np.empty((rows, n))
    for r in range(rows):
        f = rng.uniform(0.05, 0.6)
        out[r] = rng.uniform(-20, 20) + rng.uniform(10, 50) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) + rng.normal(0, 0.5, n)
    return out


@pytest.mark.parametrize("fs_hz", RATES_HZ)
@pytest.mark.parametrize("cutoff_hz", CUTOFFS_HZ)
def test_butterworth_design_and_initial_conditions_equal_scipy(fs_hz: float, cutoff_hz: float) -> None:
    b, a, zi = reps._butter_ba(cutoff_hz, fs_hz)
    b_ref, a_ref = signal.butter(2, cutoff_hz, fs=fs_hz)
    np.testing.assert_allclose(b, b_ref, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(a, a_ref, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(zi, signal.lfilter_zi(b_ref, a_ref), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fs_hz", RATES_HZ)
@pytest.mark.parametrize("cutoff_hz", CUTOFFS_HZ)
def test_zero_phase_filter_equals_scipy_filtfilt(fs_hz: float, cutoff_hz: float) -> None:
    # 1e-12° up to the analysis's 100-Hz grid. At 200 Hz a 3-Hz pole pair sits close to 1 and both
    # computations round differently by up to ~2e-12 at this signal scale (SciPy's own lfilter is
    # ~2e-12 off exact arithmetic there, checked with mpmath while writing this), so 5e-12°.
    tol = 1e-12 if fs_hz <= 100.0 else 5e-12
    rng = np.random.default_rng(int(fs_hz * 10 + cutoff_hz))
    b, a, zi = reps._butter_ba(cutoff_hz, fs_hz)
    b_ref, a_ref = signal.butter(2, cutoff_hz, fs=fs_hz)
    # Window lengths around the block length and up to a long rep (20 s).
    for n in (16, 19, 63, 64, 65, 128, 129, 700, int(20 * fs_hz)):
        x = _angle_like(rng, 5, n, fs_hz)
        padlen = min(n - 1, 18)
        got = reps._filtfilt_rows(b, a, zi, x, padlen)
        want = signal.filtfilt(b_ref, a_ref, x, axis=-1, padtype="odd", padlen=padlen)
        assert np.max(np.abs(got - want)) < tol, (n, float(np.max(np.abs(got - want))))


def test_second_order_filter_with_initial_state_equals_scipy_lfilter() -> None:
    rng = np.random.default_rng(3)
    for fs_hz, cutoff_hz in ((100.0, 6.0), (100.0, 3.0), (60.0, 6.0), (200.0, 3.0)):
        b, a, _ = reps._butter_ba(cutoff_hz, fs_hz)
        for n in (1, 2, 3, 64, 65, 1000):
            x = _angle_like(rng, 3, n, fs_hz)
            zi = rng.normal(0.0, 30.0, size=(3, 2))  # an arbitrary state: transients of a few hundred degrees
            got = reps._lfilter2(b, a, x, zi)
            want = signal.lfilter(b, a, x, axis=-1, zi=zi)[0]
            assert got.shape == want.shape
            scale = max(1.0, float(np.max(np.abs(want))))
            assert np.max(np.abs(got - want)) < 1e-14 * scale, (fs_hz, cutoff_hz, n)


def _step_by_step(det: reps.RepDetector, x: np.ndarray, key: int, gains: reps._Gains) -> tuple[np.ndarray, np.ndarray, list]:
    out1, out2, states = [], [], []
    for v in x.tolist():
        det._step_emas(v, key, gains)
        out1.append(det._ema1)
        out2.append(det._ema2)
        states.append((det._ema_key, det._ema_phase, det._ema_s1, det._ema_s2, det._ema_p1, det._ema_p2))
    return np.array(out1), np.array(out2), states


@pytest.mark.parametrize("dt_us", [5000, 10000, 16667, 20000, 100000, 500000])
def test_batch_emas_equal_the_per_sample_path_to_the_bit_and_lfilter_to_1e14(dt_us: int) -> None:
    rng = np.random.default_rng(dt_us)
    x = np.cumsum(rng.normal(0.0, 1.0, 5000)) + 40.0 * np.sin(np.arange(5000) / 300.0)
    for start_phase in (None, 0, 7, 40):  # a fresh block, or continuing one part-way through
        online, batch = reps.RepDetector("seated_rotation"), reps.RepDetector("seated_rotation")
        gains = online._gains(dt_us)
        for det in (online, batch):
            det._ema1, det._ema2 = 3.25, -1.5
        if start_phase is not None and start_phase + 1 < max(gains.ema_block, 1):
            for det in (online, batch):  # walk both into the middle of a block with the same samples
                for v in np.linspace(-2.0, 2.0, start_phase + 1).tolist():
                    det._step_emas(v, dt_us, gains)
        y1_0, y2_0 = online._ema1, online._ema2
        e1, e2, states = _step_by_step(online, x, dt_us, gains)
        run = reps._EmaRun(batch, x, dt_us, gains)
        np.testing.assert_array_equal(run.y1, e1)
        np.testing.assert_array_equal(run.y2, e2)
        for i in (0, 1, len(x) // 3, len(x) - 1):
            run.restore(batch, i)
            assert (batch._ema_key, batch._ema_phase, batch._ema_s1, batch._ema_s2, batch._ema_p1, batch._ema_p2) == states[i]
        gain, keep = gains.ema, gains.ema_keep
        ref1 = signal.lfilter([gain], [1.0, -keep], x, zi=[keep * y1_0])[0]
        ref2 = signal.lfilter([gain], [1.0, -keep], ref1, zi=[keep * y2_0])[0]
        scale = float(np.max(np.abs(x)))
        assert np.max(np.abs(e1 - ref1)) < 1e-14 * scale, (dt_us, start_phase)
        assert np.max(np.abs(e2 - ref2)) < 1e-14 * scale, (dt_us, start_phase)


def test_neutral_tracker_equals_lfilter_to_the_bit() -> None:
    rng = np.random.default_rng(11)
    x = np.cumsum(rng.normal(0.0, 1.0, 5000))
    for dt_s, tau_s in ((0.01, 0.03), (1 / 60, 0.03), (0.005, 2.0)):
        gain = -np.expm1(-dt_s / tau_s)
        keep = 1.0 - gain
        # The neutral tracker: whole series below the threshold, then stopping at the first row above it.
        n_ok, neutral, quiet = reps._track_neutral(x, 0.5, gain, keep, 1e9)
        ref = signal.lfilter([gain], [1.0, -keep], x, zi=[keep * 0.5])[0]
        assert n_ok == len(x) and neutral == ref[-1]
        np.testing.assert_array_equal(quiet, x - np.concatenate(([0.5], ref[:-1])))
        enter = 0.5 * float(np.max(np.abs(x - np.concatenate(([0.5], ref[:-1])))))
        n_ok, neutral, quiet = reps._track_neutral(x, 0.5, gain, keep, enter)
        first = int(np.argmax(np.abs(x - np.concatenate(([0.5], ref[:-1]))) >= enter))
        assert n_ok == first and len(quiet) == first
        assert neutral == (ref[first - 1] if first else 0.5)


def test_importing_the_analysis_does_not_load_scipy_signal() -> None:
    code = "import sys, sensorhub.analysis; print(any(m == 'scipy.signal' or m.startswith('scipy.signal.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    assert out == "False"


def _sparc_reference(speed: np.ndarray, fs_hz: float, fc_hz: float = 10.0, amp_threshold: float = 0.05, pad_level: int = 4) -> float:
    """SPARC written as in Balasubramanian et al. 2015 (the form scoring.sparc had before it skipped the unused bins)."""
    if speed.size < 4 or not np.all(np.isfinite(speed)) or float(np.max(np.abs(speed))) <= 0.0:
        return float("nan")
    nfft = int(2 ** (np.ceil(np.log2(speed.size)) + pad_level))
    freq = np.fft.rfftfreq(nfft, d=1.0 / fs_hz)
    mag = np.abs(np.fft.rfft(speed, nfft))
    mag = mag / mag.max()
    keep = freq <= fc_hz
    freq, mag = freq[keep], mag[keep]
    above = np.flatnonzero(mag >= amp_threshold)
    freq, mag = freq[above[0] : above[-1] + 1], mag[above[0] : above[-1] + 1]
    if freq.size < 2:
        return 0.0
    d_freq = np.diff(freq) / (freq[-1] - freq[0])
    return float(-np.sum(np.sqrt(d_freq**2 + np.diff(mag) ** 2)))


def test_sparc_equals_the_reference_formula_to_the_bit() -> None:
    from sensorhub.drills.scoring import sparc

    rng = np.random.default_rng(17)
    for i in range(3000):
        n = int(rng.integers(2, 900))
        fs = float(rng.choice([33.3, 50.0, 60.0, 100.0, 120.0, 200.0]))
        speed = np.abs(np.cumsum(rng.normal(size=n))) * rng.uniform(0.0, 50.0)
        if i % 50 == 0:
            speed[:] = 0.0
        fc = float(rng.choice([1.0, 5.0, 10.0, 30.0, 200.0]))
        thr = float(rng.choice([0.05, 0.5, 0.99, 1.0]))
        got, want = sparc(speed, fs, fc_hz=fc, amp_threshold=thr), _sparc_reference(speed, fs, fc, thr)
        assert got == want or (np.isnan(got) and np.isnan(want)), (n, fs, fc, thr, got, want)
