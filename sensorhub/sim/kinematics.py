"""Whole-session kinematics of the pelvis and the measured femur, as smooth functions of time.

A session is scripted as keyframes of nine channels (:data:`CHANNELS`): the three hip angles of the
measured side, the pelvis's own three Cardan angles relative to its standing neutral and the pelvis
origin's position. Between keyframes each channel follows a quintic Hermite profile (minimum jerk
between rests), so velocity and acceleration are continuous. Postural sway is added as a sum
of slow sinusoids (tabulated as a cubic spline). Both parts are analytic, so every channel and its rate can be evaluated exactly
at any time; this is what makes the synthetic gyroscope exact (no finite differences of
orientation) and lets each sensor sample its own clock.

Conventions (written down once here; docs/simulator.md explains and checks them):

* Earth frame ENU. Segment frames ISB: X anterior, Y superior, Z right.
* Standing neutral pelvis: ``R_earth_pelvis0 = Rz_earth(heading) @ M`` where ``M`` maps the segment
  X to East, Y to Up and Z to South, so ``heading`` is the direction the athlete faces, measured
  counter-clockwise from East.
* ``R_earth_pelvis = R_earth_pelvis0 @ Rz(tilt) Rx(obliquity) Ry(rotation)`` (tilt > 0: front rises).
* ``R_pelvis_femur = Rz(flexion) Rx(s*adduction) Ry(s*internal_rotation)`` with ``s = +1`` for the
  right side and ``-1`` for the left, so the clinical angles are positive on both sides.
* The pelvis origin is the midpoint between the hip joint centres; its position channels are its
  displacement from the standing position (at ``standing_height_m`` above the floor) in the
  standing-neutral pelvis frame (anterior, up, right), in metres.

This module is pure NumPy: no I/O, no randomness of its own (random choices come in as arguments).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline

from sensorhub.sim.rotations import (
    FloatArray,
    cardan_zxy,
    cardan_zxy_body_rate,
    rot_y,
    rot_z,
)

CHANNELS: tuple[str, ...] = (
    "hip_flexion",
    "hip_adduction",
    "hip_rotation",
    "pelvis_tilt",
    "pelvis_obliquity",
    "pelvis_rotation",
    "pelvis_anterior",
    "pelvis_up",
    "pelvis_right",
)
"""Scripted channels: six angles in degrees, then the pelvis origin position in metres."""

_ANGLE_CHANNELS = 6
_CHANNEL_INDEX = {name: i for i, name in enumerate(CHANNELS)}

# Standing-neutral segment axes in ENU (heading 0): X -> East, Y -> Up, Z -> South.
_M_EARTH_NEUTRAL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def channel_index(name: str) -> int:
    """Column of channel ``name`` in keyframe and evaluation arrays."""
    return _CHANNEL_INDEX[name]


@dataclass(frozen=True)
class Keyframes:
    """Keyframe times (s, strictly increasing), channel values and channel velocities.

    ``values`` and ``rates`` have shape (k, len(CHANNELS)); ``rates`` (per second) is zero at ordinary
    keyframes, where the motion comes to rest, and non-zero at via points passed through in motion.
    """

    t_s: FloatArray
    values: FloatArray
    rates: FloatArray

    def evaluate(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Channel values, first and second time derivatives at ``t_s`` (each shape (n, channels)).

        Between neighbouring keyframes a quintic Hermite segment matches value and velocity at both
        ends with zero acceleration (with zero end velocities it is the minimum-jerk profile
        ``v0 + (v1 - v0)(10 s^3 - 15 s^4 + 6 s^5)``). Outside the keyframes the values hold.
        """
        t = np.asarray(t_s, dtype=float)
        k = np.clip(np.searchsorted(self.t_s, t, side="right") - 1, 0, len(self.t_s) - 2)
        t0 = self.t_s[k]
        dt = (self.t_s[k + 1] - t0)[:, None]
        s = np.clip((t - t0) / dt[:, 0], 0.0, 1.0)[:, None]
        inside = ((t >= self.t_s[0]) & (t <= self.t_s[-1])).astype(float)[:, None]
        s2, s3 = s * s, s * s * s
        h1 = s3 * (10.0 - 15.0 * s + 6.0 * s2)
        dh1 = 30.0 * s2 * (1.0 - s) ** 2
        ddh1 = 60.0 * s * (1.0 - s) * (1.0 - 2.0 * s)
        g0 = s - 6.0 * s3 + 8.0 * s3 * s - 3.0 * s3 * s2
        dg0 = 1.0 - 18.0 * s2 + 32.0 * s3 - 15.0 * s3 * s
        ddg0 = -36.0 * s + 96.0 * s2 - 60.0 * s3
        g1 = -4.0 * s3 + 7.0 * s3 * s - 3.0 * s3 * s2
        dg1 = -12.0 * s2 + 28.0 * s3 - 15.0 * s3 * s
        ddg1 = -24.0 * s + 84.0 * s2 - 60.0 * s3
        v0, v1 = self.values[k], self.values[k + 1]
        d0, d1 = self.rates[k] * dt, self.rates[k + 1] * dt  # velocities in units per segment
        value = v0 + (v1 - v0) * h1 + d0 * g0 + d1 * g1
        rate = ((v1 - v0) * dh1 + d0 * dg0 + d1 * dg1) / dt * inside
        acc = ((v1 - v0) * ddh1 + d0 * ddg0 + d1 * ddg1) / dt**2 * inside
        return value, rate, acc


class MotionScript:
    """Builds :class:`Keyframes` move by move, keeping the current time and posture.

    ``move(duration, hip_rotation=30)`` ends a transition ``duration`` seconds later at the given
    channel values, coming to rest there; channels not named keep their value. ``move_through`` passes
    the posture in motion instead (velocity from the neighbouring keyframes, as in a
    Catmull-Rom spline), e.g. the forward lean half-way through sitting down. ``hold(duration)``
    stays put.
    """

    def __init__(self, initial: Mapping[str, float] | None = None) -> None:
        start = np.zeros(len(CHANNELS))
        for name, value in (initial or {}).items():
            start[_CHANNEL_INDEX[name]] = value
        self._times: list[float] = [0.0]
        self._values: list[FloatArray] = [start]
        self._via: list[bool] = [False]

    @property
    def t_s(self) -> float:
        """End time of the script so far."""
        return self._times[-1]

    def current(self, name: str) -> float:
        """Value of channel ``name`` at the end of the script so far."""
        return float(self._values[-1][_CHANNEL_INDEX[name]])

    def move(self, duration_s: float, **targets: float) -> float:
        """Append a transition to ``targets`` lasting ``duration_s``, ending at rest; returns the end time."""
        return self._append(duration_s, False, targets)

    def move_through(self, duration_s: float, **targets: float) -> float:
        """Like :meth:`move`, but the posture is a via point passed through in motion."""
        return self._append(duration_s, True, targets)

    def _append(self, duration_s: float, via: bool, targets: Mapping[str, float]) -> float:
        if duration_s <= 0:
            raise ValueError(f"MotionScript.move: duration must be positive, got {duration_s}")
        value = self._values[-1].copy()
        for name, target in targets.items():
            value[_CHANNEL_INDEX[name]] = target
        self._times.append(self._times[-1] + duration_s)
        self._values.append(value)
        self._via.append(via)
        return self._times[-1]

    def hold(self, duration_s: float) -> float:
        """Stay at the current posture for ``duration_s``; returns the new end time."""
        return self.move(duration_s)

    def build(self) -> Keyframes:
        t = np.asarray(self._times)
        v = np.vstack(self._values)
        rates = np.zeros_like(v)
        for i, via in enumerate(self._via):
            if via and 0 < i < len(t) - 1:
                rates[i] = (v[i + 1] - v[i - 1]) / (t[i + 1] - t[i - 1])
        return Keyframes(t, v, rates)


@dataclass(frozen=True)
class Sway:
    """Postural sway: per channel a sum of sinusoids between about 0.05 and 1.5 Hz.

    Amplitudes fall off as 1/f (slow drift dominates, as in quiet standing) and are scaled so each
    channel's RMS equals the requested value. The sum is tabulated at 50 Hz over the session and
    represented by a C2 cubic spline, which is what is evaluated (values, rates and accelerations are
    the spline's own derivatives, so they stay mutually consistent) at a fraction of the cost of
    summing sinusoids at every sample instant.
    """

    spline: CubicSpline | None

    @classmethod
    def random(
        cls, rng: np.random.Generator, rms: Mapping[str, float], duration_s: float, components: int = 14
    ) -> Sway:
        n = len(CHANNELS)
        freq = np.exp(rng.uniform(np.log(0.05), np.log(1.5), size=(n, components)))
        amp = 1.0 / freq * rng.uniform(0.5, 1.0, size=(n, components))
        scale = np.zeros(n)
        for name, value in rms.items():
            scale[_CHANNEL_INDEX[name]] = value
        amp *= (scale / np.sqrt(0.5 * np.sum(amp**2, axis=1)))[:, None]
        phase = rng.uniform(0.0, 2.0 * np.pi, size=(n, components))
        t = np.arange(-1.0, duration_s + 1.0, 0.02)
        values = np.sum(amp * np.sin(2.0 * np.pi * freq * t[:, None, None] + phase), axis=-1)
        return cls(CubicSpline(t, values, axis=0))

    @classmethod
    def none(cls) -> Sway:
        return cls(None)

    def evaluate(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Sway values, first and second derivatives at ``t_s``, each (n, channels)."""
        t = np.asarray(t_s, dtype=float)
        if self.spline is None:
            zero = np.zeros((len(t), len(CHANNELS)))
            return zero, zero, zero
        return self.spline(t), self.spline(t, 1), self.spline(t, 2)


@dataclass(frozen=True)
class BodyGeometry:
    """Where the joints and sensors sit on the segments, in metres, in segment frames.

    ``hip_half_width_m``: pelvis origin to each hip joint centre along Z. Sensor offsets are from the
    pelvis origin (pelvis sensor, on the sacrum) and from the measured hip joint centre (thigh
    sensor), for the right side; the left side mirrors Z.
    """

    hip_half_width_m: float = 0.085
    pelvis_sensor_m: tuple[float, float, float] = (-0.11, 0.05, 0.0)
    thigh_sensor_m: tuple[float, float, float] = (0.01, -0.22, 0.075)
    standing_height_m: float = 0.92


@dataclass(frozen=True)
class SegmentStates:
    """True segment motion at a set of times (all arrays have first dimension n)."""

    t_s: FloatArray
    channels: FloatArray
    """Scripted channels with sway, (n, len(CHANNELS)); degrees and metres."""
    r_earth_pelvis: FloatArray
    r_earth_femur: FloatArray
    w_pelvis_body_rad_s: FloatArray
    """Angular velocity of the pelvis in the pelvis frame."""
    w_femur_body_rad_s: FloatArray
    p_pelvis_earth_m: FloatArray
    """Position of the pelvis origin (midpoint of the hip joint centres) in ENU."""
    r_earth_thigh_skin: FloatArray
    """Frame of the skin under the thigh sensor: the femur frame, or with soft-tissue lag the femur
    frame turned back about its long axis by a fraction of the hip's axial rotation."""
    w_thigh_skin_body_rad_s: FloatArray


@dataclass(frozen=True)
class Kinematics:
    """Keyframes plus sway for one athlete of one side, facing ``heading_deg`` (CCW from East)."""

    keyframes: Keyframes
    side: str
    heading_deg: float
    sway: Sway = field(default_factory=Sway.none)
    geometry: BodyGeometry = field(default_factory=BodyGeometry)
    thigh_skin_lag: float = 0.0
    """Soft-tissue artefact: the fraction of the femur's axial rotation (relative to the pelvis) that
    the skin under the thigh sensor does not follow. 0 = sensor rigid on the bone."""

    @property
    def side_sign(self) -> float:
        return 1.0 if self.side == "right" else -1.0

    @property
    def duration_s(self) -> float:
        return float(self.keyframes.t_s[-1])

    @property
    def r_earth_pelvis_neutral(self) -> FloatArray:
        return rot_z(np.radians(np.array([self.heading_deg])))[0] @ _M_EARTH_NEUTRAL

    def channels(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """All channels with sway: values, rates and second derivatives at ``t_s``."""
        v, d, dd = self.keyframes.evaluate(t_s)
        sv, sd, sdd = self.sway.evaluate(t_s)
        return v + sv, d + sd, dd + sdd

    def evaluate(self, t_s: FloatArray) -> SegmentStates:
        """Orientations, body angular velocities and the pelvis position at ``t_s``."""
        t = np.atleast_1d(np.asarray(t_s, dtype=float))
        v, d, _ = self.channels(t)
        ang = np.radians(v[:, :_ANGLE_CHANNELS])
        rate = np.radians(d[:, :_ANGLE_CHANNELS])
        s = self.side_sign
        flex, add, rot = ang[:, 0], s * ang[:, 1], s * ang[:, 2]
        dflex, dadd, drot = rate[:, 0], s * rate[:, 1], s * rate[:, 2]
        tilt, obl, prot = ang[:, 3], ang[:, 4], ang[:, 5]

        r0 = self.r_earth_pelvis_neutral
        r_pelvis0_pelvis = cardan_zxy(tilt, obl, prot)
        r_earth_pelvis = r0 @ r_pelvis0_pelvis
        w_pelvis = cardan_zxy_body_rate(obl, prot, rate[:, 3], rate[:, 4], rate[:, 5])
        r_pelvis_femur = cardan_zxy(flex, add, rot)
        w_rel = cardan_zxy_body_rate(add, rot, dflex, dadd, drot)
        r_earth_femur = r_earth_pelvis @ r_pelvis_femur
        w_femur = np.einsum("nji,nj->ni", r_pelvis_femur, w_pelvis) + w_rel
        offset = np.array([0.0, self.geometry.standing_height_m, 0.0])
        p_pelvis = (v[:, _ANGLE_CHANNELS:] + offset) @ r0.T
        if self.thigh_skin_lag:
            r_femur_skin = rot_y(-self.thigh_skin_lag * rot)
            r_earth_skin = r_earth_femur @ r_femur_skin
            w_skin = np.einsum("nji,nj->ni", r_femur_skin, w_femur)
            w_skin[:, 1] -= self.thigh_skin_lag * drot
        else:
            r_earth_skin, w_skin = r_earth_femur, w_femur
        return SegmentStates(t, v, r_earth_pelvis, r_earth_femur, w_pelvis, w_femur, p_pelvis, r_earth_skin, w_skin)

    def _mirror(self, offset_m: tuple[float, float, float]) -> FloatArray:
        x, y, z = offset_m
        return np.array([x, y, self.side_sign * z])

    def sensor_positions(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Earth positions (m) of the pelvis sensor and the thigh sensor at ``t_s``, each (n, 3)."""
        st = self.evaluate(t_s)
        g = self.geometry
        p_pelvis_sensor = st.p_pelvis_earth_m + st.r_earth_pelvis @ np.array(g.pelvis_sensor_m)
        hip = st.p_pelvis_earth_m + st.r_earth_pelvis @ self._mirror((0.0, 0.0, g.hip_half_width_m))
        p_thigh_sensor = hip + st.r_earth_thigh_skin @ self._mirror(g.thigh_sensor_m)
        return p_pelvis_sensor, p_thigh_sensor

    def sensor_accelerations(self, t_s: FloatArray, h_s: float = 5e-4) -> tuple[FloatArray, FloatArray]:
        """Linear accelerations (m/s², ENU) of both sensor positions by a central second difference.

        Within a keyframe segment the error is O(h²) (~1e-6 m/s²); across a keyframe, where the jerk
        of a quintic segment steps, it is about ``jerk * h / 6``, a few mm/s² for brisk moves, well
        under accelerometer noise. Round-off stays near 1e-9 m/s².
        """
        t = np.asarray(t_s, dtype=float)
        pm = self.sensor_positions(t - h_s)
        p0 = self.sensor_positions(t)
        pp = self.sensor_positions(t + h_s)
        return (
            (pp[0] - 2.0 * p0[0] + pm[0]) / h_s**2,
            (pp[1] - 2.0 * p0[1] + pm[1]) / h_s**2,
        )
