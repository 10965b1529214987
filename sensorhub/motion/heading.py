"""Relative heading between the pelvis and thigh sensors, and magnetic-disturbance handling.

Only the heading of the thigh *relative to* the pelvis matters for hip angles, and it is the weak
spot of IMU hip rotation: without a magnetometer each sensor's heading drifts on its own, and a
disturbed magnetometer (a metal chair, a machine) pulls one sensor's heading away for as long as
the disturbance lasts. This module therefore runs each sensor's orientation filter magnetometer-free
(6D, heading from the gyroscope only, with the gyroscope bias taken from the calibration still
phases) and handles the relative heading itself:

* ``Δ(t)``: the rotation about the vertical that takes the thigh's 6D earth frame into the pelvis's.
  At the calibration's neutral standing, ``Δ₀`` is chosen so that both segment frames point the
  same way (hip rotation zero in neutral, as the protocol defines it).
* With magnetometers, each sensor's magnetic heading in its own 6D frame gives the change of Δ
  over time. A sample counts only when the field's norm and dip both match the reference taken in
  the calibration still phase (:class:`MagReference`); disturbed spans are reported as
  :class:`DisturbanceEvent`.
* Batch (non-causal): Δ is smoothed over undisturbed samples and interpolated linearly across
  disturbed spans, so a constant gyro drift during a long disturbance is removed entirely.
  Online (causal): Δ follows an exponential low-pass of the undisturbed magnetic estimate and is
  frozen (gyro-only) while either sensor is disturbed.
* Without magnetometers Δ stays at Δ₀.
* Drift: over a drill neither the pelvis nor the thigh relative to it keeps turning, so linear
  heading trends are drift (:func:`heading_trend_rad_s` for batch, :class:`OnlineTrend` live);
  the pipeline removes them before Δ is applied.
* Residual hard iron of each magnetometer is fitted from the recording
  (:func:`estimate_hard_iron`) before any magnetic heading is taken.

What each of these buys is measured in docs/accuracy.md.

Pure array maths; no I/O.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import uniform_filter1d

from sensorhub.motion import kernels, quat

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Relative deviation of the field norm from the reference that counts as disturbed.
MAG_NORM_TOL = 0.05
#: Deviation of the dip angle from the reference that counts as disturbed (deg).
MAG_DIP_TOL_DEG = 5.0
#: At neutral standing both sensors must see the same field within these limits (relative norm,
#: dip in deg); residual hard iron of a few tenths of a µT stays well inside them.
MAG_AGREE_NORM_TOL = 0.04
MAG_AGREE_DIP_DEG = 3.0
#: Disturbed spans are widened by this on each side (s): the edges of a disturbance are gradual.
MAG_MARGIN_S = 1.0
#: Time constant of the online low-pass on the magnetic relative heading (s).
ONLINE_TAU_S = 4.0
#: Window of the batch smoothing of the magnetic relative heading (s).
BATCH_WINDOW_S = 4.0


@dataclass(frozen=True)
class MagReference:
    """Undisturbed field of one sensor: norm (µT) and dip (deg, elevation above the horizontal plane;
    negative when the field points down, as in the northern hemisphere)."""

    norm_uT: float
    dip_deg: float


@dataclass(frozen=True)
class DisturbanceEvent:
    """A span during which one sensor's magnetometer was not trusted."""

    sensor: str
    start_s: float
    end_s: float
    max_norm_dev_uT: float
    max_dip_dev_deg: float

    def describe(self) -> str:
        return (
            f"{self.sensor} magnetometer disturbed from {self.start_s:.1f} s to {self.end_s:.1f} s "
            f"(norm off by up to {self.max_norm_dev_uT:.0f} µT, dip by {self.max_dip_dev_deg:.0f}°): "
            "heading held from the gyroscope"
        )


def wrap_rad(a: FloatArray | float) -> FloatArray:
    """Wrap angles to (−π, π]."""
    arr = np.asarray(a)
    if arr.ndim == 1 and len(arr) >= kernels.MIN_ROWS and arr.dtype == np.float64:
        # Long series (batch): the complex exponential's cosine and sine in one compiled pass, laid
        # out as the complex array, then the same arctan2: the same bits (finite input only).
        rows, finite = kernels.exp_i_rows(np.ascontiguousarray(arr))
        if finite:
            return np.asarray(np.arctan2(rows[:, 1], rows[:, 0]))
    z = np.exp(1j * arr)
    return np.asarray(np.arctan2(z.imag, z.real))  # np.angle's arithmetic without its wrapper (live path)


def mag_norm_dip(q_earth_sensor: FloatArray, mag_uT: FloatArray, *, m_earth: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
    """Field norm (µT) and dip angle (deg, the field's elevation above the horizontal plane; negative
    when it points down, as in the northern hemisphere) using the sensor's inclination.

    ``m_earth``: ``quat.rotate(q_earth_sensor, mag_uT)`` if the caller has it already (batch: the
    field in the earth frame serves the disturbance mask and the relative heading alike).
    """
    if m_earth is None:
        m_earth = quat.rotate(q_earth_sensor, mag_uT)
    if m_earth.ndim == 2 and len(m_earth) >= kernels.MIN_ROWS and m_earth.dtype == np.float64:
        # Long series (batch): norm and clipped sine in one compiled pass (same bits), NumPy's arcsine.
        norm, sine = kernels.field_norm_sine(np.ascontiguousarray(m_earth))
        return norm, np.degrees(np.arcsin(sine, out=sine), out=sine)
    norm = quat.norm3(m_earth)
    dip = np.degrees(np.arcsin(np.clip(m_earth[:, 2] / np.maximum(norm, 1e-12), -1.0, 1.0)))
    return norm, dip


def mag_heading_rad(q_earth_sensor: FloatArray, mag_uT: FloatArray, *, m_earth: FloatArray | None = None) -> FloatArray:
    """Direction of the horizontal field in the sensor's (6D) earth frame, counter-clockwise from x
    (``m_earth`` as in :func:`mag_norm_dip`)."""
    if m_earth is None:
        m_earth = quat.rotate(q_earth_sensor, mag_uT)
    return np.asarray(np.arctan2(m_earth[:, 1], m_earth[:, 0]))


def reference_from(q_earth_sensor: FloatArray, mag_uT: FloatArray) -> MagReference:
    """Reference field from samples known to be undisturbed (the calibration still phase)."""
    norm, dip = mag_norm_dip(q_earth_sensor, mag_uT)
    return MagReference(norm_uT=float(np.median(norm)), dip_deg=float(np.median(dip)))


def disturbed_mask(
    t_s: FloatArray, q_earth_sensor: FloatArray, mag_uT: FloatArray, ref: MagReference, *, margin_s: float = MAG_MARGIN_S,
    m_earth: FloatArray | None = None,
) -> tuple[BoolArray, FloatArray, FloatArray]:
    """Samples whose field differs from ``ref`` in norm or dip; returns (mask, norm dev µT, dip dev deg).

    Spans are widened by ``margin_s`` on each side (non-causal; the online pipeline uses no margin).
    ``m_earth`` as in :func:`mag_norm_dip`.
    """
    norm, dip = mag_norm_dip(q_earth_sensor, mag_uT, m_earth=m_earth)
    bad, dn, dd = kernels.field_deviation(norm, dip, ref.norm_uT, ref.dip_deg, MAG_NORM_TOL * ref.norm_uT, MAG_DIP_TOL_DEG)
    if margin_s > 0 and len(t_s) > 1 and bad.any():
        dt = float(np.median(np.diff(t_s)))
        w = 2 * round(margin_s / dt) + 1
        bad = uniform_filter1d(bad.astype(np.float64), w, mode="nearest") > 0.0
    return bad, dn, dd


def events_from_mask(sensor: str, t_s: FloatArray, bad: BoolArray, dn: FloatArray, dd: FloatArray) -> list[DisturbanceEvent]:
    """One :class:`DisturbanceEvent` per contiguous disturbed span."""
    d = np.diff(np.concatenate(([0], bad.astype(np.int8), [0])))
    out = []
    for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
        out.append(DisturbanceEvent(sensor, float(t_s[a]), float(t_s[b - 1]), float(dn[a:b].max()), float(dd[a:b].max())))
    return out


def neutral_heading_offset(q_earth_pelvis: FloatArray, q_earth_femur: FloatArray) -> float:
    """Δ₀ (rad): the heading rotation that makes the femur's Z axis point like the pelvis's on average.

    Both inputs are segment orientations over a neutral-standing span, each in its own sensor's 6D
    earth frame. ``heading_rotation(Δ₀) ⊗ q_earth_femur`` is then in the pelvis's earth frame.
    """
    z = np.array([0.0, 0.0, 1.0])
    hp = quat.heading_rad(q_earth_pelvis, z)
    hf = quat.heading_rad(q_earth_femur, z)
    return float(np.angle(np.mean(np.exp(1j * (hp - hf)))))


def magnetic_relative_heading(
    q6d_pelvis: FloatArray, mag_pelvis_uT: FloatArray, q6d_thigh: FloatArray, mag_thigh_uT: FloatArray, *,
    m_earth_pelvis: FloatArray | None = None, m_earth_thigh: FloatArray | None = None,
) -> FloatArray:
    """Raw relative heading from the magnetometers, unwrapped (rad).

    In each sensor's 6D frame the horizontal field points at ``ψ``; the thigh frame must turn by
    ``ψ_pelvis − ψ_thigh`` to agree with the pelvis frame. ``m_earth_*`` as in :func:`mag_norm_dip`.
    """
    psi_p = mag_heading_rad(q6d_pelvis, mag_pelvis_uT, m_earth=m_earth_pelvis)
    psi_t = mag_heading_rad(q6d_thigh, mag_thigh_uT, m_earth=m_earth_thigh)
    wrapped = wrap_rad(psi_p - psi_t)
    if wrapped.ndim == 1 and len(wrapped) >= kernels.MIN_ROWS:
        return kernels.unwrap(wrapped)  # np.unwrap's arithmetic in one compiled pass (same bits)
    return np.asarray(np.unwrap(wrapped))


def batch_relative_heading(
    t_s: FloatArray,
    delta_mag_rad: FloatArray | None,
    valid: BoolArray | None,
    delta0_rad: float,
    t_neutral: BoolArray,
    *,
    dt_s: float | None = None,
) -> FloatArray:
    """Relative heading Δ(t) (rad) for a whole recording (non-causal).

    ``delta_mag_rad``: raw magnetic relative heading (None for 6-axis); ``valid``: samples where both
    fields are undisturbed; ``t_neutral``: mask of the neutral span where Δ = ``delta0_rad``;
    ``dt_s``: the median step of ``t_s`` if the caller has it.
    """
    n = len(t_s)
    if delta_mag_rad is None or valid is None or np.count_nonzero(valid) < 2:
        return np.full(n, delta0_rad)
    dt = float(np.median(np.diff(t_s))) if dt_s is None else dt_s
    w = max(1, round(BATCH_WINDOW_S / dt))
    # Mean over valid samples only within the window (a masked moving average).
    v = valid.astype(np.float64)
    x = np.where(valid, delta_mag_rad, 0.0)
    num = uniform_filter1d(x, w, mode="nearest")
    den = uniform_filter1d(v, w, mode="nearest")
    ok = den > 0.25
    smooth = np.interp(t_s, t_s[ok], num[ok] / den[ok]) if np.any(ok) else np.zeros(n)
    ref_mask = t_neutral & valid
    if not np.any(ref_mask):
        log.warning("no undisturbed magnetometer data in the neutral span; magnetic heading correction not used")
        return np.full(n, delta0_rad)
    ref = float(np.mean(smooth[ref_mask]))
    return np.asarray(delta0_rad + (smooth - ref))


class OnlineRelativeHeading:
    """Causal relative-heading tracker: exponential low-pass of the magnetic estimate, frozen while disturbed.

    Call :meth:`start` with Δ₀ and the magnetic relative heading at the neutral span, then
    :meth:`update` with each block's raw magnetic relative heading and validity.
    """

    def __init__(self, rate_hz: float, tau_s: float = ONLINE_TAU_S) -> None:
        self._alpha = 1.0 - np.exp(-1.0 / (tau_s * rate_hz))
        self._offset = 0.0
        self._state: float | None = None
        self.delta0_rad = 0.0

    def start(self, delta0_rad: float, delta_mag_ref_rad: float | None) -> None:
        self.delta0_rad = float(delta0_rad)
        self._offset = 0.0 if delta_mag_ref_rad is None else float(delta_mag_ref_rad)
        self._state = None if delta_mag_ref_rad is None else float(delta_mag_ref_rad)

    def update(self, delta_mag_rad: FloatArray | None, valid: BoolArray | None) -> FloatArray:
        """Δ(t) for one block (rad)."""
        if delta_mag_rad is None or valid is None or self._state is None:
            n = 0 if delta_mag_rad is None else len(delta_mag_rad)
            return np.full(n, self.delta0_rad)
        out = np.empty(len(delta_mag_rad))
        s = self._state
        a = self._alpha
        for i, (d, ok) in enumerate(zip(delta_mag_rad.tolist(), valid.tolist())):
            if ok:
                s += a * ((d - s + math.pi) % (2.0 * math.pi) - math.pi)
            out[i] = s
        self._state = s
        return np.asarray(self.delta0_rad + wrap_rad(out - self._offset))


def segment_heading_rad(q_earth_segment: FloatArray, mask: BoolArray | None = None, *,
                        axes: tuple[FloatArray, FloatArray] | None = None) -> tuple[FloatArray, BoolArray]:
    """Heading (rad, unwrapped) of a segment and where it is well defined.

    Uses whichever of the segment's X (anterior) and Y (long) axes is more horizontal on average
    over ``mask`` — X for a standing segment, Y for a thigh lying on a chair — and marks samples
    where that axis is more than 30° out of the horizontal plane as invalid. ``axes``: the X and Y
    axes in the earth frame (``quat.rotate_axis(q, 0)``, ``(q, 1)``) if the caller has them.
    """
    vx, vy = axes if axes is not None else (quat.rotate_axis(q_earth_segment, 0), quat.rotate_axis(q_earth_segment, 1))
    m = np.ones(len(vx), dtype=bool) if mask is None or not np.any(mask) else mask
    v = vx if np.nanmean(np.abs(vx[m, 2])) <= np.nanmean(np.abs(vy[m, 2])) else vy
    ok = np.abs(v[:, 2]) < 0.5
    h = np.arctan2(v[:, 1], v[:, 0])
    return np.asarray(np.unwrap(h)), ok


def heading_trend_rad_s(t_s: FloatArray, q_earth_segment: FloatArray, mask: BoolArray) -> float:
    """Linear trend (rad/s) of a segment's heading over ``mask`` samples; 0 without enough data.

    Postural sway makes a gyroscope bias measured in a few seconds of standing wrong by 0.1-0.2
    deg/s, which integrates to several degrees of heading per minute. Over a drill the pelvis does
    not keep turning, nor does the thigh relative to it: a steady trend in a segment's heading is
    drift. (A real, slow, one-directional turn of the athlete would be removed too; the estimated
    rate is reported in the diagnostics.)
    """
    h, ok = segment_heading_rad(q_earth_segment, mask)
    m = mask & ok
    if np.count_nonzero(m) < 50 or np.ptp(t_s[m]) < 10.0:
        return 0.0
    slope, _ = np.polyfit(t_s[m], h[m], 1)
    return float(slope)


def _unwrap_floats(prev: float | None, values: list[float]) -> list[float]:
    """``np.unwrap`` of ``[prev] + values`` without its first element (of ``values`` alone when ``prev`` is None).

    The live trends unwrap 3-6 headings per block, where ``np.unwrap``'s dozen array operations cost
    ~30 µs in call overhead; this is the same arithmetic in the same order on Python floats (period
    2π, discontinuity π, a difference of exactly +π kept as +π), so the results are the same bits.
    """
    period = 2.0 * math.pi
    high = period / 2.0
    low = -high
    out: list[float] = []
    correction = 0.0  # running sum of the corrections (np.cumsum)
    last = prev
    for x in values:
        if last is None:
            out.append(x)
            last = x
            continue
        dd = x - last
        ddmod = (dd - low) % period + low
        if ddmod == low and dd > 0:
            ddmod = high
        step = 0.0 if abs(dd) < high else ddmod - dd
        correction += step
        out.append(x + correction)
        last = x
    return out


#: Blocks shorter than this are summed on Python floats in :meth:`OnlineTrend.add` (NumPy sums fewer
#: than 8 doubles left to right; from 8 on it uses 8 partial sums).
_SHORT_SUM_MAX = 8


class OnlineTrend:
    """Causal least-squares line through a growing series (e.g. a heading), from running sums.

    ``rate`` is the slope once ``min_span_s`` of samples have been seen, and ``spread`` the RMS of the
    residuals about the line (same unit as the values).
    """

    def __init__(self, min_span_s: float = 20.0) -> None:
        self.min_span_s = min_span_s
        self._n = 0
        self._t0: float | None = None
        self._sums = [0.0] * 5  # Σt, Σy, Σt², Σty, Σy² (Python floats)
        self._last: float | None = None
        self._t_first = np.inf
        self._t_last = -np.inf

    def add(self, t_s: FloatArray, y: FloatArray, ok: BoolArray) -> None:
        """Add samples (angles in rad are unwrapped against the previous block)."""
        if not ok.any():
            return
        if ok.all():
            t, yl = t_s.tolist(), y.tolist()
        else:
            t, yl = t_s[ok].tolist(), y[ok].tolist()
        v = _unwrap_floats(self._last, yl)
        self._last = v[-1]
        if self._t0 is None:
            self._t0 = t[0]
        t0 = self._t0
        tt = [x - t0 for x in t]
        k = len(tt)
        self._n += k
        if k < _SHORT_SUM_MAX:
            # NumPy's sum of fewer than 8 doubles is a plain left fold: the same bits on Python floats,
            # without ~10 array operations per block (tests/test_live_helpers.py checks it).
            st, sy, stt, sty, syy = tt[0], v[0], tt[0] * tt[0], tt[0] * v[0], v[0] * v[0]
            for i in range(1, k):
                a, b = tt[i], v[i]
                st += a
                sy += b
                stt += a * a
                sty += a * b
                syy += b * b
            sums = (st, sy, stt, sty, syy)
        else:
            ta, va = np.array(tt), np.array(v)
            sums = (float(ta.sum()), float(va.sum()), float((ta * ta).sum()), float((ta * va).sum()), float((va * va).sum()))
        self._sums = [s0 + s1 for s0, s1 in zip(self._sums, sums)]
        self._t_first = min(self._t_first, t[0])
        self._t_last = max(self._t_last, t[-1])

    @property
    def ready(self) -> bool:
        return self._n >= 50 and self._t_last - self._t_first >= self.min_span_s

    @property
    def rate(self) -> float:
        st, sy, stt, sty, _ = self._sums
        n = self._n
        den = n * stt - st * st
        return float((n * sty - st * sy) / den) if n > 1 and den > 0 else 0.0

    @property
    def spread(self) -> float:
        st, sy, stt, sty, syy = self._sums
        n = self._n
        if n < 3:
            return float("inf")
        sxx = stt - st * st / n
        sxy = sty - st * sy / n
        syy_c = syy - sy * sy / n
        res = syy_c - (sxy * sxy / sxx if sxx > 0 else 0.0)
        return float(np.sqrt(max(res, 0.0) / n))


#: Prior spread (µT) of a sensor's residual hard-iron offset, which keeps the fit stable when the
#: recording turns the sensor through few orientations.
HARD_IRON_PRIOR_UT = 1.0
#: Assumed measurement spread (µT) of the field equations in the hard-iron fit.
HARD_IRON_MEAS_UT = 0.5
#: Number of effectively independent equations a whole recording is worth (chosen on simulated
#: sessions: with it the residual offset error fell from about 1.0 to 0.3-0.5 µT).
HARD_IRON_EFFECTIVE_SAMPLES = 400


def estimate_hard_iron(mag_uT: FloatArray, up_sensor: FloatArray, mask: BoolArray) -> FloatArray:
    """Residual hard-iron offset (µT, sensor frame) from a recording, given each sample's "up" direction.

    With ``m = Rᵀ b + h`` for a constant earth field ``b``: ``|m − h|`` is constant (sphere) and so is
    the vertical component ``(m − h)·up`` (dip), whatever the heading. Both are linear in ``h`` (with
    one extra unknown each) and solved together by least squares over ``mask`` (undisturbed
    samples), with a zero-mean prior of :data:`HARD_IRON_PRIOR_UT`. Subtracting ``h`` makes the
    magnetic heading independent of how the sensor is turned.
    """
    idx = np.flatnonzero(mask)
    if len(idx) < 20:
        return np.zeros(3)
    idx = idx[:: max(1, len(idx) // 3000)]
    m = mag_uT[idx]
    u = up_sensor[idx] / np.linalg.norm(up_sensor[idx], axis=1, keepdims=True)
    b = float(np.median(quat.norm3(m)))
    n = len(idx)
    # Unknowns: h (3), c = |b|² − |h|², b_up. Sphere rows are divided by 2|b| to be in µT.
    a_sph = np.hstack((m / b, np.full((n, 1), 0.5 / b), np.zeros((n, 1))))
    y_sph = np.sum(m * m, axis=1) / (2.0 * b)
    a_dip = np.hstack((u, np.zeros((n, 1)), np.ones((n, 1))))
    y_dip = np.sum(m * u, axis=1)
    # Neighbouring samples are far from independent (slow motion, model errors such as the
    # inclination error): count the data as HARD_IRON_EFFECTIVE_SAMPLES independent ones.
    lam = HARD_IRON_MEAS_UT / HARD_IRON_PRIOR_UT * np.sqrt(max(1.0, 2 * n / HARD_IRON_EFFECTIVE_SAMPLES))
    a_pri = np.hstack((lam * np.eye(3), np.zeros((3, 2))))
    a = np.vstack((a_sph, a_dip, a_pri))
    y = np.concatenate((y_sph, y_dip, np.zeros(3)))
    x, *_ = np.linalg.lstsq(a, y, rcond=None)
    return np.asarray(x[:3])


#: Rest moments for the drift fit: both sensors below this angular rate (deg/s, REST_SMOOTH_S mean)
#: for at least REST_MIN_S. The athlete returns to neutral between the halves of every rep, and
#: near each keyframe the limb slows down even when the hold itself is short.
REST_MAX_DEG_S = 10.0
REST_SMOOTH_S = 0.2
REST_MIN_S = 0.1
#: Assumed spread (1σ, deg) of the relative heading at a rest moment around the neutral (the athlete
#: does not return to exactly the same pose; sway), and of a calibration still phase's mean.
REST_SIGMA_DEG = 1.5
STILL_PHASE_SIGMA_DEG = 0.5
#: Rest moments further than this (deg) from the current drift curve are end-range holds or other
#: poses, not neutral; the gate starts wide (the still-phase estimate can be off by several degrees
#: at the end of a drill) and narrows as the fit improves.
REST_GATES_DEG = (12.0, 6.0, 4.0)
#: Spacing (s) of the knots of the piecewise-linear drift curve: over a minute or two the drift is
#: close to linear (one segment for a usual drill), over a 5-minute set VQF's bias estimate wanders
#: and a single line leaves several degrees of curvature.
DRIFT_KNOT_SPACING_S = 60.0
#: Lost packets while a sensor turns: the filter integrates interpolated samples there, so the
#: relative heading may jump. Gaps of at least STEP_MIN_GAP_S in the drill get a step in the drift
#: curve with prior σ = STEP_FRACTION x (angular rate at the gap's edges) x (gap length), at least
#: STEP_MIN_SIGMA_DEG.
STEP_MIN_GAP_S = 0.3
STEP_FRACTION = 0.3
STEP_MIN_SIGMA_DEG = 0.5
INITIAL_STEP_MIN_SIGMA_DEG = 3.0
#: Prior spread (deg) of the change of drift rate from one knot segment to the next, times the
#: segment length: keeps short, sparsely observed segments from bending the curve.
DRIFT_BEND_SIGMA_DEG = 3.0


@dataclass(frozen=True)
class RestPoint:
    """The mean relative heading over one quasi-static moment (a rest, or a calibration still phase).

    ``group`` 0 is the calibration's neutral standing posture (whose relative heading is the
    reference); any other group (e.g. 1 = seated) has a level of its own that the fit estimates.
    """

    t_s: float
    heading_rad: float
    sigma_rad: float
    group: int
    fixed: bool = False
    """True for calibration still phases: always used, never gated out."""


@dataclass(frozen=True)
class DriftCurve:
    """Piecewise-linear heading drift ``d(t)`` (rad) with ``d(t_ref) = 0``, extrapolated linearly at both ends."""

    knots_t_s: FloatArray
    knots_rad: FloatArray
    n_rest_used: int
    rms_residual_deg: float
    steps: tuple[tuple[float, float], ...] = ()
    """(time, jump in rad) of each heading step the fit was allowed."""

    def __call__(self, t_s: FloatArray) -> FloatArray:
        k, v = self.knots_t_s, self.knots_rad
        out = np.interp(t_s, k, v)
        lo, hi = t_s < k[0], t_s > k[-1]
        out[lo] = v[0] + (t_s[lo] - k[0]) * (v[1] - v[0]) / (k[1] - k[0])
        out[hi] = v[-1] + (t_s[hi] - k[-1]) * (v[-1] - v[-2]) / (k[-1] - k[-2])
        for ts, jump in self.steps:
            out[t_s > ts] += jump
        return np.asarray(out)

    def mean_rate_rad_s(self) -> float:
        return float((self.knots_rad[-1] - self.knots_rad[0]) / (self.knots_t_s[-1] - self.knots_t_s[0]))


def rest_points(t_s: FloatArray, heading_rad: FloatArray, group: NDArray[np.int_], rate_deg_s: FloatArray,
                mask: BoolArray) -> list[RestPoint]:
    """One :class:`RestPoint` per run of at least REST_MIN_S where ``rate_deg_s`` < REST_MAX_DEG_S inside ``mask``.

    ``rate_deg_s`` is the larger of the two sensors' smoothed angular rates; runs that mix groups
    (a posture change) or contain invalid headings (``group`` < 0) are skipped.
    """
    dt = float(np.median(np.diff(t_s)))
    still = (rate_deg_s < REST_MAX_DEG_S) & mask & np.isfinite(heading_rad)
    d = np.diff(np.concatenate(([0], still.astype(np.int8), [0])))
    out = []
    for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
        if (b - a) * dt < REST_MIN_S:
            continue
        g = group[a:b]
        if g[0] < 0 or np.any(g != g[0]):
            continue
        # float(np.mean(x)) is float(np.add.reduce(x)) / len(x) (same bits), without its per-call overhead (~1000 rests)
        n = int(b - a)
        out.append(RestPoint(float(np.add.reduce(t_s[a:b])) / n, float(np.add.reduce(heading_rad[a:b])) / n,
                             np.radians(REST_SIGMA_DEG), int(g[0])))
    return out


def fit_rest_drift(points: list[RestPoint], t_ref_s: float, t_end_s: float, initial_rate_rad_s: float,
                   knot_spacing_s: float = DRIFT_KNOT_SPACING_S,
                   steps: Sequence[tuple[float, float]] = ()) -> DriftCurve | None:
    """Relative heading drift jointly from all quasi-static neutral moments (robust weighted least squares).

    Model: ``heading_i = level[group_i] + d(t_i) + noise`` with ``d`` piecewise linear in time
    (knots at ``t_ref_s`` (where d = 0) and every ``knot_spacing_s`` up to ``t_end_s``) and each
    posture group's level free. Rest moments away from the neutral (end-range holds) are gated out
    against the current curve, starting from the line with ``initial_rate_rad_s``. ``steps``: (time,
    prior σ in rad) of possible jumps of the heading, e.g. across lost packets during fast rotation,
    where the filter ran on interpolated samples; each is estimated from the rests on either side.
    Returns None when fewer than 4 rest moments agree with a neutral.
    """
    fixed = [p for p in points if p.fixed]
    rests = [p for p in points if not p.fixed]
    if len(rests) < 4 or t_end_s <= t_ref_s + 5.0:
        return None
    n_seg = max(1, round((t_end_s - t_ref_s) / knot_spacing_s))
    knots = np.linspace(t_ref_s, t_end_s, n_seg + 1)
    groups = sorted({p.group for p in points} - {0})
    gcol = {g: n_seg + 1 + i for i, g in enumerate(groups)}  # columns: knots 1..n_seg, level 0, other levels
    n_curve = n_seg + 1 + len(groups)
    n_par = n_curve + len(steps)

    def design(ps: list[RestPoint]) -> FloatArray:
        a = np.zeros((len(ps), n_par))
        t = np.array([p.t_s for p in ps])
        rows = np.arange(len(ps))
        # Hat-function weights of the knots at t (linear extrapolation outside the knot span).
        j = np.minimum(np.maximum(np.searchsorted(knots, t) - 1, 0), n_seg - 1)
        u = (t - knots[j]) / (knots[j + 1] - knots[j])
        inner = j > 0
        a[rows[inner], j[inner] - 1] = 1.0 - u[inner]  # column j-1 is knot j (knot 0 is fixed at zero)
        a[rows, j] = u
        a[rows, [n_seg if p.group == 0 else gcol[p.group] for p in ps]] = 1.0
        for k, (ts, _) in enumerate(steps):
            a[:, n_curve + k] = (t > ts).astype(np.float64)
        return a

    curve = DriftCurve(knots, initial_rate_rad_s * (knots - t_ref_s), 0, float("nan"))
    level = {0: float(np.average([p.heading_rad for p in fixed], weights=[p.sigma_rad**-2 for p in fixed]))} if fixed else {}
    if steps:
        curve = dataclasses.replace(curve, steps=_initial_steps(rests, curve, level, steps))
    used: list[RestPoint] = []
    t_rest = np.array([p.t_s for p in rests])
    h_rest = np.array([p.heading_rad for p in rests])
    g_rest = np.array([p.group for p in rests])
    for gate in REST_GATES_DEG:
        resid = h_rest - curve(t_rest)  # element-wise: the same values as one rest at a time
        for g in {p.group for p in rests}:
            if g not in level:
                level[g] = float(np.median(resid[g_rest == g]))
        # Each rest's deviation from its group's level, and the gate, as arrays (the same element-wise
        # arithmetic as one rest at a time; the gate's np.radians once instead of per rest).
        rest_level = np.empty(len(rests))
        for g in level:
            rest_level[g_rest == g] = level[g]
        within = np.abs(resid - rest_level) <= np.radians(gate)
        used = [p for p, ok in zip(rests, within.tolist()) if ok]
        if len(used) < 4:
            return None
        ps = fixed + used
        a = design(ps)
        w = np.array([1.0 / p.sigma_rad for p in ps])
        y = np.array([p.heading_rad for p in ps])
        # Bending prior: the slope change between adjacent segments, scaled to a heading difference.
        rows, rhs = [a * w[:, None]], [y * w]
        for s in range(1, n_seg):
            row = np.zeros(n_par)
            # d(k_{s+1}) - 2 d(k_s) + d(k_{s-1}) over one segment length is the bend in rad.
            for idx, c in ((s + 1, 1.0), (s, -2.0), (s - 1, 1.0)):
                if idx > 0:
                    row[idx - 1] += c
            rows.append(row[None, :] / np.radians(DRIFT_BEND_SIGMA_DEG))
            rhs.append(np.zeros(1))
        for k, (_, sigma) in enumerate(steps):
            row = np.zeros(n_par)
            row[n_curve + k] = 1.0 / sigma
            rows.append(row[None, :])
            rhs.append(np.zeros(1))
        x = _least_squares(np.vstack(rows), np.concatenate(rhs))
        curve = DriftCurve(knots, np.concatenate(([0.0], x[:n_seg])), len(used), float("nan"),
                           tuple((ts, float(x[n_curve + k])) for k, (ts, _) in enumerate(steps)))
        level = {0: float(x[n_seg]), **{g: float(x[c]) for g, c in gcol.items()}}
    res = (np.array([p.heading_rad for p in used]) - curve(np.array([p.t_s for p in used]))
           - np.array([level[p.group] for p in used]))
    return DriftCurve(knots, curve.knots_rad, len(used), float(np.degrees(np.sqrt(np.mean(res**2)))), curve.steps)


def _least_squares(a: FloatArray, b: FloatArray) -> FloatArray:
    """``argmin |a x - b|`` for the drift fit's small, tall, full-rank systems (a few hundred x a few dozen).

    Solved through the normal equations (Cholesky of the k x k Gram matrix). ``np.linalg.lstsq``
    (SVD) gives the same solution to about 1e-12 relative here (the bending prior keeps the system
    well conditioned) but costs 30-55 ms of CPU per call on a loaded 2-core machine against 0.5 ms
    single-threaded: OpenBLAS's threads spin in LAPACK's SVD. A rank-deficient or badly conditioned
    system (a posture group with no rest left after gating) falls back to ``lstsq``'s minimum-norm
    solution.
    """
    gram = a.T @ a
    try:
        chol = np.linalg.cholesky(gram)
    except np.linalg.LinAlgError:
        chol = None
    if chol is not None:
        d = np.diag(chol)
        if d.min() > 1e-6 * d.max():  # condition of the Gram matrix below ~1e12
            y = np.linalg.solve(chol, a.T @ b)
            return np.asarray(np.linalg.solve(chol.T, y))
    x, *_ = np.linalg.lstsq(a, b, rcond=None)
    return np.asarray(x)


def _initial_steps(rests: list[RestPoint], curve: DriftCurve, level: dict[int, float],
                   steps: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """First guess of each heading step, so that the gates do not throw away every rest after a big one.

    Between consecutive steps, the neutral is the value most rests agree on (within 4°; end-range
    holds scatter to both sides); a step is the change of that value. Stretches with fewer than 2
    rests are joined with the next, and the change goes to the step with the largest prior σ. Only
    steps with a prior σ of at least INITIAL_STEP_MIN_SIGMA_DEG are guessed; the rest start at zero.
    """
    t = np.array([p.t_s for p in rests])
    r = np.array([p.heading_rad - curve(np.array([p.t_s]))[0] for p in rests])
    g = np.array([p.group for p in rests])
    for grp in set(g.tolist()):
        r[g == grp] -= level.get(grp, float(np.median(r[g == grp])))
    jumps = [0.0] * len(steps)
    # Only steps that may be large split the drill into stretches; small ones start at zero.
    big = [k for k, (_, sigma) in enumerate(steps) if sigma >= np.radians(INITIAL_STEP_MIN_SIGMA_DEG)]
    edges = [steps[k][0] for k in big] + [np.inf]
    prev, pending = 0.0, []
    for n, k in enumerate(big):
        ts = steps[k][0]
        pending.append(k)
        seg = r[(t > ts) & (t <= edges[n + 1])]
        if len(seg) < 4 and n + 1 < len(big):
            continue  # too few rests to tell: decide together with the next step
        cur = prev
        if len(seg) >= 2:
            support = (np.abs(seg[:, None] - seg[None, :]) <= np.radians(4.0)).sum(axis=1) - 1e-3 * np.abs(seg - prev)
            if support.max() >= 2.0 - 1e-2:
                best = seg[int(np.argmax(support))]
                cur = float(np.mean(seg[np.abs(seg - best) <= np.radians(4.0)]))
        # The change goes to the step (of those undecided) with the largest prior: the longest gap
        # at the fastest rotation.
        jumps[max(pending, key=lambda i: steps[i][1])] = cur - prev
        prev, pending = cur, []
    return tuple((ts, j) for (ts, _), j in zip(steps, jumps))
