"""The rep detector's own filters against SciPy's (``sensorhub.drills.reps`` no longer imports scipy.signal).

SciPy is imported here, in the test only: the 2nd-order Butterworth design, its steady-state
initial conditions and the zero-phase filter of a rep's window (the compiled kernel since session 3)
must give SciPy's numbers. The batch EMAs and the neutral tracker, now in the batch path's kernel,
are checked in tests/test_reps_kernels.py.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import signal

from sensorhub.drills import kernels, reps

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
    b_ref, a_ref = signal.butter(2, cutoff_hz, fs=fs_hz)
    # Window lengths around the block length and up to a long rep (20 s).
    for n in (16, 19, 63, 64, 65, 128, 129, 700, int(20 * fs_hz)):
        x = _angle_like(rng, 5, n, fs_hz)
        padlen = min(n - 1, 18)
        got = x.copy()
        for row in got:
            kernels.filtfilt2(reps._filter_coef(cutoff_hz, fs_hz), row, padlen)
        want = signal.filtfilt(b_ref, a_ref, x, axis=-1, padtype="odd", padlen=padlen)
        assert np.max(np.abs(got - want)) < tol, (n, float(np.max(np.abs(got - want))))


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
