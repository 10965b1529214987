"""Sensor-to-segment calibration from the standard protocol, without magnetometers.

The protocol (docs/accuracy.md): stand still >= 3 s, 5 hip flexion-extension swings of the measured
leg, 3 bows from the hips (pelvis tilting forward about 30°), stand still >= 2 s. From it we find,
for each sensor, ``q_segment_sensor``: the orientation of the sensor frame in its segment's ISB
anatomical frame (X anterior, Y superior, Z right), whatever way the sensor was strapped on.

How each axis is found (gyroscope and accelerometer only, no orientation filter needed):

* Y (superior) of both segments: the direction of the specific force while standing still (the
  accelerometer reads +g along the axis pointing up); the two still phases are averaged.
* Z (right) of the thigh: the principal axis of the bias-free angular rate during the leg swings
  (flexion is a rotation about the medio-lateral axis).
* Z (right) of the pelvis: the principal axis of the angular rate during the bows.
* Each Z is made orthogonal to its Y; X = Y × Z.
* Signs by anatomy: flexion is a positive rotation about +Z, the swing reaches further into flexion
  than into extension, and a bow tilts the pelvis forward (a negative rotation about +Z). How far
  each way is read from :func:`sagittal_angle_deg`, which stays true across lost packets (gravity
  anchors it); with magnetometers the compass checks that thigh and pelvis face the same way.

Neutral standing is the zero of every angle: both segment frames have Y vertical in the still
phases, and :mod:`sensorhub.motion.heading` aligns the thigh's heading to the pelvis's there.

The module also estimates each gyroscope's bias from the still phases, grades every step and says
what to redo, stores a calibration as JSON, and offers :class:`LiveCalibration`, a small state
machine that guides the protocol live. Pure maths apart from :meth:`Calibration.save` / ``load``.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.ndimage import uniform_filter1d
from scipy.sparse.linalg import spsolve
from scipy.spatial.transform import Rotation

from sensorhub.errors import CalibrationError, ImportFormatError
from sensorhub.motion import heading, quat
from sensorhub.samples import ImuSamples

log = logging.getLogger(__name__)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IndexArray = NDArray[np.signedinteger[Any]]

SEGMENTS = ("pelvis", "thigh")
SIDES = ("left", "right")

# Phase detection thresholds on the 0.5-s moving mean of the angular-rate norm (deg/s). Postural
# sway while standing stays around 1 deg/s; swings and bows run at 30-100 deg/s.
STILL_MAX_DEG_S = 5.0
THIGH_ACTIVE_DEG_S = 10.0
PELVIS_ACTIVE_DEG_S = 8.0
SMOOTH_S = 0.5
EDGE_TRIM_S = 0.25

# Protocol requirements and quality limits.
STILL1_MIN_S = 3.0
STILL2_MIN_S = 2.0
STILL_MAX_RMS_DEG_S = 3.0
SWING_MIN_AMPLITUDE_DEG = 30.0
SWING_MIN_COUNT = 5
BOW_MIN_AMPLITUDE_DEG = 15.0
BOW_MIN_COUNT = 3
AXIS_MIN_CONSISTENCY = 0.90
AXIS_MAX_TILT_DEG = 20.0
POSTURE_MAX_CHANGE_DEG = 5.0
#: A swing must reach this many times further into flexion than into extension (or the reverse) for
#: the front of the thigh to be told from its back; swings are typically 30-45° forward, 10-20° back.
SWING_MIN_REACH_RATIO = 1.2
#: With magnetometers: the two segments' anterior axes at neutral standing, projected on the
#: horizontal plane, must point within this of each other by the compass (a flipped frame: ~180°).
COMPASS_MAX_FRONT_DIFFERENCE_DEG = 90.0

# The gap-aware segment angle (sagittal_angle_deg): one-sigma errors of its three measurements.
#: Gyroscope increment between two measured samples (deg): after the still-phase bias, drift stays
#: well under a degree over a protocol; the accelerometer only steers the angle's slow part.
SIGMA_GYRO_STEP_DEG = 0.005
#: Inside a gap: deviation of the angle's second difference (deg per grid step squared) from that of
#: the rate interpolated across it; 0.05 at 100 Hz is 500 deg/s² of angular acceleration.
SIGMA_GAP_CURVATURE_DEG = 0.05
#: Inclination from the accelerometer (deg), plus what the tangential acceleration can fake.
SIGMA_ACC_DEG = 5.0
#: Nominal distance (m) from the joint's axis to the sensor, to size the tangential acceleration.
SWING_RADIUS_M = 0.25
#: Data (s) the live calibration keeps while it waits for the first still phase.
WAITING_BUFFER_S = 30.0


class CalibrationPhaseError(CalibrationError):
    """A step of the calibration protocol was not found in the recording."""


class CalibrationQualityError(CalibrationError):
    """The protocol was found but a step is too poor to calibrate from (the message says what to redo)."""


class CalibrationFileError(CalibrationError, ImportFormatError):
    """A stored calibration JSON file is malformed."""


@dataclass(frozen=True)
class Interval:
    """A time interval ``[start_s, end_s]`` in the recording's time base."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def mask(self, t_s: FloatArray) -> BoolArray:
        return (t_s >= self.start_s) & (t_s <= self.end_s)


@dataclass(frozen=True)
class CalibrationPhases:
    """Where the protocol's four steps are in a recording."""

    still1: Interval
    swings: Interval
    bows: Interval
    still2: Interval

    @property
    def end_s(self) -> float:
        """End of the protocol; the drill starts after this."""
        return self.still2.end_s


@dataclass(frozen=True)
class StepReport:
    """Verdict on one protocol step: ``ok``, measured ``metrics`` and ``advice`` when it was poor."""

    step: str
    ok: bool
    metrics: dict[str, float]
    advice: str = ""


@dataclass(frozen=True)
class CalibrationQuality:
    """Quality of a calibration: one report per step plus the overall verdict."""

    steps: tuple[StepReport, ...]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def advice(self) -> list[str]:
        """What to redo, one sentence per poor step (empty when all is well)."""
        return [s.advice for s in self.steps if not s.ok and s.advice]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "steps": [{"step": s.step, "ok": s.ok, "metrics": s.metrics, "advice": s.advice} for s in self.steps],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CalibrationQuality:
        return cls(
            steps=tuple(
                StepReport(step=str(s["step"]), ok=bool(s["ok"]), metrics={k: float(v) for k, v in s["metrics"].items()}, advice=str(s.get("advice", "")))
                for s in d.get("steps", [])
            )
        )


@dataclass(frozen=True)
class Calibration:
    """The result of a calibration, applicable to later data of the same strapping.

    ``q_segment_sensor[name]`` (w, x, y, z) rotates vectors from sensor ``name``'s frame into its
    segment's ISB frame. ``gyr_bias_rad_s`` is each gyroscope's bias measured in the still phases
    (sensor frame). ``mag_ref`` holds each magnetometer's field norm (µT) and dip angle (deg) in the
    still phase, the reference for disturbance detection (absent for 6-axis sensors).
    """

    q_segment_sensor: dict[str, FloatArray]
    side: str
    quality: CalibrationQuality
    created: str
    gyr_bias_rad_s: dict[str, FloatArray] = field(default_factory=dict)
    mag_ref: dict[str, dict[str, float]] = field(default_factory=dict)
    phases: CalibrationPhases | None = None
    thigh_mag_refined_deg: float | None = None
    """Set once the thigh mount was turned towards the magnetometer heading (by this many degrees);
    a stored calibration is not refined a second time."""

    def to_json(self) -> str:
        d: dict[str, Any] = {
            "format": "sensorhub-calibration",
            "version": 1,
            "created": self.created,
            "side": self.side,
            "q_segment_sensor": {k: [float(x) for x in v] for k, v in self.q_segment_sensor.items()},
            "gyr_bias_rad_s": {k: [float(x) for x in v] for k, v in self.gyr_bias_rad_s.items()},
            "mag_ref": self.mag_ref,
            "thigh_mag_refined_deg": self.thigh_mag_refined_deg,
            "quality": self.quality.to_dict(),
        }
        if self.phases is not None:
            d["phases"] = {
                k: [getattr(self.phases, k).start_s, getattr(self.phases, k).end_s] for k in ("still1", "swings", "bows", "still2")
            }
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "<string>") -> Calibration:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CalibrationFileError(f"{source}: not JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from exc
        try:
            side = str(d["side"])
            if side not in SIDES:
                raise CalibrationFileError(f"{source}: field 'side' is {side!r}, expected 'left' or 'right'")
            q = {k: quat.normalize(np.asarray(v, dtype=np.float64)) for k, v in d["q_segment_sensor"].items()}
            for name in SEGMENTS:
                if name not in q or q[name].shape != (4,):
                    raise CalibrationFileError(f"{source}: field 'q_segment_sensor.{name}' must be 4 numbers w, x, y, z")
            phases = None
            if "phases" in d:
                p = d["phases"]
                phases = CalibrationPhases(*(Interval(float(p[k][0]), float(p[k][1])) for k in ("still1", "swings", "bows", "still2")))
            return cls(
                q_segment_sensor=q,
                side=side,
                quality=CalibrationQuality.from_dict(d.get("quality", {})),
                created=str(d.get("created", "")),
                gyr_bias_rad_s={k: np.asarray(v, dtype=np.float64) for k, v in d.get("gyr_bias_rad_s", {}).items()},
                mag_ref={k: {kk: float(vv) for kk, vv in v.items()} for k, v in d.get("mag_ref", {}).items()},
                phases=phases,
                thigh_mag_refined_deg=None if d.get("thigh_mag_refined_deg") is None else float(d["thigh_mag_refined_deg"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CalibrationFileError):
                raise
            raise CalibrationFileError(f"{source}: malformed calibration ({type(exc).__name__}: {exc})") from exc

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        p = Path(path)
        return cls.from_json(p.read_text(encoding="utf-8"), source=str(p))


# --------------------------------------------------------------------------------------------
# Phase detection


def smoothed_rate_deg_s(gyr_rad_s: FloatArray, rate_hz: float) -> FloatArray:
    """Angular-rate norm (deg/s) as a centred SMOOTH_S moving mean: the signal phases are found on."""
    g = gyr_rad_s  # row norms as np.linalg.norm(g, axis=1) computes them (same bits), without its overhead on long series
    norm = np.degrees(np.sqrt(g[:, 0] * g[:, 0] + g[:, 1] * g[:, 1] + g[:, 2] * g[:, 2]))
    return np.asarray(uniform_filter1d(norm, max(1, int(round(SMOOTH_S * rate_hz))), mode="nearest"))


def runs(mask: BoolArray) -> list[tuple[int, int]]:
    """Half-open index runs ``[i, j)`` where ``mask`` is True."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _merge_runs(spans: list[tuple[int, int]], max_gap: int) -> list[tuple[int, int]]:
    """Join runs separated by at most ``max_gap`` samples."""
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if out and a - out[-1][1] <= max_gap:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _first_run(spans: list[tuple[int, int]], start: int, min_len: int) -> tuple[int, int] | None:
    """First run (clipped to begin at ``start``) with at least ``min_len`` samples."""
    for a, b in spans:
        if b > start and b - max(a, start) >= min_len:
            return max(a, start), b
    return None


def detect_phases(
    t_s: FloatArray,
    gyr_pelvis_rad_s: FloatArray,
    gyr_thigh_rad_s: FloatArray,
    *,
    search_from_s: float | None = None,
) -> CalibrationPhases:
    """Find the protocol's steps in two gyroscope signals on one uniform time grid ``t_s``.

    Still: both sensors turn slower than 5 deg/s (0.5-s moving mean). Swings: the thigh turns,
    the pelvis does not. Bows: the pelvis turns. The steps must come in protocol order; the first
    still phase found from ``search_from_s`` (default: the start) opens the search.
    Raises :class:`CalibrationPhaseError` naming the step that is missing.
    """
    if len(t_s) < 10:
        raise CalibrationPhaseError("too few samples to look for the calibration protocol")
    rate = 1.0 / float(np.median(np.diff(t_s)))
    p = smoothed_rate_deg_s(gyr_pelvis_rad_s, rate)
    th = smoothed_rate_deg_s(gyr_thigh_rad_s, rate)
    still = (p < STILL_MAX_DEG_S) & (th < STILL_MAX_DEG_S)
    swinging = (th > THIGH_ACTIVE_DEG_S) & (p < PELVIS_ACTIVE_DEG_S)
    bowing = p > PELVIS_ACTIVE_DEG_S

    def n(seconds: float) -> int:
        return int(round(seconds * rate))

    i0 = 0 if search_from_s is None else int(np.searchsorted(t_s, search_from_s))
    still_runs = runs(still)
    r1 = _first_run(still_runs, i0, n(1.0))
    if r1 is None:
        raise CalibrationPhaseError(f"no first still phase (>= 1 s with both sensors below {STILL_MAX_DEG_S:g} deg/s) after t = {t_s[i0]:.2f} s")
    # The swings must follow the first still phase; a still phase long before them is not "first".
    swing_runs = _merge_runs(runs(swinging), n(0.6))
    r2 = _first_run(swing_runs, r1[1], n(2.0))
    if r2 is None:
        raise CalibrationPhaseError(f"no leg swings (thigh turning > {THIGH_ACTIVE_DEG_S:g} deg/s for >= 2 s, pelvis quiet) after t = {t_s[r1[1] - 1]:.2f} s")
    # Take the still run that ends right before the swings (allowing a short transition).
    before = [r for r in still_runs if r[1] <= r2[0] + n(0.3) and r[1] - r[0] >= n(1.0)]
    if before:
        r1 = before[-1]
    if r2[0] - r1[1] > n(3.0):
        log.warning("%.1f s between the first still phase and the swings", (r2[0] - r1[1]) / rate)
    bow_runs = _merge_runs(runs(bowing), n(1.5))
    r3 = _first_run(bow_runs, r2[1], n(1.5))
    if r3 is None:
        raise CalibrationPhaseError(f"no bows (pelvis turning > {PELVIS_ACTIVE_DEG_S:g} deg/s for >= 1.5 s) after the swings ending at t = {t_s[r2[1] - 1]:.2f} s")
    r4 = _first_run(still_runs, r3[1], n(1.0))
    if r4 is None:
        raise CalibrationPhaseError(f"no final still phase (>= 1 s) after the bows ending at t = {t_s[r3[1] - 1]:.2f} s")
    if r4[0] - r3[1] > n(3.0):
        log.warning("%.1f s between the bows and the final still phase", (r4[0] - r3[1]) / rate)

    def iv(r: tuple[int, int]) -> Interval:
        return Interval(float(t_s[r[0]]), float(t_s[r[1] - 1]))

    return CalibrationPhases(still1=iv(r1), swings=iv(r2), bows=iv(r3), still2=iv(r4))


# --------------------------------------------------------------------------------------------
# Axis estimation


def _trimmed(iv: Interval) -> Interval:
    if iv.duration_s > 4 * EDGE_TRIM_S:
        return Interval(iv.start_s + EDGE_TRIM_S, iv.end_s - EDGE_TRIM_S)
    return iv


def _unit(v: FloatArray) -> FloatArray:
    return np.asarray(v / np.linalg.norm(v))


def principal_axis(gyr_rad_s: FloatArray) -> tuple[FloatArray, float]:
    """Principal rotation axis of angular-rate samples (n, 3) and its share of the rate energy (0..1).

    The eigenvector of ``Σ ω ωᵀ`` with the largest eigenvalue; the share ``λ1 / Σλ`` is 1 for a
    perfect hinge motion. The sign of the axis is arbitrary.
    """
    m = gyr_rad_s.T @ gyr_rad_s
    w, v = np.linalg.eigh(m)
    share = float(w[-1] / max(float(np.sum(w)), 1e-300))
    return np.asarray(v[:, -1]), share


def _rotation_angle_deg(gyr_rad_s: FloatArray, axis: FloatArray, dt_s: float) -> FloatArray:
    """Angle turned about ``axis`` since the first sample, from the bias-free angular rate."""
    return np.asarray(np.degrees(np.cumsum(gyr_rad_s @ axis) * dt_s))


def sagittal_angle_deg(
    gyr_rad_s: FloatArray,
    acc_m_s2: FloatArray,
    z_axis: FloatArray,
    y_up: FloatArray,
    dt_s: float,
    in_gap: BoolArray | None = None,
) -> FloatArray:
    """Angle (deg) of a segment about its medio-lateral axis ``z_axis``, relative to neutral standing.

    ``y_up`` is the segment's superior axis at neutral standing and ``z_axis`` its (functional)
    medio-lateral axis, both in sensor coordinates; a positive angle is a positive rotation about
    ``z_axis``. ``gyr_rad_s`` must be bias-free, on a uniform grid of period ``dt_s``. ``in_gap``
    flags grid points that were interpolated across lost packets.

    Integrating the gyroscope alone (as :func:`_rotation_angle_deg` does) turns every gap into an
    error that stays: at 13 samples per packet, 20 % loss leaves 0.13-0.7 s holes in swings of about
    1.4 s, and the linearly bridged rate there lost 40° over the swings, enough to flip which way
    the swing reached further (docs/reliability.md, M1). Here the angle is the least-squares fit of

    * the gyroscope's increment between two measured samples (tight, SIGMA_GYRO_STEP_DEG: it carries
      the shape of every swing);
    * inside a gap, only the change of the increment, from the rate interpolated across it (loose,
      SIGMA_GAP_CURVATURE_DEG): the angle bends smoothly from the rate before the gap to the rate
      after it, but how far it travels in the gap is left to the two ends;
    * at every measured sample, the inclination the accelerometer sees in the sagittal plane
      (gravity; SIGMA_ACC_DEG plus the tilt the tangential acceleration ``|dω/dt| · SWING_RADIUS_M``
      can fake).

    The accelerometer thus only sets the slow part of the angle — its zero and the level of each
    stretch between gaps — which is what gaps destroy. Give the whole protocol, still phases
    included, so that no stretch ends in a gap with nothing after it.
    """
    n = len(gyr_rad_s)
    y = _unit(y_up)
    z = _unit(z_axis - np.dot(z_axis, y) * y)
    x = np.cross(y, z)  # ISB: X = Y x Z
    incl_deg = np.degrees(np.arctan2(acc_m_s2 @ x, acc_m_s2 @ y))
    if n < 3:
        return np.asarray(incl_deg, dtype=np.float64)
    rate = gyr_rad_s @ z
    gap = np.zeros(n, dtype=bool) if in_gap is None else np.asarray(in_gap, dtype=bool)
    step_deg = np.degrees(0.5 * (rate[1:] + rate[:-1]) * dt_s)
    measured_step = ~gap[1:] & ~gap[:-1]
    accel_rad_s2 = np.abs(np.gradient(rate, dt_s))
    accel_rad_s2 = np.asarray(uniform_filter1d(accel_rad_s2, max(1, round(0.1 / dt_s)), mode="nearest"))
    sigma_acc = SIGMA_ACC_DEG + np.degrees(np.arctan(accel_rad_s2 * SWING_RADIUS_M / 9.81))

    rows: list[IndexArray] = []
    cols: list[IndexArray] = []
    vals: list[FloatArray] = []
    rhs: list[FloatArray] = []
    n_rows = 0

    def add(idx: list[IndexArray], coef: list[float], target: FloatArray, sigma: FloatArray | float) -> None:
        nonlocal n_rows
        k = len(target)
        weight = np.broadcast_to(1.0 / np.asarray(sigma, dtype=np.float64), (k,))
        r = n_rows + np.arange(k)
        for i, c in zip(idx, coef):
            rows.append(r)
            cols.append(np.asarray(i))
            vals.append(c * weight)
        rhs.append(target * weight)
        n_rows += k

    i = np.flatnonzero(measured_step)
    add([i + 1, i], [1.0, -1.0], step_deg[i], SIGMA_GYRO_STEP_DEG)
    # Curvature where a step on either side is bridged (i - 1 -> i or i -> i + 1).
    j = np.flatnonzero(~measured_step[1:] | ~measured_step[:-1]) + 1
    add([j + 1, j, j - 1], [1.0, -2.0, 1.0], step_deg[j] - step_deg[j - 1], SIGMA_GAP_CURVATURE_DEG)
    m = np.flatnonzero(~gap)
    add([m], [1.0], incl_deg[m], sigma_acc[m])
    # A whisper of the inclination everywhere keeps the system regular (e.g. data that is all gap).
    every = np.arange(n)
    add([every], [1.0], incl_deg, 1e4)
    a = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, n))
    theta = spsolve((a.T @ a).tocsc(), a.T @ np.concatenate(rhs))
    return np.asarray(theta, dtype=np.float64)


def _count_excursions(angle_deg: FloatArray, threshold_deg: float) -> int:
    """Number of excursions of ``angle_deg`` above ``threshold_deg`` (with hysteresis at half of it)."""
    count, above = 0, False
    for a in angle_deg:
        if not above and a > threshold_deg:
            count += 1
            above = True
        elif above and a < 0.5 * threshold_deg:
            above = False
    return count


def _segment_rotation(y_up: FloatArray, z_raw: FloatArray) -> FloatArray:
    """q_segment_sensor from the superior axis and a (not yet orthogonal) right axis, both in sensor frame."""
    y = _unit(y_up)
    z = _unit(z_raw - np.dot(z_raw, y) * y)
    x = np.cross(y, z)
    # Rows are the segment axes expressed in sensor coordinates: v_segment = M v_sensor.
    m = np.vstack((x, y, z))
    return quat.canonical(quat.from_rotation(Rotation.from_matrix(m)))


@dataclass(frozen=True)
class _AxisResult:
    z: FloatArray
    share: float
    tilt_deg: float
    angle_deg: FloatArray


def _functional_axis(
    gyr_rad_s: FloatArray,
    acc_m_s2: FloatArray,
    in_gap: BoolArray,
    in_step: BoolArray,
    y_up: FloatArray,
    dt_s: float,
    *,
    flexion_dominant: bool,
) -> _AxisResult:
    """Medio-lateral axis of a hinge movement (swings or bows) with its sign fixed by anatomy.

    The arrays cover the whole protocol; ``in_step`` marks the swings or the bows. The axis is the
    principal axis of the angular rate measured there (samples bridged across gaps left out). Its
    sign: a leg swing reaches further into flexion (positive about +Z, the knee forward) than into
    extension; a bow tilts the pelvis forward (negative about +Z). How far it reached each way is
    read from :func:`sagittal_angle_deg`, whose zero is neutral standing (gravity) and which does not
    drift across gaps. The returned ``angle_deg`` covers the step only.
    """
    measured = in_step & ~in_gap
    z, share = principal_axis(gyr_rad_s[measured] if np.count_nonzero(measured) >= 3 else gyr_rad_s[in_step])
    tilt = float(abs(90.0 - np.degrees(np.arccos(np.clip(abs(np.dot(z, _unit(y_up))), 0.0, 1.0)))))
    angle = sagittal_angle_deg(gyr_rad_s, acc_m_s2, z, y_up, dt_s, in_gap)[in_step]
    reach_pos, reach_neg = float(np.max(angle)), float(-np.min(angle))
    if (reach_pos < reach_neg) == flexion_dominant:
        z, angle = -z, -angle
    return _AxisResult(z=z, share=share, tilt_deg=tilt, angle_deg=angle)


def _still_step(name: str, label: str, acc: FloatArray, gyr_rad_s: FloatArray, duration_s: float, min_s: float) -> StepReport:
    rms = float(np.degrees(np.sqrt(np.mean(np.sum((gyr_rad_s - gyr_rad_s.mean(axis=0)) ** 2, axis=1)))))
    acc_std = float(np.sqrt(np.mean(np.sum((acc - acc.mean(axis=0)) ** 2, axis=1))))
    metrics = {"duration_s": duration_s, "gyr_rms_deg_s": rms, "acc_std_m_s2": acc_std}
    if rms > STILL_MAX_RMS_DEG_S:
        return StepReport(name, False, metrics, f"moved during the {label} still phase ({rms:.1f} deg/s): stand still {min_s:g} s")
    if duration_s < min_s - 0.3:
        return StepReport(name, False, metrics, f"{label} still phase too short ({duration_s:.1f} s): stand still {min_s:g} s")
    return StepReport(name, True, metrics)


def _compass_front_difference_deg(
    pelvis: ImuSamples,
    thigh: ImuSamples,
    still: BoolArray,
    ups: dict[str, FloatArray],
    q_seg: dict[str, FloatArray],
    mag_ref: dict[str, dict[str, float]],
) -> float | None:
    """Compass heading of the thigh's anterior axis minus the pelvis's (deg, -180..180) at neutral standing.

    Standing, the front of the thigh and the front of the pelvis face the same way; a thigh frame
    whose flexion sign came out wrong faces backwards (about 180°). Only a check: the compass is
    not trusted to set the frame (a residual hard iron turns it). None without magnetometers, or
    when the two sensors do not see the same field there (one of them in a disturbance).
    """
    if pelvis.mag_uT is None or thigh.mag_uT is None or "pelvis" not in mag_ref or "thigh" not in mag_ref:
        return None
    rp, rt = mag_ref["pelvis"], mag_ref["thigh"]
    if (abs(rp["norm_uT"] - rt["norm_uT"]) > heading.MAG_AGREE_NORM_TOL * rp["norm_uT"]
            or abs(rp["dip_deg"] - rt["dip_deg"]) > heading.MAG_AGREE_DIP_DEG):
        return None
    out = []
    for name, smp in (("pelvis", pelvis), ("thigh", thigh)):
        assert smp.mag_uT is not None
        up = _unit(ups[name])
        m = smp.mag_uT[still].mean(axis=0)
        x = quat.to_rotation(q_seg[name]).as_matrix()[0]  # the segment's X in sensor coordinates
        m_h, x_h = m - np.dot(m, up) * up, x - np.dot(x, up) * up
        out.append(float(np.degrees(np.arctan2(np.dot(np.cross(m_h, x_h), up), np.dot(m_h, x_h)))))
    return float((out[1] - out[0] + 180.0) % 360.0 - 180.0)


def calibrate(
    pelvis: ImuSamples,
    thigh: ImuSamples,
    side: str,
    *,
    phases: CalibrationPhases | None = None,
    strict: bool = False,
) -> Calibration:
    """Calibrate from a recording of the protocol; ``pelvis`` and ``thigh`` share one uniform grid.

    Use :func:`sensorhub.motion.align.resample_samples` to bring two sensors onto a common grid.
    ``phases`` default to :func:`detect_phases`. With ``strict=True`` a poor step raises
    :class:`CalibrationQualityError`; otherwise the calibration is returned with its quality report
    (and a warning is logged).
    """
    if side not in SIDES:
        raise CalibrationError(f"side is {side!r}, expected 'left' or 'right'")
    t = pelvis.t_s
    if thigh.t_s.shape != t.shape or not np.allclose(thigh.t_s, t):
        raise CalibrationError("calibrate() needs both sensors on one time grid (see sensorhub.motion.align.resample_samples)")
    dt = float(np.median(np.diff(t)))
    if phases is None:
        phases = detect_phases(t, pelvis.gyr_rad_s, thigh.gyr_rad_s)
    s1, s2 = phases.still1.mask(t), phases.still2.mask(t)
    s1t, s2t = _trimmed(phases.still1).mask(t), _trimmed(phases.still2).mask(t)
    sw, bw = phases.swings.mask(t), phases.bows.mask(t)

    steps: list[StepReport] = []
    q_seg: dict[str, FloatArray] = {}
    bias: dict[str, FloatArray] = {}
    mag_ref: dict[str, dict[str, float]] = {}
    posture_change: dict[str, float] = {}
    ups: dict[str, FloatArray] = {}
    for name, smp in (("pelvis", pelvis), ("thigh", thigh)):
        still = s1t | s2t
        bias[name] = smp.gyr_rad_s[still].mean(axis=0)
        up1 = _unit(smp.acc_m_s2[s1t].mean(axis=0))
        up2 = _unit(smp.acc_m_s2[s2t].mean(axis=0))
        posture_change[name] = float(np.degrees(np.arccos(np.clip(np.dot(up1, up2), -1.0, 1.0))))
        ups[name] = _unit(up1 + up2)
        if smp.mag_uT is not None:
            m = smp.mag_uT[still]
            norm = np.linalg.norm(m, axis=1)
            dip = np.degrees(np.arcsin(np.clip(np.einsum("ij,j->i", m, ups[name]) / norm, -1.0, 1.0)))
            mag_ref[name] = {"norm_uT": float(np.mean(norm)), "dip_deg": float(np.mean(dip))}

    steps.append(_still_step("still1", "first", np.hstack((pelvis.acc_m_s2[s1], thigh.acc_m_s2[s1])),
                             np.hstack((pelvis.gyr_rad_s[s1] - bias["pelvis"], thigh.gyr_rad_s[s1] - bias["thigh"])),
                             phases.still1.duration_s, STILL1_MIN_S))

    gaps = {name: np.zeros(len(t), dtype=bool) if smp.gap_before is None else np.asarray(smp.gap_before, dtype=bool)
            for name, smp in (("pelvis", pelvis), ("thigh", thigh))}
    protocol = Interval(phases.still1.start_s, phases.still2.end_s).mask(t)
    thigh_axis = _functional_axis(thigh.gyr_rad_s[protocol] - bias["thigh"], thigh.acc_m_s2[protocol], gaps["thigh"][protocol],
                                  sw[protocol], ups["thigh"], dt, flexion_dominant=True)
    pelvis_axis = _functional_axis(pelvis.gyr_rad_s[protocol] - bias["pelvis"], pelvis.acc_m_s2[protocol], gaps["pelvis"][protocol],
                                   bw[protocol], ups["pelvis"], dt, flexion_dominant=False)
    q_seg["thigh"] = _segment_rotation(ups["thigh"], thigh_axis.z)
    q_seg["pelvis"] = _segment_rotation(ups["pelvis"], pelvis_axis.z)

    amp = float(np.ptp(thigh_axis.angle_deg))
    reach_flex, reach_ext = float(np.max(thigh_axis.angle_deg)), float(-np.min(thigh_axis.angle_deg))
    reach_ratio = reach_flex / max(reach_ext, 1.0)
    n_swings = _count_excursions(thigh_axis.angle_deg - np.median(thigh_axis.angle_deg), 0.25 * amp)
    metrics = {"amplitude_deg": amp, "count": float(n_swings), "axis_consistency": thigh_axis.share, "axis_tilt_deg": thigh_axis.tilt_deg,
               "flexion_reach_deg": reach_flex, "extension_reach_deg": reach_ext}
    front_diff = _compass_front_difference_deg(pelvis, thigh, s1t | s2t, ups, q_seg, mag_ref)
    if front_diff is not None:
        metrics["compass_front_difference_deg"] = front_diff
    if amp < SWING_MIN_AMPLITUDE_DEG:
        steps.append(StepReport("swings", False, metrics, f"swings too small ({amp:.0f}°): swing at least {SWING_MIN_AMPLITUDE_DEG:.0f}°"))
    elif front_diff is not None and abs(front_diff) > COMPASS_MAX_FRONT_DIFFERENCE_DEG:
        steps.append(StepReport("swings", False, metrics,
                                f"the front of the thigh found from the swings points {abs(front_diff):.0f}° away from the front of the pelvis "
                                f"by the compass (the thigh frame may be flipped): redo the swings, further forward than back, "
                                f"and stand still away from metal"))
    elif reach_ratio < SWING_MIN_REACH_RATIO:
        steps.append(StepReport("swings", False, metrics,
                                f"swings reached about as far back ({reach_ext:.0f}°) as forward ({reach_flex:.0f}°), so the front of the "
                                f"thigh is uncertain: redo the swings, further forward than back"))
    elif thigh_axis.share < AXIS_MIN_CONSISTENCY:
        steps.append(StepReport("swings", False, metrics, f"swings not in one plane (axis consistency {thigh_axis.share:.2f}): swing the leg straight forward and back, knee straight"))
    elif thigh_axis.tilt_deg > AXIS_MAX_TILT_DEG:
        steps.append(StepReport("swings", False, metrics, f"swing axis {thigh_axis.tilt_deg:.0f}° off horizontal: swing straight forward and back, not sideways"))
    elif n_swings < SWING_MIN_COUNT - 1:
        steps.append(StepReport("swings", False, metrics, f"only {n_swings} swings found: swing the leg {SWING_MIN_COUNT} times"))
    else:
        steps.append(StepReport("swings", True, metrics))

    depth = float(-np.min(pelvis_axis.angle_deg))
    n_bows = _count_excursions(-pelvis_axis.angle_deg, 0.5 * depth)
    metrics = {"depth_deg": depth, "count": float(n_bows), "axis_consistency": pelvis_axis.share, "axis_tilt_deg": pelvis_axis.tilt_deg}
    if depth < BOW_MIN_AMPLITUDE_DEG:
        steps.append(StepReport("bows", False, metrics, f"bows too shallow ({depth:.0f}°): bow from the hips about 30°"))
    elif pelvis_axis.share < AXIS_MIN_CONSISTENCY:
        steps.append(StepReport("bows", False, metrics, f"bows twisted (axis consistency {pelvis_axis.share:.2f}): bow straight forward from the hips"))
    elif pelvis_axis.tilt_deg > AXIS_MAX_TILT_DEG:
        steps.append(StepReport("bows", False, metrics, f"bow axis {pelvis_axis.tilt_deg:.0f}° off horizontal: bow straight forward, not to the side"))
    elif n_bows < BOW_MIN_COUNT - 1:
        steps.append(StepReport("bows", False, metrics, f"only {n_bows} bows found: bow {BOW_MIN_COUNT} times"))
    else:
        steps.append(StepReport("bows", True, metrics))

    still2 = _still_step("still2", "final", np.hstack((pelvis.acc_m_s2[s2], thigh.acc_m_s2[s2])),
                         np.hstack((pelvis.gyr_rad_s[s2] - bias["pelvis"], thigh.gyr_rad_s[s2] - bias["thigh"])),
                         phases.still2.duration_s, STILL2_MIN_S)
    change = max(posture_change.values())
    still2.metrics["posture_change_deg"] = change
    if still2.ok and change > POSTURE_MAX_CHANGE_DEG:
        still2 = StepReport("still2", False, still2.metrics, f"standing posture differed by {change:.0f}° between the two still phases: stand upright the same way both times")
    steps.append(still2)

    quality = CalibrationQuality(tuple(steps))
    if not quality.ok:
        msg = "; ".join(quality.advice)
        if strict:
            raise CalibrationQualityError(f"calibration between t = {phases.still1.start_s:.2f} s and {phases.end_s:.2f} s is poor: {msg}")
        # The one message `sensorhub analyze` and the service log show about it: say which leg, where, what to redo.
        log.warning("calibration of the %s leg (protocol at t = %.1f-%.1f s) is poor, angles from it may be wrong: %s",
                    side, round(phases.still1.start_s, 1) + 0.0, phases.end_s, msg)
    return Calibration(
        q_segment_sensor=q_seg,
        side=side,
        quality=quality,
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        gyr_bias_rad_s=bias,
        mag_ref=mag_ref,
        phases=phases,
    )


# --------------------------------------------------------------------------------------------
# Live, step-by-step calibration


class CalibrationStep(enum.Enum):
    STILL1 = "still1"
    SWINGS = "swings"
    BOWS = "bows"
    STILL2 = "still2"
    DONE = "done"
    FAILED = "failed"


STEP_PROMPTS = {
    CalibrationStep.STILL1: f"stand still ({STILL1_MIN_S:g} s)",
    CalibrationStep.SWINGS: f"swing the measured leg forward and back {SWING_MIN_COUNT} times",
    CalibrationStep.BOWS: f"bow from the hips {BOW_MIN_COUNT} times (about 30°)",
    CalibrationStep.STILL2: f"stand still ({STILL2_MIN_S:g} s)",
    CalibrationStep.DONE: "calibration done",
    CalibrationStep.FAILED: "calibration failed",
}


@dataclass(frozen=True)
class LiveCalibrationStatus:
    """What :meth:`LiveCalibration.feed` reports: the current step, its progress (0..1), the prompt
    to show, verdicts of finished steps, and the calibration once done."""

    step: CalibrationStep
    progress: float
    prompt: str
    verdicts: tuple[StepReport, ...]
    calibration: Calibration | None = None


class _Counter:
    """Counts back-and-forth movements (swings, bows) live from the angular rate about the main axis."""

    def __init__(self) -> None:
        self.m = np.zeros((3, 3))
        self.axis: FloatArray | None = None
        self.count = 0
        self.positive = True
        self.swept_deg = 0.0

    def feed(self, gyr_rad_s: FloatArray, dt_s: float) -> None:
        self.m += gyr_rad_s.T @ gyr_rad_s
        _, v = np.linalg.eigh(self.m)
        axis = np.asarray(v[:, -1])
        if self.axis is not None and float(axis @ self.axis) < 0.0:
            axis = -axis
        self.axis = axis
        for rate in np.degrees(gyr_rad_s @ axis):
            if abs(rate) < THIGH_ACTIVE_DEG_S:
                self.swept_deg += abs(rate) * dt_s
                continue
            if (rate > 0) != self.positive:
                if self.swept_deg >= 10.0 and self.positive:
                    self.count += 1  # one full excursion ended when the rate turned back
                self.positive = rate > 0
                self.swept_deg = 0.0
            self.swept_deg += abs(rate) * dt_s


class LiveCalibration:
    """Guide the protocol live: feed blocks of both sensors on a common grid, get the step back.

    The state machine advances STILL1 -> SWINGS -> BOWS -> STILL2 -> DONE from the same
    angular-rate criteria as :func:`detect_phases`, counting swings and bows as they happen. When
    STILL2 has lasted long enough the buffered data is calibrated with :func:`calibrate` using the
    phases the state machine saw, and the status carries the :class:`Calibration` and its quality
    report. Call :meth:`reset` to start over (e.g. after a poor verdict).
    """

    def __init__(self, side: str, rate_hz: float = 100.0) -> None:
        if side not in SIDES:
            raise CalibrationError(f"side is {side!r}, expected 'left' or 'right'")
        self.side = side
        self.rate_hz = rate_hz
        self.reset()

    def reset(self) -> None:
        """Forget everything and start again at STILL1."""
        self.step = CalibrationStep.STILL1
        self._t: list[FloatArray] = []
        self._blocks: dict[str, list[tuple[FloatArray, FloatArray, FloatArray | None, BoolArray]]] = {"pelvis": [], "thigh": []}
        self._hist = np.zeros((0, 2))
        self._run_start: float | None = None
        self._run_end = -np.inf
        self._step_start = 0.0
        self._marks: dict[str, Interval] = {}
        self._counter = _Counter()
        self._verdicts: list[StepReport] = []
        self._calibration: Calibration | None = None
        self._progress = 0.0

    @property
    def calibration(self) -> Calibration | None:
        return self._calibration

    def status(self) -> LiveCalibrationStatus:
        """The current step, progress, prompt and verdicts, without feeding data."""
        return self._status()

    def _status(self) -> LiveCalibrationStatus:
        return LiveCalibrationStatus(self.step, float(np.clip(self._progress, 0.0, 1.0)), STEP_PROMPTS[self.step],
                                     tuple(self._verdicts), self._calibration)

    def feed(self, pelvis: ImuSamples, thigh: ImuSamples) -> LiveCalibrationStatus:
        """Feed one block of both sensors on the same time points (see :mod:`sensorhub.motion.align`)."""
        if len(pelvis) != len(thigh):
            raise CalibrationError("LiveCalibration.feed needs pelvis and thigh blocks on the same time points")
        if self.step in (CalibrationStep.DONE, CalibrationStep.FAILED) or len(pelvis) == 0:
            return self._status()
        self._t.append(pelvis.t_s)
        for name, block in (("pelvis", pelvis), ("thigh", thigh)):
            # Keep the gap flags: calibrate() reads the swing and bow angles around bridged samples.
            gap = np.zeros(len(block), dtype=bool) if block.gap_before is None else np.asarray(block.gap_before, dtype=bool)
            self._blocks[name].append((block.acc_m_s2, block.gyr_rad_s, block.mag_uT, gap))
        if self.step is CalibrationStep.STILL1 and self._t[-1][-1] - self._t[0][0] > 2 * WAITING_BUFFER_S:
            # Waiting for the protocol to start: old data will never be part of it.
            keep = next(i for i, tb in enumerate(self._t) if tb[-1] >= self._t[-1][-1] - WAITING_BUFFER_S)
            self._t = self._t[keep:]
            self._blocks = {k: v[keep:] for k, v in self._blocks.items()}
        win = max(1, int(round(SMOOTH_S * self.rate_hz)))
        rates = np.column_stack((np.degrees(np.linalg.norm(pelvis.gyr_rad_s, axis=1)),
                                 np.degrees(np.linalg.norm(thigh.gyr_rad_s, axis=1))))
        hist = np.vstack((self._hist, rates))
        # Causal moving mean over the last `win` samples (shorter at the very start).
        c = np.cumsum(np.vstack((np.zeros((1, 2)), hist)), axis=0)
        idx = np.arange(len(hist) - len(rates), len(hist)) + 1
        lo = np.maximum(idx - win, 0)
        smooth = (c[idx] - c[lo]) / (idx - lo)[:, None]
        self._hist = hist[-win:]
        dt = 1.0 / self.rate_hz
        for k, t in enumerate(pelvis.t_s):
            before = self.step
            self._advance(float(t), float(smooth[k, 0]), float(smooth[k, 1]))
            if self.step in (CalibrationStep.DONE, CalibrationStep.FAILED):
                break
            if self.step is not before and self.step in (CalibrationStep.SWINGS, CalibrationStep.BOWS):
                seg = thigh if self.step is CalibrationStep.SWINGS else pelvis
                self._counter.feed(seg.gyr_rad_s[k:], dt)
            elif k == 0 and self.step in (CalibrationStep.SWINGS, CalibrationStep.BOWS):
                # Count the whole block before its samples can end the step (the verdict reads the count).
                seg = thigh if self.step is CalibrationStep.SWINGS else pelvis
                self._counter.feed(seg.gyr_rad_s, dt)
        if self.step is CalibrationStep.SWINGS:
            self._progress = self._counter.count / SWING_MIN_COUNT
        elif self.step is CalibrationStep.BOWS:
            self._progress = self._counter.count / BOW_MIN_COUNT
        return self._status()

    def _advance(self, t: float, p: float, th: float) -> None:
        still = p < STILL_MAX_DEG_S and th < STILL_MAX_DEG_S
        if self.step is CalibrationStep.STILL1:
            if still:
                if self._run_start is None or t - self._run_end > SMOOTH_S:
                    self._run_start = t
                self._run_end = t
                self._progress = (t - self._run_start) / STILL1_MIN_S
            elif (th > THIGH_ACTIVE_DEG_S and p < PELVIS_ACTIVE_DEG_S and self._run_start is not None
                  and t - self._run_end <= SMOOTH_S and self._run_end - self._run_start >= 1.0):
                # The causal moving mean lags: the last SMOOTH_S of the run may hold the movement onset.
                iv = Interval(self._run_start, max(self._run_start + 0.5, self._run_end - SMOOTH_S))
                self._marks["still1"] = iv
                ok = iv.duration_s >= STILL1_MIN_S - 0.3
                self._verdicts.append(StepReport("still1", ok, {"duration_s": iv.duration_s},
                                                 "" if ok else f"first still phase too short ({iv.duration_s:.1f} s): stand still {STILL1_MIN_S:g} s"))
                self._enter(CalibrationStep.SWINGS, self._run_end)
            elif t - self._run_end > SMOOTH_S:
                self._run_start = None
                self._progress = 0.0
        elif self.step is CalibrationStep.SWINGS:
            if p > PELVIS_ACTIVE_DEG_S:
                n = self._counter.count
                self._marks["swings"] = Interval(self._step_start, t - SMOOTH_S)
                ok = n >= SWING_MIN_COUNT - 1
                self._verdicts.append(StepReport("swings", ok, {"count": float(n)}, "" if ok else f"only {n} swings: swing the leg {SWING_MIN_COUNT} times"))
                self._enter(CalibrationStep.BOWS, t - SMOOTH_S)
        elif self.step is CalibrationStep.BOWS:
            if still:
                self._run_start = t if self._run_start is None else self._run_start
                if t - self._run_start >= 1.0:
                    n = self._counter.count
                    self._marks["bows"] = Interval(self._step_start, self._run_start)
                    ok = n >= BOW_MIN_COUNT - 1
                    self._verdicts.append(StepReport("bows", ok, {"count": float(n)}, "" if ok else f"only {n} bows: bow {BOW_MIN_COUNT} times"))
                    start = self._run_start
                    self._enter(CalibrationStep.STILL2, start)
                    self._run_start = start
            else:
                self._run_start = None
        elif self.step is CalibrationStep.STILL2:
            if not still:
                self._run_start = None
                self._progress = 0.0
                return
            self._run_start = t if self._run_start is None else self._run_start
            self._progress = (t - self._run_start) / STILL2_MIN_S
            if t - self._run_start >= STILL2_MIN_S:
                self._marks["still2"] = Interval(self._run_start, t)
                self._finish()

    def _enter(self, step: CalibrationStep, t: float) -> None:
        self.step = step
        self._step_start = t
        self._run_start = None
        self._counter = _Counter()
        self._progress = 0.0

    def _finish(self) -> None:
        buffered = self.buffered()
        assert buffered is not None
        smp = dict(zip(SEGMENTS, buffered))
        phases = CalibrationPhases(self._marks["still1"], self._marks["swings"], self._marks["bows"], self._marks["still2"])
        try:
            cal = calibrate(smp["pelvis"], smp["thigh"], self.side, phases=phases)
        except CalibrationError as exc:
            self.step = CalibrationStep.FAILED
            self._verdicts.append(StepReport("calibration", False, {}, str(exc)))
            return
        self._verdicts = [v for v in self._verdicts if v.step not in {s.step for s in cal.quality.steps}] + list(cal.quality.steps)
        self._calibration = cal
        self._progress = 1.0
        self.step = CalibrationStep.DONE

    def buffered(self) -> tuple[ImuSamples, ImuSamples] | None:
        """The grid samples fed so far (pelvis, thigh) with their gap flags, e.g. to warm up filters after calibration."""
        if not self._t:
            return None
        t = np.concatenate(self._t)
        out = []
        for name in SEGMENTS:
            mags = [b[2] for b in self._blocks[name]]
            mag = np.concatenate([m for m in mags if m is not None]) if all(m is not None for m in mags) else None
            out.append(ImuSamples(t, np.concatenate([b[0] for b in self._blocks[name]]),
                                  np.concatenate([b[1] for b in self._blocks[name]]), mag,
                                  np.concatenate([b[3] for b in self._blocks[name]])))
        return out[0], out[1]
