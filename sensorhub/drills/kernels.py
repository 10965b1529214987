"""Compiled kernels of the rep stage (numba): the detector's quiet stretches and the measurement of a closed rep.

Both the live path (:meth:`sensorhub.drills.reps.RepDetector.update`, one sample per call) and the
batch path (:meth:`~sensorhub.drills.reps.RepDetector.update_table`) use these kernels, so the two
keep giving identical reps:

* :func:`scan_quiet` advances the detector over the samples of a uniformly sampled stretch that
  cannot change its state (no threshold crossed, no timeout), with the two smoothing EMAs in the
  blocked form of :class:`sensorhub.drills.reps._Gains` and the resting neutral tracker, in the same
  operations and order as the per-sample Python code. It stops at the first *decision row*, which
  the caller sends through ``update`` itself. Only the batch path calls it; the live path runs the
  same arithmetic in Python (tests/test_reps_kernels.py checks the two to the bit).
* :func:`measure_core` measures one closed rep from its raw window: NaN bridging, the zero-phase
  2nd-order Butterworth low-pass (SciPy's ``filtfilt`` with odd padding, in SciPy's own
  direct-form-II-transposed order of operations), gradients, neutrals, holds, onsets and returns,
  SPARC of each movement phase and the pelvis (and knee) compensation. Live and batch both call it
  when a rep closes.

Arithmetic is written to be NumPy's where the old NumPy code's values are kept: ``np.median``'s
values, ``np.gradient``'s formula, ``np.interp``'s formula, and NumPy's pairwise summation
(:func:`pairwise_sum`, what ``np.sum`` does for float64). Two parts differ at the level of
floating-point rounding from the NumPy code they replace: the low-pass (the recurrence SciPy's
``filtfilt`` runs instead of block-matrix products; within 1e-12° of SciPy's result) and the SPARC
spectrum (a direct DFT of the bins up to ``fc_hz`` from a cosine table instead of a full
``np.fft.rfft``; see :func:`_sparc_dft`).
No ``fastmath``: LLVM may then neither reorder nor fuse the floating-point operations.

The three entry points the detector calls (:func:`window_rate_hz`, :func:`measure_core`,
:func:`scan_quiet`) have explicit signatures, so they are compiled (or loaded from the
``__pycache__`` cache) when this module is imported, never on a live rep; the helpers they call are
compiled into them (the helpers' own dispatchers compile only when called directly, as the tests
do). :func:`pairwise_sum` keeps an explicit signature too: it calls itself, and numba 0.68 cannot
load a lazily compiled recursive function from its cache (the cached caller then fails to link,
"Symbol not found ... pairwise_sum"). Must not do I/O or logging.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: Detector modes of :func:`scan_quiet` (which conditions make a row a decision row).
MODE_EXCURSION = 0
MODE_CLOSING = 1
MODE_PENDING = 2
MODE_RESTING = 3

#: Layout of the detector state array of :func:`scan_quiet` (read and written back).
S_EMA1, S_EMA2, S_KEY, S_PHASE, S_S1, S_S2, S_P1, S_P2, S_NEUTRAL, S_T_QUIET, S_SINCE_GAP, S_PEAK = range(12)
STATE_SIZE = 12

#: Layout of the parameters of :func:`scan_quiet`.
(Q_EMA, Q_KEEP, Q_NEUTRAL, Q_NEUTRAL_KEEP, Q_ENTER, Q_EXIT, Q_ONSET, Q_FLEX_LO, Q_FLEX_HI, Q_SIGN, Q_T_ENTER,
 Q_MAX_EXCURSION, Q_T_EXIT, Q_SETTLE, Q_T_BACK, Q_MAX_MID_PAUSE) = range(16)
SCAN_PARAMS = 16

#: Layout of the parameters of :func:`measure_core`.
(M_PRE, M_ENTER, M_EXIT, M_MIN_PAUSE, M_HOLD_TOL, M_HOLD_SPEED, M_ONSET, M_ROT_FRACTION, M_FC, M_AMP, M_PAD,
 M_SPARC_MAX_LEN, M_FILTER_ANGLES, M_FILTER_HOLD, M_PADLEN) = range(15)
MEASURE_PARAMS = 15

#: Layout of the result of :func:`measure_core`: three values, then :data:`HALF_SIZE` per half, then
#: per tracked axis its change, the half it peaked in (-1: none) and whether it has any raw sample.
R_NEUTRAL, R_GAP_S, R_FLEX_MEAN = range(3)
(H_ON, H_H0, H_H1, H_RET, H_PEAK_I, H_PEAK, H_NEUTRAL, H_SPARC_OUT, H_SPARC_BACK) = range(9)
HALF_SIZE = 9
MAX_HALVES = 2
N_TRACKED = 4
R_COMP = 3 + MAX_HALVES * HALF_SIZE
RESULT_SIZE = R_COMP + 3 * N_TRACKED

#: Marker for a SPARC phase longer than ``M_SPARC_MAX_LEN`` samples: the caller computes it with
#: :func:`sensorhub.drills.scoring.sparc` (one FFT is cheaper than the direct DFT there).
SPARC_BY_FFT = math.inf

#: Cosine tables for the SPARC DFT, one per power-of-two length ``L`` from 32 to ``TWIDDLE_SIZE``,
#: concatenated: the table ``cos(2π m / L)`` starts at offset ``L - 32`` (every ``TWIDDLE_SIZE / L``-th
#: value of the longest one), so a kernel takes it as a contiguous slice.
TWIDDLE_SIZE = 1 << 14
_TWIDDLE_FULL = np.cos(2.0 * np.pi * np.arange(TWIDDLE_SIZE) / TWIDDLE_SIZE)
TWIDDLE_COS = np.concatenate([_TWIDDLE_FULL[:: TWIDDLE_SIZE >> i] for i in range(5, 15)])

@numba.njit("float64(float64[::1], int64, int64)", cache=True, nogil=True)
def pairwise_sum(a: FloatArray, lo: int, n: int) -> float:
    """``np.sum(a[lo:lo + n])`` to the bit: NumPy's pairwise summation of float64 (blocks of up to 128
    values summed with 8 accumulators, longer runs split in two at a multiple of 8)."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    if n <= 128:
        r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
        r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
        i = 8
        stop = n - n % 8
        while i < stop:
            j = lo + i
            r0 += a[j]
            r1 += a[j + 1]
            r2 += a[j + 2]
            r3 += a[j + 3]
            r4 += a[j + 4]
            r5 += a[j + 5]
            r6 += a[j + 6]
            r7 += a[j + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[lo + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return pairwise_sum(a, lo, n2) + pairwise_sum(a, lo + n2, n - n2)


@numba.njit(cache=True, nogil=True)
def median(x: FloatArray) -> float:
    """``float(np.median(x))`` of a non-empty array (NaN if it holds a NaN): the middle value, or the two
    middle ones added and halved, of the sorted values (found by partitioning, not a full sort)."""
    n = x.size
    for v in x:
        if math.isnan(v):
            return math.nan
    h = n // 2
    part = np.partition(x, h)
    if n % 2:
        return part[h]
    below = part[0]
    for i in range(1, h):
        below = max(below, part[i])
    return (below + part[h]) / 2.0


@numba.njit(cache=True, nogil=True)
def sample_rate_hz(t: FloatArray) -> float:
    """``1 / median(diff(t))`` (at least two samples)."""
    return 1.0 / median(np.diff(t))


@numba.njit("float64(float64[:, ::1])", cache=True, nogil=True)
def window_rate_hz(rows: FloatArray) -> float:
    """The sample rate of a rep's window ``rows`` (7, n) (:func:`sample_rate_hz` of its times), NaN when
    fewer than 8 of its samples have a hip rotation (row 1; too few to measure)."""
    n = rows.shape[1]
    if n < 8:
        return math.nan
    finite = 0
    for v in rows[1]:
        if math.isfinite(v):
            finite += 1
    if finite < 8:
        return math.nan
    return sample_rate_hz(rows[0].copy())


@numba.njit(cache=True, nogil=True)
def _fill_nan(t: FloatArray, x: FloatArray) -> None:
    """Bridge NaN in ``x`` in place as ``np.interp(t, t[ok], x[ok])`` does (flat beyond the ends); all-NaN stays."""
    n = x.size
    prev = -1
    first = -1
    for i in range(n):
        if not math.isnan(x[i]):
            first = i
            break
    if first < 0:
        return
    i = 0
    while i < n:
        if not math.isnan(x[i]):
            prev = i
            i += 1
            continue
        nxt = i + 1
        while nxt < n and math.isnan(x[nxt]):
            nxt += 1
        for k in range(i, nxt):
            if prev < 0:
                x[k] = x[first]
            elif nxt >= n:
                x[k] = x[prev]
            else:
                slope = (x[nxt] - x[prev]) / (t[nxt] - t[prev])
                x[k] = slope * (t[k] - t[prev]) + x[prev]
        i = nxt


@numba.njit(cache=True, nogil=True)
def _all_finite(x: FloatArray) -> bool:
    for v in x:
        if not math.isfinite(v):
            return False
    return True


@numba.njit(cache=True, nogil=True)
def filtfilt2(coef: FloatArray, x: FloatArray, padlen: int) -> None:
    """Zero-phase 2nd-order filter of ``x`` in place: ``scipy.signal.filtfilt(b, a, x, padtype="odd", padlen=padlen)``.

    ``coef`` is ``(b0, b1, b2, a1, a2, zi0, zi1)`` with ``a0 = 1`` and ``zi`` SciPy's ``lfilter_zi``.
    Odd extension, forward pass from the steady state of the first value, backward pass from that of
    the last; each pass in the order of SciPy's ``lfilter`` (``y = z0 + b0·x``,
    ``z0 = z1 + x·b1 - y·a1``, ``z1 = x·b2 - y·a2``).
    """
    b0, b1, b2, a1, a2, zi0, zi1 = coef[0], coef[1], coef[2], coef[3], coef[4], coef[5], coef[6]
    n = x.size
    m = n + 2 * padlen
    ext = np.empty(m)
    for k in range(padlen):
        ext[k] = 2.0 * x[0] - x[padlen - k]
        ext[padlen + n + k] = 2.0 * x[n - 1] - x[n - 2 - k]
    for k in range(n):
        ext[padlen + k] = x[k]
    x0 = ext[0]
    z0, z1 = zi0 * x0, zi1 * x0
    for k in range(m):
        xn = ext[k]
        yn = z0 + b0 * xn
        z0 = z1 + xn * b1 - yn * a1
        z1 = xn * b2 - yn * a2
        ext[k] = yn
    x0 = ext[m - 1]
    z0, z1 = zi0 * x0, zi1 * x0
    for k in range(m - 1, -1, -1):
        xn = ext[k]
        yn = z0 + b0 * xn
        z0 = z1 + xn * b1 - yn * a1
        z1 = xn * b2 - yn * a2
        ext[k] = yn
    for k in range(n):
        x[k] = ext[padlen + k]


@numba.njit(inline="always")
def _df2t_step(xn: float, z0: float, z1: float, c: tuple[float, float, float, float, float]) -> tuple[float, float, float]:
    """One sample of :func:`filtfilt2`'s recurrence: (output, new z0, new z1) for ``c = (b0, b1, b2, a1, a2)``."""
    yn = z0 + c[0] * xn
    return yn, z1 + xn * c[1] - yn * c[3], xn * c[2] - yn * c[4]


@numba.njit(cache=True, nogil=True)
def filtfilt6(coef: FloatArray, x: FloatArray, padlen: int) -> None:
    """:func:`filtfilt2` of the six rows of ``x`` (6, n) in place, row ``r`` with the coefficients ``coef[r]``.

    The rows run side by side in one loop over a sample-major work array with each row's state in
    locals, so the six independent recurrences overlap instead of each waiting on its own previous
    output (13 instead of 30 µs for a 7.6-s window at 100 Hz); every row gets exactly the operations
    of :func:`filtfilt2`, so the same values to the bit.
    """
    n = x.shape[1]
    m = n + 2 * padlen
    ext = np.empty((m, 6))
    for r in range(6):
        row = x[r]
        for i in range(padlen):
            ext[i, r] = 2.0 * row[0] - row[padlen - i]
            ext[padlen + n + i, r] = 2.0 * row[n - 1] - row[n - 2 - i]
        for i in range(n):
            ext[padlen + i, r] = row[i]
    c0 = (coef[0, 0], coef[0, 1], coef[0, 2], coef[0, 3], coef[0, 4])
    c1 = (coef[1, 0], coef[1, 1], coef[1, 2], coef[1, 3], coef[1, 4])
    c2 = (coef[2, 0], coef[2, 1], coef[2, 2], coef[2, 3], coef[2, 4])
    c3 = (coef[3, 0], coef[3, 1], coef[3, 2], coef[3, 3], coef[3, 4])
    c4 = (coef[4, 0], coef[4, 1], coef[4, 2], coef[4, 3], coef[4, 4])
    c5 = (coef[5, 0], coef[5, 1], coef[5, 2], coef[5, 3], coef[5, 4])
    for backward in range(2):
        # Forward from the steady state of the first value, then backward from that of the last.
        i = m - 1 if backward else 0
        step = -1 if backward else 1
        e = ext[i]
        s0, t0 = coef[0, 5] * e[0], coef[0, 6] * e[0]
        s1, t1 = coef[1, 5] * e[1], coef[1, 6] * e[1]
        s2, t2 = coef[2, 5] * e[2], coef[2, 6] * e[2]
        s3, t3 = coef[3, 5] * e[3], coef[3, 6] * e[3]
        s4, t4 = coef[4, 5] * e[4], coef[4, 6] * e[4]
        s5, t5 = coef[5, 5] * e[5], coef[5, 6] * e[5]
        for _ in range(m):
            e = ext[i]
            e[0], s0, t0 = _df2t_step(e[0], s0, t0, c0)
            e[1], s1, t1 = _df2t_step(e[1], s1, t1, c1)
            e[2], s2, t2 = _df2t_step(e[2], s2, t2, c2)
            e[3], s3, t3 = _df2t_step(e[3], s3, t3, c3)
            e[4], s4, t4 = _df2t_step(e[4], s4, t4, c4)
            e[5], s5, t5 = _df2t_step(e[5], s5, t5, c5)
            i += step
    for r in range(6):
        row = x[r]
        for i in range(n):
            row[i] = ext[padlen + i, r]


@numba.njit(cache=True, nogil=True)
def abs_gradients(t: FloatArray, f: FloatArray, g: FloatArray, out_f: FloatArray, out_g: FloatArray) -> None:
    """``np.abs(np.gradient(f, t))`` and the same of ``g`` (edge order 1), NumPy's formula to the bit (at least
    2 samples): the central difference over ``2·dt`` when every step equals the first, otherwise the
    second-order weights of the uneven neighbours; one-sided differences at the ends."""
    n = f.size
    dx0 = t[1] - t[0]
    uniform = True
    for i in range(1, n - 1):
        if t[i + 1] - t[i] != dx0:
            uniform = False
            break
    if uniform:
        two_dx = 2.0 * dx0
        for i in range(1, n - 1):
            out_f[i] = abs((f[i + 1] - f[i - 1]) / two_dx)
            out_g[i] = abs((g[i + 1] - g[i - 1]) / two_dx)
    else:
        for i in range(1, n - 1):
            dx1 = t[i] - t[i - 1]
            dx2 = t[i + 1] - t[i]
            a = -dx2 / (dx1 * (dx1 + dx2))
            b = (dx2 - dx1) / (dx1 * dx2)
            c = dx1 / (dx2 * (dx1 + dx2))
            out_f[i] = abs(a * f[i - 1] + b * f[i] + c * f[i + 1])
            out_g[i] = abs(a * g[i - 1] + b * g[i] + c * g[i + 1])
    dxn = t[n - 1] - t[n - 2]
    out_f[0] = abs((f[1] - f[0]) / dx0)
    out_g[0] = abs((g[1] - g[0]) / dx0)
    out_f[n - 1] = abs((f[n - 1] - f[n - 2]) / dxn)
    out_g[n - 1] = abs((g[n - 1] - g[n - 2]) / dxn)


@numba.njit(cache=True, nogil=True)
def _sparc_dft(speed: FloatArray, lo: int, hi: int, fs_hz: float, fc_hz: float, amp_threshold: float, pad_level: int,
               cos_table: FloatArray) -> float:
    """:func:`sensorhub.drills.scoring.sparc` of the non-negative profile ``speed[lo:hi]``, spectrum by direct DFT.

    Only the bins up to ``fc_hz`` are computed (about a fifth of the FFT's at 100 Hz): bin ``k`` of
    the zero-padded length-``nfft`` transform is ``Σ x_j·e^(-2πi·jk/nfft)``, summed over sample pairs
    symmetric about the profile's centre (below), each phase looked up in a cosine table (sine as the
    cosine a quarter turn earlier), so every term is as exact as the FFT's. The normalising maximum of the whole spectrum is bin 0 for a
    non-negative profile (``|X_k| <= Σ|x_j| = X_0``), so no other bin is needed. Values differ from
    the FFT's at the level of rounding.
    """
    size = hi - lo
    if size < 4:
        return math.nan
    peak = 0.0
    for j in range(lo, hi):
        v = abs(speed[j])
        if math.isnan(v):
            return math.nan
        peak = max(peak, v)
    if not (math.isfinite(peak) and peak > 0.0):
        return math.nan
    nfft = 1 << (math.ceil(math.log2(size)) + pad_level)
    step = 1.0 / (nfft * (1.0 / fs_hz))
    n_keep = min(int(fc_hz / step) + 2, nfft // 2 + 1)
    while n_keep > 0 and (n_keep - 1) * step > fc_hz:
        n_keep -= 1
    if n_keep == 0:
        return 0.0
    # Samples paired around the profile's centre c = (size - 1) / 2: with d = 2j - (size - 1),
    # |X_k| = |Σ x_j·e^(-iθ_k·d/2)| = hypot(Σ (x_j + x_j')·cos(θ_k·d/2), Σ (x_j - x_j')·sin(θ_k·d/2)) over
    # the first half (j' = size - 1 - j; the middle sample of an odd length in the cosine sum alone):
    # half the terms of the plain sum. The phase k·d is looked up in a table of 2·nfft steps.
    n2 = 2 * nfft
    if n2 <= cos_table.size + 32 - n2:
        table = cos_table[n2 - 32 : 2 * n2 - 32]  # the table of length n2 (see TWIDDLE_COS)
    else:  # longer than the tables: one of this length (only for a very long phase)
        table = np.cos(2.0 * np.pi * np.arange(n2) / n2)
    mask = n2 - 1
    quarter = n2 // 4
    half = size // 2
    odd = size % 2 == 1
    plus = np.empty(half)
    minus = np.empty(half)
    for j in range(half):
        a = speed[lo + j]
        b = speed[hi - 1 - j]
        plus[j] = a + b
        minus[j] = a - b
    middle = speed[lo + half] if odd else 0.0
    mag = np.empty(n_keep)
    # Four bins per pass: eight independent sums keep the FPU busy (one pair per bin would wait on
    # its own additions). Each sum adds its terms in sample order.
    k = 0
    while k < n_keep:
        k1 = min(k + 1, n_keep - 1)
        k2 = min(k + 2, n_keep - 1)
        k3 = min(k + 3, n_keep - 1)
        re0 = re1 = re2 = re3 = middle
        im0 = im1 = im2 = im3 = 0.0
        start = 1 - size  # d of the first sample
        p0 = (k * start) & mask
        p1 = (k1 * start) & mask
        p2 = (k2 * start) & mask
        p3 = (k3 * start) & mask
        for j in range(half):
            u = plus[j]
            w = minus[j]
            re0 += u * table[p0]
            im0 += w * table[(p0 - quarter) & mask]  # sin(θ) = cos(θ - π/2)
            re1 += u * table[p1]
            im1 += w * table[(p1 - quarter) & mask]
            re2 += u * table[p2]
            im2 += w * table[(p2 - quarter) & mask]
            re3 += u * table[p3]
            im3 += w * table[(p3 - quarter) & mask]
            p0 = (p0 + 2 * k) & mask
            p1 = (p1 + 2 * k1) & mask
            p2 = (p2 + 2 * k2) & mask
            p3 = (p3 + 2 * k3) & mask
        mag[k] = math.hypot(re0, im0)
        mag[k1] = math.hypot(re1, im1)
        mag[k2] = math.hypot(re2, im2)
        mag[k3] = math.hypot(re3, im3)
        k += 4
    top = mag[0]
    for k in range(n_keep):
        top = max(top, mag[k])
    first = -1
    last = -1
    for k in range(n_keep):
        mag[k] = mag[k] / top
        if mag[k] >= amp_threshold:
            if first < 0:
                first = k
            last = k
    if first < 0 or last - first < 1:
        return 0.0
    width = float(last) * step - float(first) * step
    terms = np.empty(last - first)
    for k in range(first, last):
        d_freq = (float(k + 1) * step - float(k) * step) / width
        d_mag = mag[k + 1] - mag[k]
        terms[k - first] = math.sqrt(d_freq * d_freq + d_mag * d_mag)
    return -pairwise_sum(terms, 0, terms.size)


@numba.njit(
    "void(float64[:, ::1], float64[:, ::1], float64, float64[::1], float64[::1], float64[::1], float64, float64[::1], "
    "float64[::1], float64[::1])",
    cache=True, nogil=True,
)
def measure_core(rows: FloatArray, halves: FloatArray, neutral0: float, coef_angles: FloatArray, coef_hold: FloatArray,
                 params: FloatArray, fs_hz: float, cos_table: FloatArray, out: FloatArray, speed: FloatArray) -> None:
    """Measure one closed rep from its raw window ``rows`` (7, n): t, hip rotation, hip flexion, hip adduction,
    pelvis tilt, obliquity, rotation (s, degrees; NaN = gap), as :func:`sensorhub.drills.reps.measure_rep` describes.

    ``halves`` (3, 1 or 2): per half the direction's sign and the coarse excursion's leave and back
    times; ``neutral0``: the detector's neutral at the first half. ``coef_*``: filter
    coefficients for :func:`filtfilt2` (``M_FILTER_*`` says whether to filter at all; a column is
    filtered only when it is finite after bridging its NaN). Writes the
    layout of :data:`RESULT_SIZE` into ``out`` and the angular speed (deg/s, 6-Hz filtered) into
    ``speed``.
    """
    n = rows.shape[1]
    t = rows[0]
    signs, t_leaves, t_backs = halves[0], halves[1], halves[2]
    pre_s = params[M_PRE]
    onset = params[M_ONSET]
    # Rows of ``low``: the hip rotation and the tracked axes (TRACKED_AXES order: tilt, obliquity, rotation,
    # adduction) for the 6-Hz low-pass, and the hip rotation again for the 3-Hz one of the hold speed.
    low = np.empty((6, n))
    src = (1, 4, 5, 6, 3, 1)
    measured = np.zeros(6, dtype=np.bool_)
    use = np.zeros(6, dtype=np.bool_)
    coef = np.empty((6, 7))
    for c in range(6):
        col = low[c]
        raw = rows[src[c]]
        for i in range(n):
            col[i] = raw[i]
            if math.isfinite(raw[i]):
                measured[c] = True
        _fill_nan(t, col)
        use[c] = params[M_FILTER_HOLD if c == 5 else M_FILTER_ANGLES] > 0.0 and _all_finite(col)
        coef[c] = coef_hold if c == 5 else coef_angles
    if use.any():
        kept = low.copy()
        filtfilt6(coef, low, int(params[M_PADLEN]))
        for c in range(6):
            if not use[c]:
                low[c] = kept[c]
    rot = low[0]
    hold_speed = np.empty(n)
    abs_gradients(t, rot, low[5], speed, hold_speed)
    dt = np.empty(n)
    dt[0] = 0.0
    for i in range(1, n):
        dt[i] = t[i] - t[i - 1]

    # Neutral: the median of the filtered angle over pre_s before the first half leaves.
    t_leave = t_leaves[0]
    sel = np.empty(n)
    m = 0
    lo_t = t_leave - pre_s
    for i in range(n):
        if t[i] >= lo_t and t[i] <= t_leave:
            sel[m] = rot[i]
            m += 1
    neutral = median(sel[:m].copy()) if m else neutral0
    if abs(neutral - neutral0) > params[M_ENTER]:
        neutral = neutral0
    out[R_NEUTRAL] = neutral

    n_halves = signs.size
    y = np.empty(n)
    half_neutral = neutral
    for h in range(n_halves):
        base = 3 + h * HALF_SIZE
        if h:
            # A pause at neutral between the halves re-measures the neutral.
            t_ret_prev = t[int(out[base - HALF_SIZE + H_RET])]
            m = 0
            for i in range(n):
                if t[i] >= t_ret_prev and t[i] <= t_leaves[h]:
                    sel[m] = dt[i]
                    m += 1
            if pairwise_sum(sel, 0, m) >= params[M_MIN_PAUSE]:
                m = 0
                for i in range(n):
                    if t[i] >= t_ret_prev and t[i] <= t_leaves[h]:
                        sel[m] = rot[i]
                        m += 1
                candidate = median(sel[:m].copy())
                if abs(candidate - half_neutral) < params[M_EXIT]:
                    half_neutral = candidate
        sign = signs[h]
        for i in range(n):
            y[i] = sign * (rot[i] - half_neutral)
        # The excursion's samples, its peak (first maximum) and the hold around it.
        first = -1
        last = -1
        i_peak = -1
        for i in range(n):
            if t[i] >= t_leaves[h] and t[i] <= t_backs[h]:
                if first < 0:
                    first = i
                last = i
                if i_peak < 0 or y[i] > y[i_peak]:
                    i_peak = i
        if first < 0:
            raise ValueError("measure_core: no sample inside an excursion")
        peak = y[i_peak]
        level = peak - params[M_HOLD_TOL]
        limit = params[M_HOLD_SPEED]
        i_h0 = first
        for i in range(i_peak - 1, first - 1, -1):
            if not (y[i] >= level and hold_speed[i] < limit):
                i_h0 = i + 1
                break
        i_h1 = last
        for i in range(i_peak + 1, last + 1):
            if not (y[i] >= level and hold_speed[i] < limit):
                i_h1 = i - 1
                break
        i_on = 0
        for i in range(i_h0, -1, -1):
            if not (y[i] >= onset):
                i_on = i
                break
        i_ret = n - 1
        for i in range(i_h1, n):
            if not (y[i] >= onset):
                i_ret = i
                break
        out[base + H_ON] = i_on
        out[base + H_H0] = i_h0
        out[base + H_H1] = i_h1
        out[base + H_RET] = i_ret
        out[base + H_PEAK_I] = i_peak
        out[base + H_PEAK] = peak
        out[base + H_NEUTRAL] = half_neutral
        for p in range(2):
            p0, p1 = (i_on, i_h0 + 1) if p == 0 else (i_h1, i_ret + 1)
            if p1 - p0 < 4:
                value = math.nan
            elif p1 - p0 > params[M_SPARC_MAX_LEN]:
                value = math.inf  # SPARC_BY_FFT
            else:
                value = _sparc_dft(speed, p0, p1, fs_hz, params[M_FC], params[M_AMP], int(params[M_PAD]), cos_table)
            out[base + H_SPARC_OUT + p] = value

    # Gap time inside the rep and the mean hip flexion over it.
    t_start = t[int(out[3 + H_ON])]
    t_end = t[int(out[3 + (n_halves - 1) * HALF_SIZE + H_RET])]
    m = 0
    k = 0
    any_flex = False
    n_nan = 0
    flex = np.empty(n)
    for i in range(n):
        if t[i] >= t_start and t[i] <= t_end:
            if math.isnan(rows[1, i]) or math.isinf(rows[1, i]):
                sel[m] = dt[i]
                m += 1
            v = rows[2, i]
            if math.isnan(v):
                n_nan += 1
                flex[k] = 0.0
            else:
                flex[k] = v
                if not math.isinf(v):
                    any_flex = True
            k += 1
    out[R_GAP_S] = pairwise_sum(sel, 0, m)
    out[R_FLEX_MEAN] = pairwise_sum(flex, 0, k) / (k - n_nan) if any_flex else math.nan

    # Compensation: each tracked axis's largest change from its median over pre_s before the rep, where the
    # hip is turned by more than rot_fraction of the half's peak.
    comp = R_COMP
    base_vals = np.empty(N_TRACKED)
    lo_t = t_start - pre_s
    m = 0
    for i in range(n):
        if t[i] >= lo_t and t[i] <= t_start:
            m += 1
    i_start = 0
    while i_start < n and t[i_start] < t_start:
        i_start += 1
    for c in range(N_TRACKED):
        col = low[c + 1]
        if m:
            k = 0
            for i in range(n):
                if t[i] >= lo_t and t[i] <= t_start:
                    sel[k] = col[i]
                    k += 1
            base_vals[c] = median(sel[:m].copy())
        else:
            base_vals[c] = col[i_start]
    best = np.zeros(N_TRACKED)
    best_half = np.full(N_TRACKED, -1.0)
    frac = params[M_ROT_FRACTION]
    for h in range(n_halves):
        hb = 3 + h * HALF_SIZE
        t_on = t[int(out[hb + H_ON])]
        t_ret = t[int(out[hb + H_RET])]
        sign = signs[h]
        hn = out[hb + H_NEUTRAL]
        threshold = frac * out[hb + H_PEAK]
        any_row = False
        peak_change = np.full(N_TRACKED, -math.inf)
        for i in range(n):
            if t[i] >= t_on and t[i] <= t_ret and sign * (rot[i] - hn) > threshold:
                any_row = True
                for c in range(N_TRACKED):
                    v = abs(low[c + 1, i] - base_vals[c])
                    if math.isnan(v) or math.isnan(peak_change[c]):
                        peak_change[c] = math.nan
                    elif v > peak_change[c]:
                        peak_change[c] = v
        if any_row:
            for c in range(N_TRACKED):
                if peak_change[c] > best[c]:
                    best[c] = peak_change[c]
                    best_half[c] = h
    for c in range(N_TRACKED):
        out[comp + c] = best[c] if measured[c + 1] else math.nan
        out[comp + N_TRACKED + c] = best_half[c]
        out[comp + 2 * N_TRACKED + c] = 1.0 if measured[c + 1] else 0.0


@numba.njit(
    "int64(float64[:, ::1], int64, int64, int64, float64[::1], float64[::1], float64[::1], float64[::1])",
    cache=True, nogil=True,
)
def scan_quiet(cols: FloatArray, k0: int, r1: int, mode: int, params: FloatArray, ema_pow: FloatArray,
               ema_inv: FloatArray, state: FloatArray) -> int:
    """Advance the detector over rows ``k0 .. r1-1`` of ``cols`` (n, 7) up to the first decision row; return its index (``r1`` if none).

    The rows are finite, each right after a finite row, at one sample interval whose gains are in
    ``params`` / ``ema_pow`` / ``ema_inv`` (``ema_pow.size`` is the EMA block length, 0: plain
    recurrence). Every row before the decision row is applied as ``RepDetector.update`` would:
    the two EMAs (:meth:`RepDetector._step_emas`, same operations in the same order), then in
    ``mode`` MODE_EXCURSION the peak, otherwise the quiet-time tracking, and in MODE_RESTING the
    neutral tracker. ``state`` (layout ``S_*``) is read and written back (``S_KEY``: 1 when the EMA
    block in progress has this interval, else -1).
    """
    ema, keep = params[Q_EMA], params[Q_KEEP]
    blk = ema_pow.size
    y1, y2 = state[S_EMA1], state[S_EMA2]
    key_same = state[S_KEY] > 0.0
    phase = int(state[S_PHASE])
    s1, s2, p1, p2 = state[S_S1], state[S_S2], state[S_P1], state[S_P2]
    neutral = state[S_NEUTRAL]
    t_quiet = state[S_T_QUIET]
    since_gap = state[S_SINCE_GAP]
    peak = state[S_PEAK]
    enter, exit_deg, onset = params[Q_ENTER], params[Q_EXIT], params[Q_ONSET]
    flex_lo, flex_hi = params[Q_FLEX_LO], params[Q_FLEX_HI]
    sign = params[Q_SIGN]
    g_n, keep_n = params[Q_NEUTRAL], params[Q_NEUTRAL_KEEP]
    k = k0
    while k < r1:
        t = cols[k, 0]
        x_in = cols[k, 1]
        # The two smoothing EMAs, one sample (RepDetector._step_emas).
        if blk == 0:
            n1 = keep * y1 + ema * x_in
            n2 = keep * y2 + ema * n1
            n_phase = 0
            n_s1, n_s2, n_p1, n_p2 = s1, s2, p1, p2
        else:
            j = phase + 1
            if not key_same or j == blk:
                j = 0
                n_s1, n_s2 = y1, y2
                n_p1 = (ema * x_in) * ema_inv[0]
            else:
                n_s1, n_s2 = s1, s2
                n_p1 = p1 + (ema * x_in) * ema_inv[j]
            n1 = ema_pow[j] * (n_s1 + n_p1)
            n_p2 = (ema * n1) * ema_inv[j]
            if j:
                n_p2 = p2 + n_p2
            n2 = ema_pow[j] * (n_s2 + n_p2)
            n_phase = j
        x = n2 - neutral
        if mode == MODE_EXCURSION:
            yv = sign * x
            if yv < exit_deg or t - params[Q_T_ENTER] > params[Q_MAX_EXCURSION]:
                break
        else:
            flx = cols[k, 2]
            posture = not math.isfinite(flx) or (flx >= flex_lo and flx <= flex_hi)
            ax = abs(x)
            if mode == MODE_RESTING:
                if ax >= enter:
                    break
            else:
                if ax > enter and posture:
                    break
                if mode == MODE_CLOSING:
                    if ax < onset or t - params[Q_T_EXIT] >= params[Q_SETTLE]:
                        break
                elif t - params[Q_T_BACK] > params[Q_MAX_MID_PAUSE]:
                    break
        # Not a decision row: apply it.
        y1, y2, phase, s1, s2, p1, p2 = n1, n2, n_phase, n_s1, n_s2, n_p1, n_p2
        key_same = True
        if mode == MODE_EXCURSION:
            peak = max(peak, sign * x)
        else:
            if abs(x) < onset:
                t_quiet = t
                since_gap = 0.0
            if mode == MODE_RESTING:
                neutral = keep_n * neutral + g_n * n2
        k += 1
    state[S_EMA1], state[S_EMA2], state[S_PHASE] = y1, y2, phase
    state[S_S1], state[S_S2], state[S_P1], state[S_P2] = s1, s2, p1, p2
    state[S_KEY] = 1.0 if key_same else -1.0
    state[S_NEUTRAL], state[S_T_QUIET], state[S_SINCE_GAP], state[S_PEAK] = neutral, t_quiet, since_gap, peak
    return k
