"""Orientation fusion: conventions (ENU, sensor to earth, w,x,y,z), online == batch, VQF extras.

The synthetic sensor below is built from a known orientation trajectory ``q_true`` (sensor to ENU):
the accelerometer reads +g "up" rotated into the sensor frame, the magnetometer a field pointing
north and 60° down (northern hemisphere), the gyroscope the exact body-frame rate between samples.
A filter with a wrong frame convention (NWU instead of ENU, earth-to-sensor instead of
sensor-to-earth, gravity instead of specific force) cannot end up close to ``q_true``.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from sensorhub.errors import ConfigurationError, SensorhubError
from sensorhub.motion import fusion, quat
from sensorhub.motion.fusion_eval import error_angles_rad
from sensorhub.samples import ImuSamples

RATE_HZ = 50.0
G_ENU = np.array([0.0, 0.0, 9.81])
DIP_RAD = np.deg2rad(60.0)
MAG_ENU_UT = 50.0 * np.array([0.0, np.cos(DIP_RAD), -np.sin(DIP_RAD)])


def synthetic(
    q_true: NDArray[np.float64],
    *,
    bias_rad_s: tuple[float, float, float] = (0.0, 0.0, 0.0),
    seed: int = 0,
) -> ImuSamples:
    """IMU samples for the orientation trajectory ``q_true`` (n, 4) sampled at RATE_HZ, small noise."""
    n = len(q_true)
    q_sensor_earth = quat.conjugate(q_true)
    step = quat.multiply(q_sensor_earth[:-1], q_true[1:])
    gyr = np.vstack([np.zeros((1, 3)), quat.to_rotation(step).as_rotvec() * RATE_HZ])
    rng = np.random.default_rng(seed)
    return ImuSamples(
        t_s=np.arange(n) / RATE_HZ,
        acc_m_s2=quat.rotate(q_sensor_earth, G_ENU) + rng.normal(0.0, 0.05, (n, 3)),
        gyr_rad_s=gyr + np.asarray(bias_rad_s) + rng.normal(0.0, 0.003, (n, 3)),
        mag_uT=quat.rotate(q_sensor_earth, MAG_ENU_UT) + rng.normal(0.0, 0.3, (n, 3)),
    )


def moving_trajectory(duration_s: float, q_base: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """Smooth motion with heading swings of ±86° and tilts of ±34° / ±23° around ``q_base``."""
    t = np.arange(int(duration_s * RATE_HZ)) / RATE_HZ
    rotvec = np.stack([0.6 * np.sin(0.7 * t), 0.4 * np.sin(1.1 * t + 1.0), 1.5 * np.sin(0.3 * t)], axis=1)
    q = quat.from_rotation(Rotation.from_rotvec(rotvec))
    return q if q_base is None else quat.multiply(q_base, q)


def inclination_error_deg(q_est: NDArray[np.float64], q_true: NDArray[np.float64]) -> NDArray[np.float64]:
    """Tilt part of the error (BROAD's inclination error), i.e. heading ignored."""
    return np.rad2deg(error_angles_rad(q_est, q_true)[2])


ONLINE_METHODS = list(fusion.METHODS)


def test_initial_orientation_x_axis_north_has_heading_plus_90deg() -> None:
    # Sensor lying flat (z up) with its x axis pointing north: the field is along +x and down -z.
    mag = np.array([50 * np.cos(DIP_RAD), 0.0, -50 * np.sin(DIP_RAD)])
    q = fusion.initial_orientation([0.0, 0.0, 9.81], mag)
    np.testing.assert_allclose(quat.rotate(q, [1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-12)
    assert np.rad2deg(quat.heading_rad(q)) == pytest.approx(90.0)
    # Upside down (specific force along -z), x axis east: sensor z points down, y points south.
    mag_flipped = np.array([0.0, -50 * np.cos(DIP_RAD), 50 * np.sin(DIP_RAD)])
    q_flipped = fusion.initial_orientation([0.0, 0.0, -9.81], mag_flipped)
    np.testing.assert_allclose(quat.rotate(q_flipped, [0.0, 0.0, 1.0]), [0.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(quat.rotate(q_flipped, [1.0, 0.0, 0.0]), [1.0, 0.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("method", ONLINE_METHODS)
def test_each_method_converges_to_true_enu_orientation_from_a_wrong_start(method: str) -> None:
    # The first sample is rotated by 40° (a bump at switch-on), so every filter starts 40° off and
    # must be pulled to the truth by its accelerometer and magnetometer corrections; wrong frame
    # conventions in those corrections would converge elsewhere.
    q_base = quat.from_rotation(Rotation.from_euler("ZYX", [120.0, 15.0, -25.0], degrees=True))
    q_true = moving_trajectory(40.0, q_base)
    samples = synthetic(q_true)
    bump = quat.from_axis_angle([0.3, 0.2, 1.0], np.deg2rad(40.0))
    assert samples.mag_uT is not None
    samples.acc_m_s2[0] = quat.rotate(bump, samples.acc_m_s2[0])
    samples.mag_uT[0] = quat.rotate(bump, samples.mag_uT[0])

    q_est = fusion.fuse_batch(samples, method)
    err_deg = np.rad2deg(quat.relative_angle_rad(q_est, q_true))
    last_5_s = slice(-int(5 * RATE_HZ), None)
    assert err_deg[last_5_s].max() < 1.5
    # The filter really did start off (VQF low-passes its first samples, so it starts less far off).
    assert err_deg[2] > 2.5


@pytest.mark.parametrize("method", ONLINE_METHODS)
def test_six_axis_inclination_matches_and_heading_is_unconstrained(method: str) -> None:
    q_true = moving_trajectory(20.0)
    samples = synthetic(q_true, seed=3)
    result = fusion.fuse(samples, method, use_mag=False)
    assert not result.has_mag
    assert inclination_error_deg(result.q_earth_sensor, q_true)[int(3 * RATE_HZ) :].max() < 1.5


def test_offline_vqf_tracks_moving_sensor_with_gyro_bias() -> None:
    q_true = moving_trajectory(30.0)
    samples = synthetic(q_true, bias_rad_s=(0.004, -0.003, 0.005), seed=5)
    online = fusion.fuse(samples, "vqf")
    offline = fusion.fuse(samples, "vqf", offline=True)
    assert offline.offline and not online.offline
    err_on = np.rad2deg(quat.relative_angle_rad(online.q_earth_sensor, q_true))
    err_off = np.rad2deg(quat.relative_angle_rad(offline.q_earth_sensor, q_true))
    assert err_off.max() < 2.5 and err_on[int(5 * RATE_HZ) :].max() < 3.0
    # Non-causal processing knows the bias from the start, so it is better over the whole recording.
    assert np.sqrt(np.mean(err_off**2)) < np.sqrt(np.mean(err_on**2))


@pytest.mark.parametrize("method", ONLINE_METHODS)
@pytest.mark.parametrize("has_mag", [True, False])
def test_online_block_by_block_equals_batch(method: str, has_mag: bool) -> None:
    q_true = moving_trajectory(6.0)
    samples = synthetic(q_true, bias_rad_s=(0.01, 0.0, -0.01), seed=9)
    batch = fusion.fuse(samples, method, use_mag=has_mag)

    filt = fusion.OrientationFilter(method, RATE_HZ, has_mag)
    rng = np.random.default_rng(1)
    blocks = []
    start = 0
    while start < len(samples):
        stop = min(len(samples), start + int(rng.integers(1, 40)))  # 1-sample blocks included
        mag = samples.mag_uT[start:stop] if has_mag and samples.mag_uT is not None else None
        blocks.append(filt.update_block_detailed(samples.acc_m_s2[start:stop], samples.gyr_rad_s[start:stop], mag))
        start = stop
    assert filt.samples_seen == len(samples)
    online_q = np.vstack([b.q_earth_sensor for b in blocks])
    np.testing.assert_allclose(online_q, batch.q_earth_sensor, atol=1e-9, rtol=0)
    if method == "vqf":
        assert batch.rest is not None and batch.bias_rad_s is not None
        np.testing.assert_array_equal(np.concatenate([b.rest for b in blocks if b.rest is not None]), batch.rest)
        np.testing.assert_allclose(
            np.vstack([b.bias_rad_s for b in blocks if b.bias_rad_s is not None]), batch.bias_rad_s, atol=1e-12
        )


def test_single_sample_update_accepts_1d_vectors() -> None:
    filt = fusion.OrientationFilter("vqf", RATE_HZ, has_mag=False)
    q = filt.update_block([0.0, 9.81, 0.0], [0.0, 0.0, 0.0])
    assert q.shape == (1, 4)
    # Sensor y axis up: the estimate must map sensor y onto earth up.
    np.testing.assert_allclose(quat.rotate(q[0], [0.0, 1.0, 0.0]), [0.0, 0.0, 1.0], atol=1e-6)


def test_vqf_result_exposes_6d_heading_correction_rest_and_bias() -> None:
    # 12 s at rest (a true gyro bias of 0.6°/s on x), then 12 s of motion.
    bias = (np.deg2rad(0.6), 0.0, 0.0)
    q_base = quat.from_rotation(Rotation.from_euler("ZYX", [40.0, 10.0, 5.0], degrees=True))
    rest = np.tile(q_base, (int(12 * RATE_HZ), 1))
    q_true = np.vstack([rest, moving_trajectory(12.0, q_base)])
    samples = synthetic(q_true, bias_rad_s=bias, seed=2)
    result = fusion.fuse(samples, "vqf")
    assert result.q_6d is not None and result.delta_rad is not None
    assert result.rest is not None and result.bias_rad_s is not None and result.mag_dist is not None

    # 9D = heading rotation by delta applied on the earth side of the 6D estimate.
    recomposed = quat.multiply(quat.heading_rotation(result.delta_rad), result.q_6d)
    np.testing.assert_allclose(quat.relative_angle_rad(recomposed, result.q_earth_sensor), 0.0, atol=1e-6)
    # The 6D estimate has the right inclination even though its heading is arbitrary.
    assert inclination_error_deg(result.q_6d, q_true)[int(3 * RATE_HZ) :].max() < 1.5

    n_rest = len(rest)
    assert result.rest[int(4 * RATE_HZ) : n_rest].all()
    assert not result.rest[n_rest + int(1 * RATE_HZ) :].any()
    np.testing.assert_allclose(result.bias_rad_s[n_rest - 1], bias, atol=np.deg2rad(0.1))
    # VQF reports "disturbed" until it has accepted a field reference, which needs motion
    # (magNewMinGyr) for magNewFirstTime (5 s); once moving, the clean field is accepted.
    assert result.mag_dist[:n_rest].all() and not result.mag_dist[-int(2 * RATE_HZ) :].any()


def test_vqf_flags_magnetic_disturbance_and_params_pass_through() -> None:
    q_true = moving_trajectory(20.0)
    samples = synthetic(q_true, seed=4)
    assert samples.mag_uT is not None
    # A magnet next to the sensor from 8 s to 12 s: field norm doubles along a fixed sensor axis.
    disturbed = slice(int(8 * RATE_HZ), int(12 * RATE_HZ))
    samples.mag_uT[disturbed] += np.array([40.0, -30.0, 20.0])
    result = fusion.fuse(samples, "vqf")
    assert result.mag_dist is not None
    assert result.mag_dist[disturbed].mean() > 0.9
    assert not result.mag_dist[int(6 * RATE_HZ) : int(8 * RATE_HZ)].any()
    err_deg = np.rad2deg(quat.relative_angle_rad(result.q_earth_sensor, q_true))
    # Turning rejection off through the pass-through parameters lets the magnet pull the heading.
    plain = fusion.fuse(samples, "vqf", params={"magDistRejectionEnabled": False})
    err_plain_deg = np.rad2deg(quat.relative_angle_rad(plain.q_earth_sensor, q_true))
    assert err_deg[disturbed].max() < 8.0
    assert err_plain_deg[disturbed].max() > 20.0


def test_gaps_keep_state_and_output_one_row_per_sample() -> None:
    q_true = moving_trajectory(20.0)
    full = synthetic(q_true, seed=6)
    assert full.mag_uT is not None
    keep = np.ones(len(full), dtype=bool)
    keep[300:330] = False  # 0.6 s lost
    gap_before = np.zeros(int(keep.sum()), dtype=bool)
    gap_before[300] = True
    samples = ImuSamples(full.t_s[keep], full.acc_m_s2[keep], full.gyr_rad_s[keep], full.mag_uT[keep], gap_before)
    q = fusion.fuse_batch(samples, "vqf")
    assert q.shape == (len(samples), 4)
    err_deg = np.rad2deg(quat.relative_angle_rad(q, q_true[keep]))
    assert err_deg[-int(5 * RATE_HZ) :].max() < 1.5


def test_errors_name_the_problem() -> None:
    q_true = moving_trajectory(1.0)
    samples = synthetic(q_true)
    with pytest.raises(ConfigurationError, match="unknown fusion method 'kalman'"):
        fusion.fuse(samples, "kalman")
    with pytest.raises(ConfigurationError, match="restThGyro"):
        fusion.OrientationFilter("vqf", RATE_HZ, True, params={"restThGyro": 1.0})
    with pytest.raises(ConfigurationError, match="ekf: unknown parameter.*magnetic_ref"):
        fusion.OrientationFilter("ekf", RATE_HZ, True, params={"magnetic_ref": 60.0})
    with pytest.raises(ConfigurationError, match="mahony: invalid parameters"):
        fusion.OrientationFilter("mahony", RATE_HZ, True, params={"k_I": 0.0})  # ahrs rejects k_I = 0
    with pytest.raises(ConfigurationError, match="only available for vqf"):
        fusion.fuse(samples, "madgwick", offline=True)
    with pytest.raises(ConfigurationError, match="sample rate"):
        fusion.OrientationFilter("vqf", 0.0, True)
    filt = fusion.OrientationFilter("mahony", RATE_HZ, has_mag=True)
    with pytest.raises(SensorhubError, match="no magnetometer"):
        filt.update_block(samples.acc_m_s2, samples.gyr_rad_s)
    bad = samples.gyr_rad_s.copy()
    bad[7, 1] = np.nan
    with pytest.raises(fusion.FusionInputError, match="gyroscope .* sample 7"):
        filt.update_block(samples.acc_m_s2, bad, samples.mag_uT)
    with pytest.raises(fusion.FusionInputError, match=r"shape \(50, 2\)"):
        filt.update_block(samples.acc_m_s2, samples.gyr_rad_s[:, :2], samples.mag_uT)
    assert filt.samples_seen == 0  # rejected blocks left the state untouched
    with pytest.raises(fusion.FusionInputError, match="no direction"):
        filt.update_block(np.zeros((1, 3)), np.zeros((1, 3)), np.ones((1, 3)))
