"""Whole-session kinematics of the pelvis and the measured femur, as smooth functions of time.

A session is scripted as keyframes of nine channels (:data:`CHANNELS`): the three hip angles of the
measured side, the pelvis's own three Cardan angles relative to its standing neutral and the pelvis
origin's position. Between keyframes each channel follows a minimum-jerk (quintic) profile, so
velocity and acceleration are continuous and zero at each keyframe. Postural sway is added as a sum
of slow sinusoids. Both parts are analytic, so every channel and its rate can be evaluated exactly
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

from sensorhub.sim.rotations import FloatArray, cardan_zxy, cardan_zxy_body_rate, rot_z

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
    """Keyframe times (s, strictly increasing) and channel values, shape (k, len(CHANNELS))."""

    t_s: FloatArray
    values: FloatArray

    def evaluate(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Channel values, first and second time derivatives at ``t_s`` (each shape (n, channels)).

        Minimum-jerk blend ``v0 + (v1 - v0) * (10 s^3 - 15 s^4 + 6 s^5)`` between neighbouring
        keyframes; before the first and after the last keyframe the values hold.
        """
        t = np.asarray(t_s, dtype=float)
        k = np.clip(np.searchsorted(self.t_s, t, side="right") - 1, 0, len(self.t_s) - 2)
        t0 = self.t_s[k]
        dt = self.t_s[k + 1] - t0
        s = np.clip((t - t0) / dt, 0.0, 1.0)
        inside = ((t >= self.t_s[0]) & (t <= self.t_s[-1])).astype(float)
        shape = s * s * s * (10.0 - 15.0 * s + 6.0 * s * s)
        dshape = 30.0 * s * s * (1.0 - s) ** 2 / dt * inside
        ddshape = 60.0 * s * (1.0 - s) * (1.0 - 2.0 * s) / dt**2 * inside
        delta = self.values[k + 1] - self.values[k]
        value = self.values[k] + delta * shape[:, None]
        return value, delta * dshape[:, None], delta * ddshape[:, None]


class MotionScript:
    """Builds :class:`Keyframes` move by move, keeping the current time and posture.

    ``move(duration, hip_rotation=30)`` ends a minimum-jerk transition ``duration`` seconds later at the
    given channel values; channels not named keep their value. ``hold(duration)`` stays put.
    """

    def __init__(self, initial: Mapping[str, float] | None = None) -> None:
        start = np.zeros(len(CHANNELS))
        for name, value in (initial or {}).items():
            start[_CHANNEL_INDEX[name]] = value
        self._times: list[float] = [0.0]
        self._values: list[FloatArray] = [start]

    @property
    def t_s(self) -> float:
        """End time of the script so far."""
        return self._times[-1]

    def current(self, name: str) -> float:
        """Value of channel ``name`` at the end of the script so far."""
        return float(self._values[-1][_CHANNEL_INDEX[name]])

    def move(self, duration_s: float, **targets: float) -> float:
        """Append a transition to ``targets`` lasting ``duration_s``; returns the new end time."""
        if duration_s <= 0:
            raise ValueError(f"MotionScript.move: duration must be positive, got {duration_s}")
        value = self._values[-1].copy()
        for name, target in targets.items():
            value[_CHANNEL_INDEX[name]] = target
        self._times.append(self._times[-1] + duration_s)
        self._values.append(value)
        return self._times[-1]

    def hold(self, duration_s: float) -> float:
        """Stay at the current posture for ``duration_s``; returns the new end time."""
        return self.move(duration_s)

    def build(self) -> Keyframes:
        return Keyframes(np.asarray(self._times), np.vstack(self._values))


@dataclass(frozen=True)
class Sway:
    """Postural sway: per channel a sum of sinusoids between about 0.05 and 1.5 Hz.

    Amplitudes fall off as 1/f (slow drift dominates, as in quiet standing) and are scaled so each
    channel's RMS equals the requested value.
    """

    freq_hz: FloatArray
    """(channels, components)"""
    amplitude: FloatArray
    phase_rad: FloatArray

    @classmethod
    def random(cls, rng: np.random.Generator, rms: Mapping[str, float], components: int = 14) -> Sway:
        n = len(CHANNELS)
        freq = np.exp(rng.uniform(np.log(0.05), np.log(1.5), size=(n, components)))
        amp = 1.0 / freq * rng.uniform(0.5, 1.0, size=(n, components))
        scale = np.zeros(n)
        for name, value in rms.items():
            scale[_CHANNEL_INDEX[name]] = value
        amp *= (scale / np.sqrt(0.5 * np.sum(amp**2, axis=1)))[:, None]
        return cls(freq, amp, rng.uniform(0.0, 2.0 * np.pi, size=(n, components)))

    @classmethod
    def none(cls) -> Sway:
        n = len(CHANNELS)
        return cls(np.ones((n, 1)), np.zeros((n, 1)), np.zeros((n, 1)))

    def evaluate(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Sway values, first and second derivatives at ``t_s``, each (n, channels)."""
        w = 2.0 * np.pi * self.freq_hz  # (c, k)
        arg = np.asarray(t_s, dtype=float)[:, None, None] * w[None] + self.phase_rad[None]
        s, c = np.sin(arg), np.cos(arg)
        value = np.sum(self.amplitude * s, axis=-1)
        rate = np.sum(self.amplitude * w * c, axis=-1)
        acc = -np.sum(self.amplitude * w * w * s, axis=-1)
        return value, rate, acc


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


@dataclass(frozen=True)
class Kinematics:
    """Keyframes plus sway for one athlete of one side, facing ``heading_deg`` (CCW from East)."""

    keyframes: Keyframes
    side: str
    heading_deg: float
    sway: Sway = field(default_factory=Sway.none)
    geometry: BodyGeometry = field(default_factory=BodyGeometry)

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
        return SegmentStates(t, v, r_earth_pelvis, r_earth_femur, w_pelvis, w_femur, p_pelvis)

    def _mirror(self, offset_m: tuple[float, float, float]) -> FloatArray:
        x, y, z = offset_m
        return np.array([x, y, self.side_sign * z])

    def sensor_positions(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Earth positions (m) of the pelvis sensor and the thigh sensor at ``t_s``, each (n, 3)."""
        st = self.evaluate(t_s)
        g = self.geometry
        p_pelvis_sensor = st.p_pelvis_earth_m + st.r_earth_pelvis @ np.array(g.pelvis_sensor_m)
        hip = st.p_pelvis_earth_m + st.r_earth_pelvis @ self._mirror((0.0, 0.0, g.hip_half_width_m))
        p_thigh_sensor = hip + st.r_earth_femur @ self._mirror(g.thigh_sensor_m)
        return p_pelvis_sensor, p_thigh_sensor

    def sensor_accelerations(self, t_s: FloatArray, h_s: float = 2e-3) -> tuple[FloatArray, FloatArray]:
        """Linear accelerations (m/s², ENU) of both sensor positions by a central second difference.

        The trajectories are smooth (quintic keyframes, low-frequency sway), so with ``h = 2 ms`` the
        truncation error is below 1e-3 m/s², far under accelerometer noise.
        """
        t = np.asarray(t_s, dtype=float)
        pm = self.sensor_positions(t - h_s)
        p0 = self.sensor_positions(t)
        pp = self.sensor_positions(t + h_s)
        return (
            (pp[0] - 2.0 * p0[0] + pm[0]) / h_s**2,
            (pp[1] - 2.0 * p0[1] + pm[1]) / h_s**2,
        )
