"""Time alignment of the pelvis and thigh sensors onto one common time grid.

The two sensors run at different rates, start at different times and lose packets independently.
Every later stage (calibration, heading, joint angles) works on one uniform grid covering the
overlap of the two recordings. This module builds that grid, resamples orientations by slerp and
vector signals linearly onto it, and flags grid points that fall inside a gap in either sensor.

Short gaps (up to :data:`DEFAULT_MAX_BRIDGE_S`) are bridged by interpolation but still flagged; longer gaps are
flagged and their samples set to NaN so that nothing downstream shows invented motion. Pure array
maths, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import Akima1DInterpolator

from sensorhub.errors import SensorhubError
from sensorhub.motion import quat
from sensorhub.samples import ImuSamples

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Gaps longer than this are not bridged by interpolation (the grid points inside become NaN). One
#: lost packet at the slowest protocol rate in use (20 six-axis samples at 60 Hz: 0.35 s between
#: the samples either side) is still bridged; two in a row are not.
DEFAULT_MAX_BRIDGE_S = 0.4


class AlignmentError(SensorhubError, ValueError):
    """The two sensors' time ranges do not overlap enough to build a common grid."""


@dataclass(frozen=True)
class CommonGrid:
    """A uniform time grid ``t_s`` over the overlap of two sensors, at ``rate_hz``."""

    t_s: FloatArray
    rate_hz: float

    @property
    def dt_s(self) -> float:
        return 1.0 / self.rate_hz

    def __len__(self) -> int:
        return len(self.t_s)


def common_grid(t_a_s: FloatArray, t_b_s: FloatArray, rate_hz: float) -> CommonGrid:
    """Uniform grid at ``rate_hz`` over ``[max(start), min(end)]`` of two time bases.

    The grid is anchored at a multiple of the sample period so that two calls on overlapping data
    (e.g. consecutive live blocks) put their points on the same lattice.
    """
    if rate_hz <= 0.0:
        raise AlignmentError(f"grid rate must be positive, got {rate_hz} Hz")
    if len(t_a_s) < 2 or len(t_b_s) < 2:
        raise AlignmentError("each sensor needs at least two samples to be aligned")
    start = max(float(t_a_s[0]), float(t_b_s[0]))
    end = min(float(t_a_s[-1]), float(t_b_s[-1]))
    if end <= start:
        raise AlignmentError(
            f"sensors do not overlap in time: [{t_a_s[0]:.3f}, {t_a_s[-1]:.3f}] s and [{t_b_s[0]:.3f}, {t_b_s[-1]:.3f}] s"
        )
    dt = 1.0 / rate_hz
    first = np.ceil(start / dt - 1e-9)
    last = np.floor(end / dt + 1e-9)
    t = np.arange(first, last + 1.0) * dt
    return CommonGrid(t_s=t.astype(np.float64), rate_hz=float(rate_hz))


def grid_intervals(t_s: FloatArray, t_grid_s: FloatArray) -> NDArray[np.intp]:
    """For each grid time, the index ``j`` of the last sample at or before it (``-1`` before the first):
    ``searchsorted(t_s, t_grid_s, side="right") - 1``, the interval search :func:`gap_mask`,
    :func:`resample_samples` and :func:`resample_quat` share (pass it as ``j``)."""
    return np.searchsorted(t_s, t_grid_s, side="right") - 1


def gap_mask(samples: ImuSamples, t_grid_s: FloatArray, *, gap_factor: float = 1.5,
             j: NDArray[np.intp] | None = None) -> tuple[BoolArray, BoolArray]:
    """Grid points that fall inside a gap of ``samples``.

    A gap is a sample interval longer than ``gap_factor`` times the median period, or one whose
    later sample has ``gap_before`` set. Returns ``(in_gap, in_long_gap)``: every grid point inside
    a gap, and those inside a gap longer than :data:`DEFAULT_MAX_BRIDGE_S`.
    """
    t = samples.t_s
    dt = np.diff(t)
    period = float(np.median(dt)) if len(dt) else np.inf
    is_gap = dt > gap_factor * period
    if samples.gap_before is not None:
        is_gap |= samples.gap_before[1:]
    if not len(dt):
        return np.zeros(len(t_grid_s), dtype=bool), np.zeros(len(t_grid_s), dtype=bool)
    # Sample interval [t[j], t[j+1]) of each grid point, found once (not one pass over the grid per
    # gap); a point is inside a gap if its interval is one and it is not on the interval's start.
    if j is None:
        j = grid_intervals(t, t_grid_s)
    valid = (j >= 0) & (j < len(dt))
    j = np.where(valid, j, 0)
    in_gap = valid & is_gap[j] & (t_grid_s > t[j])
    return in_gap, in_gap & (dt[j] > DEFAULT_MAX_BRIDGE_S)


def resample_quat(t_s: FloatArray, q: FloatArray, t_grid_s: FloatArray, *, nlerp: bool = False,
                  j: NDArray[np.intp] | None = None) -> FloatArray:
    """Slerp ``q`` (n, 4) onto ``t_grid_s``; ends outside the data hold the nearest value.

    ``nlerp=True``: normalised linear interpolation between the neighbouring samples instead, a
    third of the cost. Between samples of a 50-200 Hz sensor the orientation turns by a few degrees
    at most, where the two differ by well under 0.001° (tests/test_motion_fast_paths.py).
    """
    if not nlerp:
        return quat.slerp_resample(t_s, q, t_grid_s, outside="hold")
    i, w = _interval_weights(t_s, t_grid_s, j)
    a, b = q.take(i, axis=0), q.take(i + 1, axis=0)
    b *= np.where(np.einsum("ij,ij->i", a, b) < 0.0, -1.0, 1.0)[:, None]
    b -= a  # a + w * (b - a), in place
    b *= w[:, None]
    b += a
    b /= np.sqrt(np.einsum("ij,ij->i", b, b))[:, None]
    return b


def _interval_weights(t_s: FloatArray, t_grid_s: FloatArray,
                      j: NDArray[np.intp] | None = None) -> tuple[NDArray[np.intp], FloatArray]:
    """For each grid time: the sample interval ``[t_s[i], t_s[i+1]]`` it falls in and its fraction
    ``w`` of the way through (0 and 1 beyond the ends, which hold the end values). ``j``:
    :func:`grid_intervals` of the same times, if the caller has it."""
    i = np.minimum(np.maximum(grid_intervals(t_s, t_grid_s) if j is None else j, 0), len(t_s) - 2)
    w = np.minimum(np.maximum((t_grid_s - t_s[i]) / (t_s[i + 1] - t_s[i]), 0.0), 1.0)
    return i, w


def resample_vec(t_s: FloatArray, v: FloatArray, t_grid_s: FloatArray) -> FloatArray:
    """Linear interpolation of each column of ``v`` (n, k) onto ``t_grid_s``."""
    return np.stack([np.interp(t_grid_s, t_s, v[:, j]) for j in range(v.shape[1])], axis=1)


def resample_samples(samples: ImuSamples, t_grid_s: FloatArray, in_gap: BoolArray | None = None, *,
                     shared_weights: bool = False, j: NDArray[np.intp] | None = None) -> ImuSamples:
    """Raw samples linearly interpolated onto the grid, with ``gap_before`` marking gap points.

    Used for calibration and quality checks, which need accelerometer and gyroscope on one time
    base; orientation itself is computed at the native rate and slerped (see :func:`resample_quat`).
    ``in_gap``: :func:`gap_mask`'s first result for these samples and grid, if the caller has it;
    ``j``: :func:`grid_intervals` of the samples' times and the grid, likewise.
    ``shared_weights=True`` finds each grid point's interval once for all nine channels instead of
    one ``np.interp`` (with its own search) per channel: the same line through the same two
    samples, equal to ``np.interp`` to the last bits (batch; the live path keeps ``np.interp``).
    """
    if in_gap is None:
        in_gap, _ = gap_mask(samples, t_grid_s, j=j)
    if shared_weights and len(samples) >= 2:
        i, w = _interval_weights(samples.t_s, t_grid_s, j)
        parts = [samples.acc_m_s2, samples.gyr_rad_s] + ([] if samples.mag_uT is None else [samples.mag_uT])
        v = np.concatenate(parts, axis=1)
        # lo + w * (hi - lo), evaluated in place on gathered rows (``take`` gathers rows several
        # times faster than fancy indexing): the same operations on the same operands.
        lo = v.take(i, axis=0)
        out = v.take(i + 1, axis=0)
        out -= lo
        out *= w[:, None]
        out += lo
        return ImuSamples(
            t_s=t_grid_s, acc_m_s2=out[:, 0:3], gyr_rad_s=out[:, 3:6],
            mag_uT=None if samples.mag_uT is None else out[:, 6:9], gap_before=in_gap,
        )
    return ImuSamples(
        t_s=t_grid_s,
        acc_m_s2=resample_vec(samples.t_s, samples.acc_m_s2, t_grid_s),
        gyr_rad_s=resample_vec(samples.t_s, samples.gyr_rad_s, t_grid_s),
        mag_uT=None if samples.mag_uT is None else resample_vec(samples.t_s, samples.mag_uT, t_grid_s),
        gap_before=in_gap,
    )


def to_uniform_rate(samples: ImuSamples, rate_hz: float | None = None) -> ImuSamples:
    """Resample one sensor onto its own uniform grid (default: its median rate), filling lost samples.

    Orientation filters integrate the gyroscope with a fixed sample period; feeding them data with
    lost packets would silently drop the rotation that happened during the gap. Interpolating the
    gyroscope across a short gap keeps most of that rotation. ``gap_before`` marks grid points that
    were filled.
    """
    rate = samples.rate_hz if rate_hz is None else rate_hz
    if not np.isfinite(rate) or rate <= 0.0:
        raise AlignmentError(f"cannot determine a sample rate from {len(samples)} samples")
    dt = 1.0 / rate
    n = int(np.floor((samples.t_s[-1] - samples.t_s[0]) / dt + 1e-6)) + 1
    t = samples.t_s[0] + np.arange(n) * dt
    in_gap, _ = gap_mask(samples, t)
    if len(samples) < 4:
        return resample_samples(samples, t)

    # Akima splines follow a smooth rotation through a lost packet far better than straight lines
    # (the heading integrated across 5 % packet loss drifts several times less) without the
    # overshoot of a plain cubic spline next to sharp changes.
    t_at = np.clip(t, samples.t_s[0], samples.t_s[-1])

    def fill(v: FloatArray) -> FloatArray:
        return akima_at(samples.t_s, v, t_at)

    return ImuSamples(
        t_s=t,
        acc_m_s2=fill(samples.acc_m_s2),
        gyr_rad_s=fill(samples.gyr_rad_s),
        mag_uT=None if samples.mag_uT is None else fill(samples.mag_uT),
        gap_before=in_gap,
    )


def fill_gaps(samples: ImuSamples, rate_hz: float | None = None, *, gap_factor: float = 1.5,
              max_gap_s: float = np.inf) -> ImuSamples:
    """One sensor's samples with the lost ones put back (Akima), the received samples left as they are.

    For the orientation filter, which integrates the gyroscope at a fixed period: across a gap
    (an interval longer than ``gap_factor`` periods) ``round(interval / period) - 1`` samples are
    inserted, evenly spaced, with values from the Akima spline through the neighbours (the spline
    :func:`to_uniform_rate` uses); ``gap_before`` marks them. Unlike :func:`to_uniform_rate` the
    received samples are not moved onto a new grid: a sensor samples at the steady rate of its own
    clock, and the mapped time stamps wander around that rate by a fraction of a period (clock
    refits, up to ±3 samples over 30 minutes), so re-sampling them onto an exactly uniform grid only
    interpolates between measurements that were already taken one period apart. The times stay
    those of the samples; orientations computed on them are placed on the common grid by their
    own time stamps (:func:`resample_quat`). Intervals longer than ``max_gap_s`` are left open
    (a caller that restarts its filter there). Without gaps to fill this returns ``samples`` itself.
    """
    rate = samples.rate_hz if rate_hz is None else rate_hz
    if not np.isfinite(rate) or rate <= 0.0:
        raise AlignmentError(f"cannot determine a sample rate from {len(samples)} samples")
    t = samples.t_s
    d = np.diff(t)
    missing = np.where((d > gap_factor / rate) & (d <= max_gap_s), np.maximum(np.rint(d * rate).astype(np.int64) - 1, 1), 0)
    gaps = np.flatnonzero(missing)
    if not gaps.size:
        return samples
    if len(samples) < 4:
        return to_uniform_rate(samples, rate)
    counts = missing[gaps]
    total = int(counts.sum())
    # Inserted times: j / (m + 1) of the way through each gap interval, j = 1..m.
    owner = np.repeat(gaps, counts)
    j = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    t_fill = t[owner] + d[owner] * (j / (np.repeat(counts, counts) + 1.0))
    # The spline on a gap interval depends only on the samples from three before to three after it:
    # evaluate it on those windows alone (one series of the windows joined; the joins are at least
    # three samples away from any gap interval, so they do not reach the slopes used there).
    near = np.unique(np.clip((gaps[:, None] + np.arange(-3, 5)[None, :]).ravel(), 0, len(t) - 1))
    t_near = t[near]

    def fill(v: FloatArray) -> FloatArray:
        return akima_at(t_near, v[near], t_fill)

    pos = np.arange(len(t)) + np.concatenate(([0], np.cumsum(missing)))
    n_out = len(t) + total
    out_t = np.empty(n_out)
    out_t[pos] = t
    fill_pos = np.setdiff1d(np.arange(n_out), pos, assume_unique=True)
    out_t[fill_pos] = t_fill

    def merged(v: FloatArray) -> FloatArray:
        out = np.empty((n_out, v.shape[1]))
        out[pos] = v
        out[fill_pos] = fill(v)
        return out

    gap_before = np.zeros(n_out, dtype=bool)
    gap_before[fill_pos] = True
    return ImuSamples(
        t_s=out_t,
        acc_m_s2=merged(samples.acc_m_s2),
        gyr_rad_s=merged(samples.gyr_rad_s),
        mag_uT=None if samples.mag_uT is None else merged(samples.mag_uT),
        gap_before=gap_before,
    )


def akima_at(x: FloatArray, y: FloatArray, x_new: FloatArray) -> FloatArray:
    """Akima spline through ``(x, y)`` (``y`` (n, k), ``x`` strictly increasing) at ``x_new`` inside ``[x[0], x[-1]]``.

    The same numbers as ``scipy.interpolate.Akima1DInterpolator(x, y, axis=0)(x_new)`` (bit for bit:
    the same slope rule, Hermite coefficients and power-basis evaluation, in the same order), without
    building the piecewise polynomial object: SciPy sets the breakpoint slopes through fancy indexing
    with an index tuple and stacks all ``4 x (n-1) x k`` coefficients, which took 0.1-0.2 s per
    180k-sample sensor and signal; here they are computed for the intervals ``x_new`` falls in.
    Anything SciPy would reject (fewer than 3 points, unsorted or repeated ``x``, non-2-D ``y``) goes
    to SciPy, which raises its usual error.
    """
    n = len(x)
    dx = np.diff(x)
    if n < 3 or y.ndim != 2 or y.shape[0] != n or not np.all(dx > 0.0):
        return np.asarray(Akima1DInterpolator(x, y, axis=0)(x_new))
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    dxc = dx[:, None]
    # Slopes between breakpoints, two extra on each side (Akima's extrapolation of the slopes).
    m = np.empty((n + 3, y.shape[1]))
    m[2:-2] = np.diff(y, axis=0) / dxc
    m[1] = 2.0 * m[2] - m[3]
    m[0] = 2.0 * m[1] - m[2]
    m[-2] = 2.0 * m[-3] - m[-4]
    m[-1] = 2.0 * m[-2] - m[-3]
    dm = np.abs(np.diff(m, axis=0))
    f1, f2 = dm[2:], dm[:-2]
    f12 = f1 + f2
    defined = f12 > 1e-9 * f12.max()  # SciPy's break_mult; elsewhere the mean of the outer slopes
    with np.errstate(divide="ignore", invalid="ignore"):
        weighted = m[1:-2] + (f2 / f12) * (m[2:-1] - m[1:-2])
    slope_at = np.where(defined, weighted, 0.5 * (m[3:] + m[:-3]))

    i = np.minimum(np.maximum(np.searchsorted(x, x_new, side="right") - 1, 0), n - 2)
    hk = dxc[i]
    secant = m[2:-2][i]
    d0, d1 = slope_at[i], slope_at[i + 1]
    tk = (d0 + d1 - 2 * secant) / hk
    c0 = tk / hk
    c1 = (secant - d0) / hk - tk
    s = (x_new - x[i])[:, None]
    s2 = s * s
    # PPoly's evaluation: sum over powers, lowest first, with z = s, s*s, (s*s)*s.
    return np.asarray(y[i] + d0 * s + c1 * s2 + c0 * (s2 * s))


def slice_samples(samples: ImuSamples, i0: int, i1: int) -> ImuSamples:
    """Samples ``i0:i1`` of ``samples`` (all fields)."""
    return ImuSamples(
        samples.t_s[i0:i1], samples.acc_m_s2[i0:i1], samples.gyr_rad_s[i0:i1],
        None if samples.mag_uT is None else samples.mag_uT[i0:i1],
        None if samples.gap_before is None else samples.gap_before[i0:i1],
    )


def concat_samples(a: ImuSamples, b: ImuSamples) -> ImuSamples:
    """``b`` appended to ``a`` (magnetometer only if both have one; gap flags dropped)."""
    mag = None if a.mag_uT is None or b.mag_uT is None else np.vstack((a.mag_uT, b.mag_uT))
    return ImuSamples(np.concatenate((a.t_s, b.t_s)), np.vstack((a.acc_m_s2, b.acc_m_s2)), np.vstack((a.gyr_rad_s, b.gyr_rad_s)), mag)
