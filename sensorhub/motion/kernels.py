"""Compiled per-sample kernels of the batch motion stage (:func:`sensorhub.motion.pipeline.analyze_imu`).

The batch pipeline used to make about thirty full-length NumPy passes over (n, 4) quaternion and
(n, 3) vector arrays (heading turns, Hamilton products, axis rotations, Cardan arguments, interval
searches and interpolation), each a few milliseconds on a 30-minute session. The kernels here fuse
such passes into single loops compiled with numba (``cache=True``: compiled once per install, the
machine code lands in ``__pycache__``).

What they compute, and how close to the NumPy code they replace (tests/test_motion_kernels.py):

* Products, sums, square roots and the cosine/sine of heading turns use the same operations in
  the same order as :mod:`sensorhub.motion.quat`, :mod:`sensorhub.motion.align` and
  :mod:`sensorhub.motion.angles` (numba without fastmath neither reorders nor contracts them, and
  its ``cos``/``sin`` are the C library's, as NumPy's are): the same bits, except where noted.
* ``arctan2`` and ``arcsin`` are *not* computed here: NumPy's SIMD versions are about ten times
  faster than the scalar C library calls a kernel would make (and differ from them in the last
  bit). Kernels return their arguments (e.g. :func:`cardan_args`) and the caller applies NumPy.
* Sums over many samples (means, least-squares sums) add left to right, where NumPy sums pairwise:
  equal to about 1e-15 relative.

Rules for this module: batch only (the live :class:`~sensorhub.motion.pipeline.OnlinePipeline`
keeps its NumPy code, whose results are compared bit for bit across changes); no I/O; every kernel
takes and returns contiguous float64 / int64 / bool arrays; callers check shapes and pass
empty (0, k) arrays for absent optional inputs. :func:`warm_up` compiles (or loads) every kernel.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

_njit = numba.njit(cache=True, nogil=True)


@_njit
def _clip(x: float, lo: float, hi: float) -> float:
    """``np.minimum(np.maximum(x, lo), hi)`` for one value (NaN stays NaN)."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


# --------------------------------------------------------------------------------------------
# Time alignment (align.grid_intervals, align.gap_mask, align.resample_samples, align.resample_quat)


def grid_intervals(t_s: FloatArray, t_grid_s: FloatArray) -> IntArray:
    """``searchsorted(t_s, t_grid_s, side="right") - 1`` for a non-decreasing ``t_grid_s`` (one merge walk)."""
    out = np.empty(len(t_grid_s), dtype=np.int64)
    _grid_intervals_into(t_s, t_grid_s, out)
    return out


@_njit
def _grid_intervals_into(t_s: FloatArray, t_grid_s: FloatArray, out: IntArray) -> None:
    n = len(t_s)
    k = 0
    for g in range(len(t_grid_s)):
        tg = t_grid_s[g]
        while k < n and t_s[k] <= tg:
            k += 1
        out[g] = k - 1


def resample_on_grid(t_s: FloatArray, parts: tuple[FloatArray, ...], gap_before: BoolArray, t_grid_s: FloatArray,
                     j: IntArray, gap_threshold_s: float, max_bridge_s: float) -> tuple[FloatArray, BoolArray, BoolArray]:
    """Raw samples on the grid and the grid's gap masks, in one pass.

    ``parts``: (n, 3) arrays (accelerometer, gyroscope and optionally magnetometer) interpolated
    linearly into the columns of one (m, 3 * len(parts)) array, as ``align.resample_samples(...,
    shared_weights=True)`` (``lo + w * (hi - lo)`` with ``w`` clipped to [0, 1]). ``gap_before``:
    the samples' flags or an empty array. ``j``: :func:`grid_intervals`. ``gap_threshold_s``: gap
    factor times the median period. Returns (values, in_gap, in_long_gap) as ``align.gap_mask``.
    Needs ``len(t_s) >= 2``.
    """
    m = len(t_grid_s)
    # Outputs allocated by NumPy (which asks for transparent huge pages on large arrays: several
    # times fewer page faults than the kernel's own allocation of the same fresh memory).
    out = np.empty((m, 3 * len(parts)))
    in_gap = np.empty(m, dtype=np.bool_)
    in_long = np.empty(m, dtype=np.bool_)
    _resample_on_grid_into(t_s, parts, gap_before, t_grid_s, j, gap_threshold_s, max_bridge_s, out, in_gap, in_long)
    return out, in_gap, in_long


@_njit
def _resample_on_grid_into(t_s: FloatArray, parts: tuple[FloatArray, ...], gap_before: BoolArray, t_grid_s: FloatArray,
                           j: IntArray, gap_threshold_s: float, max_bridge_s: float, out: FloatArray,
                           in_gap: BoolArray, in_long: BoolArray) -> None:
    n = len(t_s)
    m = len(t_grid_s)
    k = len(parts)
    has_flags = len(gap_before) == n
    for g in range(m):
        jg = j[g]
        tg = t_grid_s[g]
        in_gap[g] = False
        in_long[g] = False
        if 0 <= jg < n - 1:
            d = t_s[jg + 1] - t_s[jg]
            gap = d > gap_threshold_s or (has_flags and gap_before[jg + 1])
            if gap and tg > t_s[jg]:
                in_gap[g] = True
                in_long[g] = d > max_bridge_s
        i = min(max(jg, 0), n - 2)
        w = _clip((tg - t_s[i]) / (t_s[i + 1] - t_s[i]), 0.0, 1.0)
        for p in range(k):
            v = parts[p]
            for c in range(3):
                lo = v[i, c]
                out[g, 3 * p + c] = (v[i + 1, c] - lo) * w + lo


def nlerp_segment(t_s: FloatArray, q: FloatArray, j: IntArray, t_grid_s: FloatArray,
                  q_segment_sensor: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Orientations on the grid (``align.resample_quat(..., nlerp=True)``) and the segment's orientation.

    Returns ``q_earth_sensor`` on the grid and ``q_earth_segment = q_earth_sensor ⊗ q_segment_sensor*``
    (``angles.segment_orientation``). ``j``: :func:`grid_intervals` of ``t_s`` and the grid.
    """
    out = np.empty((len(t_grid_s), 4))
    seg = np.empty((len(t_grid_s), 4))
    _nlerp_segment_into(t_s, q, j, t_grid_s, q_segment_sensor, out, seg)
    return out, seg


@_njit
def _nlerp_segment_into(t_s: FloatArray, q: FloatArray, j: IntArray, t_grid_s: FloatArray, q_segment_sensor: FloatArray,
                        out: FloatArray, seg: FloatArray) -> None:
    n = len(t_s)
    m = len(t_grid_s)
    w2, x2, y2, z2 = q_segment_sensor[0], -q_segment_sensor[1], -q_segment_sensor[2], -q_segment_sensor[3]
    for g in range(m):
        i = min(max(j[g], 0), n - 2)
        w = _clip((t_grid_s[g] - t_s[i]) / (t_s[i + 1] - t_s[i]), 0.0, 1.0)
        a0, a1, a2, a3 = q[i, 0], q[i, 1], q[i, 2], q[i, 3]
        b0, b1, b2, b3 = q[i + 1, 0], q[i + 1, 1], q[i + 1, 2], q[i + 1, 3]
        if a0 * b0 + a1 * b1 + a2 * b2 + a3 * b3 < 0.0:
            b0, b1, b2, b3 = -b0, -b1, -b2, -b3
        b0 = (b0 - a0) * w + a0
        b1 = (b1 - a1) * w + a1
        b2 = (b2 - a2) * w + a2
        b3 = (b3 - a3) * w + a3
        norm = math.sqrt(b0 * b0 + b1 * b1 + b2 * b2 + b3 * b3)
        w1, x1, y1, z1 = b0 / norm, b1 / norm, b2 / norm, b3 / norm
        out[g, 0], out[g, 1], out[g, 2], out[g, 3] = w1, x1, y1, z1
        seg[g, 0] = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
        seg[g, 1] = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
        seg[g, 2] = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
        seg[g, 3] = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2


def segment_orientation(q_earth_sensor: FloatArray, q_segment_sensor: FloatArray) -> FloatArray:
    """``angles.segment_orientation`` (``q ⊗ mount*``) in one loop, the same bits."""
    seg = np.empty((len(q_earth_sensor), 4))
    _segment_orientation_into(q_earth_sensor, q_segment_sensor, seg)
    return seg


@_njit
def _segment_orientation_into(q_earth_sensor: FloatArray, q_segment_sensor: FloatArray, seg: FloatArray) -> None:
    m = len(q_earth_sensor)
    w2, x2, y2, z2 = q_segment_sensor[0], -q_segment_sensor[1], -q_segment_sensor[2], -q_segment_sensor[3]
    for g in range(m):
        w1, x1, y1, z1 = q_earth_sensor[g, 0], q_earth_sensor[g, 1], q_earth_sensor[g, 2], q_earth_sensor[g, 3]
        seg[g, 0] = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
        seg[g, 1] = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
        seg[g, 2] = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
        seg[g, 3] = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2


# --------------------------------------------------------------------------------------------
# Heading (quat.turn_heading_each, quat.rotate_axis, np.unwrap, line fits, rest moments)


@_njit
def turn_pair_inplace(delta_rad: FloatArray, q1: FloatArray, q2: FloatArray) -> None:
    """:func:`turn_heading_pair` written over ``q1`` and ``q2`` (no new (n, 4) arrays), same bits."""
    for i in range(len(delta_rad)):
        half = 0.5 * delta_rad[i]
        c = math.cos(half)
        s = math.sin(half)
        for q in (q1, q2):
            w2, x2, y2, z2 = q[i, 0], q[i, 1], q[i, 2], q[i, 3]
            q[i, 0] = c * w2 - s * z2
            q[i, 1] = c * x2 - s * y2
            q[i, 2] = c * y2 + s * x2
            q[i, 3] = c * z2 + s * w2


@_njit
def turn_linear_pair_inplace(rate_rad_s: float, t_s: FloatArray, t_ref_s: float, q1: FloatArray, q2: FloatArray) -> None:
    """``q1``, ``q2`` turned in place by ``-rate_rad_s * (t_s - t_ref_s)`` (:func:`linear_heading`), same bits."""
    r = -rate_rad_s
    for i in range(len(t_s)):
        half = 0.5 * (r * (t_s[i] - t_ref_s))
        c = math.cos(half)
        s = math.sin(half)
        for q in (q1, q2):
            w2, x2, y2, z2 = q[i, 0], q[i, 1], q[i, 2], q[i, 3]
            q[i, 0] = c * w2 - s * z2
            q[i, 1] = c * x2 - s * y2
            q[i, 2] = c * y2 + s * x2
            q[i, 3] = c * z2 + s * w2


def axes_xy(q: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The segment's X and Y axes in the earth frame as component rows (3, n) each.

    Row ``c`` of the first is column ``c`` of ``quat.rotate_axis(q, 0)``, of the second of
    ``quat.rotate_axis(q, 1)`` (same bits). Component rows keep NumPy's ``arctan2`` on contiguous
    memory, where its SIMD loop runs (twice as fast as on a strided column).
    """
    n = len(q)
    vx = np.empty((3, n))
    vy = np.empty((3, n))
    axes_xy_into(q, vx, vy)
    return vx, vy


@_njit
def axes_xy_into(q: FloatArray, vx: FloatArray, vy: FloatArray) -> None:
    """:func:`axes_xy` written into given (3, n) arrays (reused buffers: no fresh pages to fault in)."""
    for r in range(len(q)):
        w, u0, u1, u2 = q[r, 0], q[r, 1], q[r, 2], q[r, 3]
        # axis 0: (i, j, k) = (0, 1, 2)
        vx[0, r] = 1.0 + 2.0 * (u1 * -u1 - u2 * u2)
        vx[1, r] = 2.0 * w * u2 + 2.0 * (u0 * u1)
        vx[2, r] = 2.0 * w * -u1 + 2.0 * (u0 * u2)
        # axis 1: (i, j, k) = (1, 2, 0)
        vy[1, r] = 1.0 + 2.0 * (u2 * -u2 - u0 * u0)
        vy[2, r] = 2.0 * w * u0 + 2.0 * (u1 * u2)
        vy[0, r] = 2.0 * w * -u2 + 2.0 * (u1 * u0)


def unwrap(p: FloatArray) -> FloatArray:
    """``np.unwrap(p)`` (period 2π, discontinuity π) of a 1-D series, the same arithmetic left to right."""
    out = np.empty(len(p))
    if len(p):
        _unwrap_into(p, out)
    return out


@_njit
def _unwrap_into(p: FloatArray, out: FloatArray) -> None:
    n = len(p)
    period = 2.0 * math.pi
    high = period / 2.0
    low = -high
    correction = 0.0
    out[0] = p[0]
    for i in range(1, n):
        dd = p[i] - p[i - 1]
        if not abs(dd) < high:  # NaN too: np.unwrap carries it into every later value
            # Python's float % (as np.mod: the result takes the divisor's sign)
            ddmod = (dd - low) % period + low
            if ddmod == low and dd > 0.0:
                ddmod = high
            correction += ddmod - dd
        out[i] = p[i] + correction


@_njit
def masked_abs_mean(x: FloatArray, mask: BoolArray) -> float:
    """``np.nanmean(np.abs(x[mask]))`` (all rows when no row is masked), added left to right."""
    use_all = True
    for i in range(len(mask)):
        if mask[i]:
            use_all = False
            break
    s = 0.0
    n = 0
    for i in range(len(x)):
        if use_all or mask[i]:
            a = abs(x[i])
            if not math.isnan(a):
                s += a
                n += 1
    return s / n if n else math.nan


def abs_below(x: FloatArray, limit: float) -> BoolArray:
    """``np.abs(x) < limit``."""
    out = np.empty(len(x), dtype=np.bool_)
    _abs_below_into(x, limit, out)
    return out


@_njit
def _abs_below_into(x: FloatArray, limit: float, out: BoolArray) -> None:
    for i in range(len(x)):
        out[i] = abs(x[i]) < limit


@_njit
def line_fit(t_s: FloatArray, y: FloatArray, mask: BoolArray) -> tuple[int, float, float, float, float]:
    """Least-squares line through ``(t_s, y)`` over ``mask``: (count, t span, slope, intercept, residual std).

    The residual standard deviation is ``np.std`` of the residuals (ddof 0). Centred sums: equal to
    ``np.polyfit(t, y, 1)`` to about 1e-12 relative. With fewer than 2 rows the slope is 0.
    """
    cnt = 0
    st = 0.0
    sy = 0.0
    tmin = math.inf
    tmax = -math.inf
    for i in range(len(t_s)):
        if mask[i]:
            cnt += 1
            st += t_s[i]
            sy += y[i]
            tmin = min(tmin, t_s[i])
            tmax = max(tmax, t_s[i])
    if cnt < 2:
        return cnt, 0.0, 0.0, 0.0, math.nan
    tm = st / cnt
    ym = sy / cnt
    stt = 0.0
    sty = 0.0
    for i in range(len(t_s)):
        if mask[i]:
            dt = t_s[i] - tm
            stt += dt * dt
            sty += dt * (y[i] - ym)
    slope = sty / stt if stt > 0.0 else 0.0
    intercept = ym - slope * tm
    sr = 0.0
    for i in range(len(t_s)):
        if mask[i]:
            sr += y[i] - (slope * t_s[i] + intercept)
    rm = sr / cnt
    srr = 0.0
    for i in range(len(t_s)):
        if mask[i]:
            e = y[i] - (slope * t_s[i] + intercept) - rm
            srr += e * e
    return cnt, tmax - tmin, slope, intercept, math.sqrt(srr / cnt)


@_njit
def wrap_about(x: FloatArray, group: IntArray, g: int, centre: float) -> None:
    """In place, where ``group == g``: ``x = wrap(x - centre) + centre``, wrapping to [-π, π) by whole turns.

    (``heading.wrap_rad`` goes through a complex exponential and wraps to (-π, π]; the two agree
    to about 1e-15 rad, apart from which end a value of exactly ±π lands on.)
    """
    period = 2.0 * math.pi
    for i in range(len(x)):
        if group[i] == g:
            d = x[i] - centre
            if not math.isfinite(d):
                x[i] = math.nan
                continue
            if d >= math.pi or d < -math.pi:
                d -= period * math.floor((d + math.pi) / period)
                while d >= math.pi:  # rounding at the edges
                    d -= period
                while d < -math.pi:
                    d += period
            x[i] = d + centre


@_njit
def circular_mean(x: FloatArray, group: IntArray, g: int, mask: BoolArray) -> float:
    """``np.angle(np.mean(np.exp(1j * x[m])))`` for ``m = (group == g) & mask`` as ``atan2(Σ sin, Σ cos)``.

    NaN when no row qualifies. Sums left to right (NumPy's mean sums pairwise): ~1e-15 rad apart.
    """
    sc = 0.0
    ss = 0.0
    n = 0
    for i in range(len(x)):
        if group[i] == g and mask[i]:
            sc += math.cos(x[i])
            ss += math.sin(x[i])
            n += 1
    if n == 0:
        return math.nan
    return math.atan2(ss / n, sc / n)


def relative_heading_groups(vy_z: FloatArray, px_z: FloatArray, h_fx: FloatArray, h_fy: FloatArray,
                            h_px: FloatArray) -> tuple[FloatArray, IntArray, BoolArray]:
    """The thigh's heading relative to the pelvis's and its posture group (pipeline._rest_drift_curve).

    ``vy_z``: the vertical component of the femur's Y (long) axis, ``px_z`` of the pelvis's X axis;
    ``h_fx``, ``h_fy``, ``h_px``: headings (``arctan2(y, x)``) of the femur's X and Y and the
    pelvis's X axes. Upright femur (|Y_z| > 0.7): the X axis's heading; otherwise the long axis's.
    Group 0 upright, 1 flat (|Y_z| < 0.4), -1 in between or when the pelvis's X axis is steep
    (|X_z| > 0.5). Returns (relative heading, group, upright).
    """
    n = len(vy_z)
    rel = np.empty(n)
    group = np.empty(n, dtype=np.int64)
    upright = np.empty(n, dtype=np.bool_)
    _relative_heading_groups_into(vy_z, px_z, h_fx, h_fy, h_px, rel, group, upright)
    return rel, group, upright


@_njit
def _relative_heading_groups_into(vy_z: FloatArray, px_z: FloatArray, h_fx: FloatArray, h_fy: FloatArray, h_px: FloatArray,
                                  rel: FloatArray, group: IntArray, upright: BoolArray) -> None:
    for i in range(len(vy_z)):
        z = abs(vy_z[i])
        up = z > 0.7
        upright[i] = up
        g = 0 if up else (1 if z < 0.4 else -1)
        if abs(px_z[i]) > 0.5:
            g = -1
        group[i] = g
        rel[i] = (h_fx[i] if up else h_fy[i]) - h_px[i]


@_njit
def rest_runs(t_s: FloatArray, heading_rad: FloatArray, group: IntArray, rate_deg_s: FloatArray, mask: BoolArray,
              max_rate_deg_s: float, dt_s: float, min_s: float) -> tuple[FloatArray, FloatArray, IntArray]:
    """The rest moments of ``heading.rest_points``: (mean time, mean heading, group) of each run.

    A run: consecutive rows with ``rate_deg_s < max_rate_deg_s``, ``mask`` and a finite heading,
    lasting ``(b - a) * dt_s >= min_s``, all in one group >= 0. Means add left to right (NumPy's
    ``add.reduce`` pairwise: about 1e-16 relative apart).
    """
    n = len(t_s)
    tm = np.empty(n)
    hm = np.empty(n)
    gm = np.empty(n, dtype=np.int64)
    k = 0
    i = 0
    while i < n:
        if not (rate_deg_s[i] < max_rate_deg_s and mask[i] and math.isfinite(heading_rad[i])):
            i += 1
            continue
        a = i
        while i < n and rate_deg_s[i] < max_rate_deg_s and mask[i] and math.isfinite(heading_rad[i]):
            i += 1
        b = i
        if (b - a) * dt_s < min_s:
            continue
        g0 = group[a]
        if g0 < 0:
            continue
        same = True
        st = 0.0
        sh = 0.0
        for r in range(a, b):
            if group[r] != g0:
                same = False
                break
            st += t_s[r]
            sh += heading_rad[r]
        if not same:
            continue
        tm[k] = st / (b - a)
        hm[k] = sh / (b - a)
        gm[k] = g0
        k += 1
    return tm[:k], hm[:k], gm[:k]


# --------------------------------------------------------------------------------------------
# Joint angles (angles.hip_angles_deg, angles.pelvis_angles_deg, angles.cardan_zxy_deg)


@_njit
def _cardan_row(w: float, x: float, y: float, z: float, out: FloatArray, r: int) -> None:
    # angles.cardan_zxy_deg's arguments: asin(clip(s (yz + wx))), atan2(s (wz - xy), 1 - s (xx + zz)),
    # atan2(s (wy - xz), 1 - s (xx + yy)), s = 2 / |q|².
    s = 2.0 / (w * w + x * x + y * y + z * z)
    xx = x * x
    out[0, r] = _clip(s * (y * z + w * x), -1.0, 1.0)
    out[1, r] = s * (w * z - x * y)
    out[2, r] = 1.0 - s * (xx + z * z)
    out[3, r] = s * (w * y - x * z)
    out[4, r] = 1.0 - s * (xx + y * y)


def cardan_args(q_earth_a: FloatArray, q_earth_b: FloatArray) -> FloatArray:
    """Arguments (5, n) of the Z-X-Y Cardan angles of ``q_a_b = q_earth_a* ⊗ q_earth_b``.

    Row 0: sin β clipped to [-1, 1]; rows 1/2: numerator and denominator of α; rows 3/4: of γ
    (see :func:`cardan_deg`). ``q_earth_a``: (n, 4), or (1, 4) for one orientation for all rows.
    """
    out = np.empty((5, len(q_earth_b)))
    cardan_args_into(q_earth_a, q_earth_b, out)
    return out


@_njit
def cardan_args_into(q_earth_a: FloatArray, q_earth_b: FloatArray, out: FloatArray) -> None:
    """:func:`cardan_args` written into a given (5, n) array."""
    n = len(q_earth_b)
    one = len(q_earth_a) == 1
    for r in range(n):
        ra = 0 if one else r
        w1, x1, y1, z1 = q_earth_a[ra, 0], -q_earth_a[ra, 1], -q_earth_a[ra, 2], -q_earth_a[ra, 3]
        w2, x2, y2, z2 = q_earth_b[r, 0], q_earth_b[r, 1], q_earth_b[r, 2], q_earth_b[r, 3]
        w = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
        x = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
        y = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
        z = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2
        _cardan_row(w, x, y, z, out, r)


def hip_cardan_args(q_earth_pelvis: FloatArray, q_earth_thigh: FloatArray, q_segment_thigh: FloatArray,
                    turn_rad: FloatArray) -> FloatArray:
    """:func:`cardan_args` of the femur relative to the pelvis, the femur built on the fly.

    ``q_earth_femur = turn(turn_rad) ⊗ (q_earth_thigh ⊗ q_segment_thigh*)``: the thigh sensor's
    orientation, its mount and the relative heading in one loop instead of three full-length passes
    (``angles.segment_orientation``, ``quat.turn_heading``, the product in ``angles.hip_angles_deg``),
    with the same operations, so the same bits. ``turn_rad``: (n,) angles.
    """
    out = np.empty((5, len(q_earth_thigh)))
    hip_cardan_args_into(q_earth_pelvis, q_earth_thigh, q_segment_thigh, turn_rad, out)
    return out


@_njit
def hip_cardan_args_into(q_earth_pelvis: FloatArray, q_earth_thigh: FloatArray, q_segment_thigh: FloatArray,
                         turn_rad: FloatArray, out: FloatArray) -> None:
    """:func:`hip_cardan_args` written into a given (5, n) array."""
    n = len(q_earth_thigh)
    mw, mx, my, mz = q_segment_thigh[0], -q_segment_thigh[1], -q_segment_thigh[2], -q_segment_thigh[3]
    for r in range(n):
        a, b, c, d = q_earth_thigh[r, 0], q_earth_thigh[r, 1], q_earth_thigh[r, 2], q_earth_thigh[r, 3]
        fw = a * mw - b * mx - c * my - d * mz
        fx = a * mx + b * mw + c * mz - d * my
        fy = a * my - b * mz + c * mw + d * mx
        fz = a * mz + b * my - c * mx + d * mw
        half = 0.5 * turn_rad[r]
        co = math.cos(half)
        si = math.sin(half)
        w2 = co * fw - si * fz
        x2 = co * fx - si * fy
        y2 = co * fy + si * fx
        z2 = co * fz + si * fw
        w1, x1, y1, z1 = q_earth_pelvis[r, 0], -q_earth_pelvis[r, 1], -q_earth_pelvis[r, 2], -q_earth_pelvis[r, 3]
        w = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
        x = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
        y = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
        z = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2
        _cardan_row(w, x, y, z, out, r)


def cardan_deg(args: FloatArray, sign: float = 1.0, out: FloatArray | None = None) -> FloatArray:
    """Z-X-Y Cardan angles (n, 3) in degrees from :func:`cardan_args`' rows; columns 1 and 2 times ``sign``.

    NumPy's ``arcsin``/``arctan2`` (SIMD; what ``angles.cardan_zxy_deg`` uses on the same arguments).
    The result is the transpose of a C-contiguous (3, n) array: each angle's column is contiguous
    (NumPy's SIMD loops write it directly, and the columns handed on as series need no copy).
    ``out``: a (3, n) array to write into (a buffer no longer needed), else a new one.
    """
    if out is None:
        out = np.empty((3, args.shape[1]))
    with np.errstate(invalid="ignore"):
        np.arctan2(args[1], args[2], out=out[0])
        np.arcsin(args[0], out=out[1])
        np.arctan2(args[3], args[4], out=out[2])
    np.degrees(out, out=out)
    if sign != 1.0:
        out[1:] *= sign
    return out.T


# --------------------------------------------------------------------------------------------
# Rates


def rate_norm_deg_s(gyr_rad_s: FloatArray) -> FloatArray:
    """``np.degrees(quat.norm3(gyr_rad_s))``: angular-rate norm (deg/s) of (n, 3) rows, same bits."""
    out = np.empty(len(gyr_rad_s))
    _rate_norm_deg_s_into(gyr_rad_s, out)
    return out


@_njit
def _rate_norm_deg_s_into(gyr_rad_s: FloatArray, out: FloatArray) -> None:
    n = len(gyr_rad_s)
    k = 180.0 / math.pi
    for i in range(n):
        x, y, z = gyr_rad_s[i, 0], gyr_rad_s[i, 1], gyr_rad_s[i, 2]
        out[i] = math.sqrt(x * x + y * y + z * z) * k


# --------------------------------------------------------------------------------------------
# Large-array paths of shared helpers (quat.rotate, quat.rotate_axis, quat.norm3, heading.wrap_rad).
# Those functions call these only for long series (batch); the live path's short blocks keep NumPy.
# Same operations in the same order: the same bits (tests/test_motion_kernels.py).

#: Rows from which the shared helpers use the kernels (the live pipeline's blocks are far shorter).
MIN_ROWS = 4096


def norm3_rows(v: FloatArray) -> FloatArray:
    """``quat.norm3``: ``sqrt(x*x + y*y + z*z)`` of (n, 3) rows."""
    out = np.empty(len(v))
    _norm3_rows_into(v, out)
    return out


@_njit
def _norm3_rows_into(v: FloatArray, out: FloatArray) -> None:
    for i in range(len(v)):
        x, y, z = v[i, 0], v[i, 1], v[i, 2]
        out[i] = math.sqrt(x * x + y * y + z * z)


def rotate_rows(q: FloatArray, v: FloatArray) -> FloatArray:
    """``quat.rotate(q, v)`` for (n, 4) and (n, 3): ``v + (2 w) (u × v) + 2 u × (u × v)`` row by row."""
    out = np.empty((len(q), 3))
    _rotate_rows_into(q, v, out)
    return out


@_njit
def _rotate_rows_into(q: FloatArray, v: FloatArray, out: FloatArray) -> None:
    for i in range(len(q)):
        w2 = 2.0 * q[i, 0]
        u0, u1, u2 = q[i, 1], q[i, 2], q[i, 3]
        v0, v1, v2 = v[i, 0], v[i, 1], v[i, 2]
        c0 = u1 * v2 - u2 * v1
        c1 = u2 * v0 - u0 * v2
        c2 = u0 * v1 - u1 * v0
        d0 = u1 * c2 - u2 * c1
        d1 = u2 * c0 - u0 * c2
        d2 = u0 * c1 - u1 * c0
        out[i, 0] = v0 + w2 * c0 + 2.0 * d0
        out[i, 1] = v1 + w2 * c1 + 2.0 * d1
        out[i, 2] = v2 + w2 * c2 + 2.0 * d2


def rotate_axis_rows(q: FloatArray, axis: int) -> FloatArray:
    """``quat.rotate_axis(q, axis)`` for (n, 4): column ``axis`` of each rotation matrix, (n, 3)."""
    out = np.empty((len(q), 3))
    _rotate_axis_rows_into(q, axis, out)
    return out


@_njit
def _rotate_axis_rows_into(q: FloatArray, axis: int, out: FloatArray) -> None:
    n = len(q)
    i, j, k = axis, (axis + 1) % 3, (axis + 2) % 3
    for r in range(n):
        w = q[r, 0]
        ui, uj, uk = q[r, 1 + i], q[r, 1 + j], q[r, 1 + k]
        out[r, i] = 1.0 + 2.0 * (uj * -uj - uk * uk)
        out[r, j] = 2.0 * w * uk + 2.0 * (ui * uj)
        out[r, k] = 2.0 * w * -uj + 2.0 * (ui * uk)


def conjugate_rows(q: FloatArray) -> tuple[FloatArray, bool]:
    """``quat.conjugate`` (``q * [1, -1, -1, -1]``) of finite (n, 4) rows; False as the second result
    when a value is not finite (the sign of a NaN after a multiplication is the caller's NumPy's affair)."""
    out = np.empty((len(q), 4))
    return out, _conjugate_rows_into(q, out)


@_njit
def _conjugate_rows_into(q: FloatArray, out: FloatArray) -> bool:
    for i in range(len(q)):
        w, x, y, z = q[i, 0], q[i, 1], q[i, 2], q[i, 3]
        if not (math.isfinite(w) and math.isfinite(x) and math.isfinite(y) and math.isfinite(z)):
            return False
        out[i, 0] = w * 1.0
        out[i, 1] = x * -1.0
        out[i, 2] = y * -1.0
        out[i, 3] = z * -1.0
    return True


def exp_i_rows(a: FloatArray) -> tuple[FloatArray, bool]:
    """``np.exp(1j * a)`` as (n, 2) rows (real, imaginary) for finite ``a``; False as the second result otherwise.

    ``1j * a`` has the imaginary part ``0·0 + 1·a`` (so -0 becomes +0) and the real part ±0, whose
    exponential is 1: the cosine and sine of that imaginary part, as the C library's ``cexp`` gives
    them. The rows have the memory layout of a complex array, so ``arctan2`` of their columns runs
    the same loop as on ``z.imag`` and ``z.real``. Non-finite input: the caller keeps NumPy.
    """
    out = np.empty((len(a), 2))
    return out, _exp_i_rows_into(a, out)


@_njit
def _exp_i_rows_into(a: FloatArray, out: FloatArray) -> bool:
    for i in range(len(a)):
        x = a[i]
        if not math.isfinite(x):
            return False
        y = 0.0 + x
        out[i, 0] = math.cos(y)
        out[i, 1] = math.sin(y)
    return True


def field_norm_sine(m_earth: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``heading.mag_norm_dip``'s arithmetic before the arcsine: the field's norm and the sine of its dip.

    ``norm = sqrt(x*x + y*y + z*z)``, ``sine = clip(z / maximum(norm, 1e-12), -1, 1)`` of (n, 3)
    rows (NaN stays NaN, as with ``np.maximum`` and ``np.clip``): the same bits.
    """
    norm = np.empty(len(m_earth))
    sine = np.empty(len(m_earth))
    _field_norm_sine_into(m_earth, norm, sine)
    return norm, sine


@_njit
def _field_norm_sine_into(m_earth: FloatArray, norm: FloatArray, sine: FloatArray) -> None:
    for i in range(len(m_earth)):
        x, y, z = m_earth[i, 0], m_earth[i, 1], m_earth[i, 2]
        nrm = math.sqrt(x * x + y * y + z * z)
        norm[i] = nrm
        d = nrm if (nrm >= 1e-12 or math.isnan(nrm)) else 1e-12
        sine[i] = _clip(z / d, -1.0, 1.0)


def field_deviation(norm_uT: FloatArray, dip_deg: FloatArray, ref_norm_uT: float, ref_dip_deg: float,
                    norm_tol_uT: float, dip_tol_deg: float) -> tuple[BoolArray, FloatArray, FloatArray]:
    """``heading.disturbed_mask``'s per-sample part: (``dn > norm_tol | dd > dip_tol``, ``dn``, ``dd``) with
    ``dn = |norm - ref_norm|``, ``dd = |dip - ref_dip|``, in one pass (same bits)."""
    n = len(norm_uT)
    bad = np.empty(n, dtype=np.bool_)
    dn = np.empty(n)
    dd = np.empty(n)
    _field_deviation_into(norm_uT, dip_deg, ref_norm_uT, ref_dip_deg, norm_tol_uT, dip_tol_deg, bad, dn, dd)
    return bad, dn, dd


@_njit
def _field_deviation_into(norm_uT: FloatArray, dip_deg: FloatArray, ref_norm_uT: float, ref_dip_deg: float,
                          norm_tol_uT: float, dip_tol_deg: float, bad: BoolArray, dn: FloatArray, dd: FloatArray) -> None:
    for i in range(len(norm_uT)):
        a = abs(norm_uT[i] - ref_norm_uT)
        b = abs(dip_deg[i] - ref_dip_deg)
        dn[i] = a
        dd[i] = b
        bad[i] = a > norm_tol_uT or b > dip_tol_deg


@_njit
def interval_jitter(t_s: FloatArray, gap_before: BoolArray, rate_hz: float) -> tuple[int, float, bool]:
    """``fusion._describe_time_base``'s figures in one pass: (intervals flagged as gaps, the largest
    ``|dt * rate_hz - 1|`` over the others (NaN if any is NaN), whether any interval is unflagged).
    ``gap_before``: the samples' flags or an empty array."""
    n = len(t_s)
    has_flags = len(gap_before) == n
    gaps = 0
    worst = -math.inf
    seen_nan = False
    any_ok = False
    for i in range(1, n):
        if has_flags and gap_before[i]:
            gaps += 1
            continue
        any_ok = True
        d = abs((t_s[i] - t_s[i - 1]) * rate_hz - 1.0)
        if math.isnan(d):
            seen_nan = True
        elif d > worst:
            worst = d
    return gaps, (math.nan if seen_nan else worst), any_ok


def warm_up() -> None:
    """Compile (first run after install) or load (from the cache) every kernel on tiny inputs.

    Called at import of the batch pipeline so that no kernel compiles inside a timed analysis.
    """
    t = np.array([0.0, 0.01, 0.02])
    v = np.zeros((3, 3))
    q = np.zeros((3, 4))
    q[:, 0] = 1.0
    flags = np.zeros(3, dtype=np.bool_)
    j = grid_intervals(t, t)
    resample_on_grid(t, (v, v), flags, t, j, 0.015, 0.4)
    resample_on_grid(t, (v, v, v), flags, t, j, 0.015, 0.4)
    resample_on_grid(t, (v, v), np.zeros(0, dtype=np.bool_), t, j, 0.015, 0.4)
    nlerp_segment(t, q, j, t, q[0])
    segment_orientation(q, q[0])
    turn_pair_inplace(t, q.copy(), q.copy())
    turn_linear_pair_inplace(0.1, t, 0.0, q.copy(), q.copy())
    vx, vy = axes_xy(q)
    axes_xy_into(q, vx, vy)
    unwrap(t)
    masked_abs_mean(vx[2], flags)
    abs_below(t, 0.5)
    line_fit(t, t, ~flags)
    group = np.zeros(3, dtype=np.int64)
    wrap_about(t.copy(), group, 0, 0.0)
    circular_mean(t, group, 0, ~flags)
    rel, group, _ = relative_heading_groups(t, t, t, t, t)
    rest_runs(t, rel, group, t, ~flags, 10.0, 0.01, 0.1)
    cardan_deg(cardan_args(q, q))
    cardan_args(q[:1], q)
    hip_cardan_args(q, q, q[0], t)
    cardan_args_into(q[:1], q, np.empty((5, 3)))
    hip_cardan_args_into(q, q, q[0], t, np.empty((5, 3)))
    rate_norm_deg_s(v)
    rate_norm_deg_s(np.zeros((3, 9))[:, 3:6])
    norm3_rows(v)
    rotate_rows(q, v)
    rotate_axis_rows(q, 2)
    exp_i_rows(t)
    conjugate_rows(q)
    norm, sine = field_norm_sine(v)
    field_deviation(norm, sine, 1.0, 1.0, 0.1, 0.1)
    interval_jitter(t, flags, 100.0)
    interval_jitter(t, np.zeros(0, dtype=np.bool_), 100.0)
