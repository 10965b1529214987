"""IMU synthesis: what a strapped-on consumer IMU measures along a true segment trajectory.

* Gyroscope: the sensor's body-frame angular velocity (analytic, see :mod:`sensorhub.sim.kinematics`)
  plus a constant bias, a slow bias random walk, white noise and a small scale error.
* Accelerometer: specific force ``R_earth_sensor^T (a_lin + g up)`` where ``a_lin`` is the linear
  acceleration of the sensor's own position (lever arm from the joints included), plus bias, scale
  error and white noise.
* Magnetometer: ``R_earth_sensor^T (m_earth + disturbance)`` plus residual hard iron and noise. The
  earth field is ENU, pointing north and down by the dip angle. A disturbance is a magnetic dipole
  fixed in the room (a metal chair frame under the seat), so it ramps in as the thigh approaches it
  and changes slowly with the thigh's pose.

Default error levels are typical of BMI270 / ICM-20948 class parts (data-sheet noise densities,
residual offsets after factory trim); see docs/simulator.md. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sensorhub.sim.kinematics import Kinematics
from sensorhub.sim.rotations import FloatArray, random_rotation, rot_y

GRAVITY_M_S2 = 9.81
MU0_OVER_4PI = 1e-7  # T·m/A


@dataclass(frozen=True)
class ImuErrorModel:
    """Sensor error levels. Noise densities are per √Hz; the per-sample σ uses a bandwidth of rate/2."""

    gyr_noise_density_dps_rthz: float = 0.012
    gyr_bias_sigma_dps: float = 0.35
    gyr_bias_walk_dps_rts: float = 0.002
    """Bias random walk, °/s per √s (a few °/h of bias instability)."""
    gyr_scale_sigma: float = 0.003
    acc_noise_density_ug_rthz: float = 180.0
    acc_bias_sigma_m_s2: float = 0.04
    acc_scale_sigma: float = 0.003
    mag_noise_uT: float = 0.25
    mag_hard_iron_sigma_uT: float = 0.6

    @classmethod
    def ideal(cls) -> ImuErrorModel:
        """No noise, bias or scale error: the sensor reads the physics exactly."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def scaled_noise(self, factor: float) -> ImuErrorModel:
        return replace(
            self,
            gyr_noise_density_dps_rthz=self.gyr_noise_density_dps_rthz * factor,
            acc_noise_density_ug_rthz=self.acc_noise_density_ug_rthz * factor,
            mag_noise_uT=self.mag_noise_uT * factor,
        )


@dataclass(frozen=True)
class DipoleDisturbance:
    """A magnetic dipole fixed in the earth frame: position (m, ENU) and moment (A·m², ENU)."""

    position_m: FloatArray
    moment_A_m2: FloatArray

    def field_uT(self, p_m: FloatArray) -> FloatArray:
        """Field (µT, ENU) of the dipole at positions ``p_m`` (n, 3)."""
        r = np.asarray(p_m) - self.position_m
        d = np.linalg.norm(r, axis=-1, keepdims=True)
        u = r / d
        b_t = MU0_OVER_4PI * (3.0 * u * (u @ self.moment_A_m2)[:, None] - self.moment_A_m2) / d**3
        return b_t * 1e6

    @classmethod
    def placed(
        cls, rng: np.random.Generator, sensor_position_m: FloatArray, magnitude_uT: float, distance_m: float = 0.3
    ) -> DipoleDisturbance:
        """A dipole ``distance_m`` below ``sensor_position_m`` whose field there has ``magnitude_uT``."""
        pos = np.asarray(sensor_position_m, dtype=float) - np.array([0.0, 0.0, distance_m])
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        unit = cls(pos, direction)
        b = np.linalg.norm(unit.field_uT(np.asarray(sensor_position_m, dtype=float)[None])[0])
        return cls(pos, direction * magnitude_uT / b)


@dataclass(frozen=True)
class MagneticEnvironment:
    """The earth field (ENU, µT) and an optional disturbance seen by one of the sensors."""

    earth_uT: FloatArray
    disturbance: DipoleDisturbance | None = None
    disturbed_sensor: str = "thigh"

    @classmethod
    def earth(cls, total_uT: float = 49.0, dip_deg: float = 64.0) -> MagneticEnvironment:
        dip = np.radians(dip_deg)
        return cls(np.array([0.0, total_uT * np.cos(dip), -total_uT * np.sin(dip)]))


# Nominal mounts: sensor axes expressed in the segment frame (columns = sensor x, y, z).
# Pelvis: on the sacrum, x along the sacrum (up, inclined ~25° forward like the sacrum), z out of the
# skin (posterior). Thigh: on the lateral thigh, x down the thigh, z out of the skin (lateral), turned
# ~15° towards the front. Neither is aligned with the segment axes.
def nominal_mount(segment: str, side: str) -> FloatArray:
    """Nominal ``R_segment_sensor`` (sensor axes in the segment frame) before strap-on variation."""
    if segment == "pelvis":
        # x up (Y), z posterior (-X), y = z cross x = left (-Z); then the sacrum's ~25° inclination.
        base = np.column_stack([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])
        return _rot_z_deg(25.0) @ rot_y(np.radians(np.array([5.0])))[0] @ base
    s = 1.0 if side == "right" else -1.0
    # x down (-Y), z lateral (s*Z), y = z cross x.
    x = np.array([0.0, -1.0, 0.0])
    z = np.array([0.0, 0.0, s])
    base = np.column_stack([x, np.cross(z, x), z])
    return rot_y(np.radians(np.array([s * 15.0])))[0] @ base


def _rot_z_deg(deg: float) -> FloatArray:
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def random_mount(rng: np.random.Generator, segment: str, side: str, spread_deg: float = 20.0) -> FloatArray:
    """``R_segment_sensor``: the nominal mount turned by about ``spread_deg`` about a random axis."""
    return nominal_mount(segment, side) @ random_rotation(rng, spread_deg)


@dataclass(frozen=True)
class ImuReadings:
    """Synthetic readings of one sensor at its (true-time) sample instants."""

    t_true_s: FloatArray
    acc_m_s2: FloatArray
    gyr_rad_s: FloatArray
    mag_uT: FloatArray | None
    r_earth_sensor: FloatArray
    """True orientation at each sample (for tests and truth checks)."""


def synthesize_imu(
    kinematics: Kinematics,
    segment: str,
    t_true_s: FloatArray,
    r_segment_sensor: FloatArray,
    errors: ImuErrorModel,
    rng: np.random.Generator,
    rate_hz: float,
    magnetic: MagneticEnvironment | None,
) -> ImuReadings:
    """Readings of the sensor on ``segment`` ("pelvis" or "thigh") at true times ``t_true_s``.

    ``magnetic=None`` makes a 6-axis sensor. ``rate_hz`` sets the per-sample noise from the noise
    densities and the bias random-walk step.
    """
    t = np.asarray(t_true_s, dtype=float)
    states = kinematics.evaluate(t)
    # The thigh sensor sits on the skin, which follows the femur unless soft-tissue lag is modelled.
    r_earth_seg = states.r_earth_pelvis if segment == "pelvis" else states.r_earth_thigh_skin
    w_seg = states.w_pelvis_body_rad_s if segment == "pelvis" else states.w_thigh_skin_body_rad_s
    r_earth_sensor = r_earth_seg @ r_segment_sensor
    gyr = w_seg @ r_segment_sensor  # R_seg_sensor^T w, row-wise

    acc_pelvis, acc_thigh = kinematics.sensor_accelerations(t)
    a_lin = acc_pelvis if segment == "pelvis" else acc_thigh
    f_earth = a_lin + np.array([0.0, 0.0, GRAVITY_M_S2])
    acc = np.einsum("nji,nj->ni", r_earth_sensor, f_earth)

    n = len(t)
    sigma_scale = np.sqrt(rate_hz / 2.0)
    dt = 1.0 / rate_hz
    gyr_bias = np.radians(rng.normal(0.0, errors.gyr_bias_sigma_dps, 3))
    gyr_walk = np.cumsum(rng.normal(0.0, np.radians(errors.gyr_bias_walk_dps_rts) * np.sqrt(dt), (n, 3)), axis=0)
    gyr_noise = rng.normal(0.0, np.radians(errors.gyr_noise_density_dps_rthz) * sigma_scale, (n, 3))
    gyr = gyr * (1.0 + rng.normal(0.0, errors.gyr_scale_sigma, 3)) + gyr_bias + gyr_walk + gyr_noise

    acc_bias = rng.normal(0.0, errors.acc_bias_sigma_m_s2, 3)
    acc_noise = rng.normal(0.0, errors.acc_noise_density_ug_rthz * 1e-6 * GRAVITY_M_S2 * sigma_scale, (n, 3))
    acc = acc * (1.0 + rng.normal(0.0, errors.acc_scale_sigma, 3)) + acc_bias + acc_noise

    mag: FloatArray | None = None
    if magnetic is not None:
        field = np.broadcast_to(magnetic.earth_uT, (n, 3)).copy()
        if magnetic.disturbance is not None and magnetic.disturbed_sensor == segment:
            p_pelvis_sensor, p_thigh_sensor = kinematics.sensor_positions(t)
            field += magnetic.disturbance.field_uT(p_pelvis_sensor if segment == "pelvis" else p_thigh_sensor)
        mag = np.einsum("nji,nj->ni", r_earth_sensor, field)
        mag += rng.normal(0.0, errors.mag_hard_iron_sigma_uT, 3) + rng.normal(0.0, errors.mag_noise_uT, (n, 3))
    return ImuReadings(t, acc, gyr, mag, r_earth_sensor)
