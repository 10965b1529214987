"""Physics of the simulator: its sensors must read what the true motion implies.

Each test checks the synthetic data against an independent route to the same quantity (integrating
the gyroscope, rigid-body kinematics, the earth field model, re-decomposing orientations).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sensorhub.sim.imu import (
    GRAVITY_M_S2,
    ImuErrorModel,
    MagneticEnvironment,
    random_mount,
    synthesize_imu,
)
from sensorhub.sim.kinematics import CHANNELS, Sway
from sensorhub.sim.rotations import (
    cardan_zxy,
    cardan_zxy_body_rate,
    matrix_to_cardan_zxy,
)
from sensorhub.sim.scenario import Scenario, build_scenario
from sensorhub.sim.truth import pelvis_excursion_deg, truth_angles_deg


@pytest.fixture(
    scope="module",
    params=[("seated_rotation", "right"), ("standing_rotation", "left"), ("supine_rotation", "left"),
            ("hip_90_90", "right"), ("long_sitting_rotation", "left")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def scenario(request: pytest.FixtureRequest) -> Scenario:
    drill, side = request.param
    return build_scenario(drill, side, np.random.default_rng(5), reps=4, compensation_reps=(2, 4))


def test_cardan_rate_matches_finite_difference_of_orientation() -> None:
    rng = np.random.default_rng(0)
    ang = rng.uniform(-1.2, 1.2, (50, 3))
    rate = rng.uniform(-3, 3, (50, 3))
    h = 1e-6
    r0 = cardan_zxy(*ang.T)
    r1 = cardan_zxy(*(ang + h * rate).T)
    w_fd = Rotation.from_matrix(np.einsum("nji,njk->nik", r0, r1)).as_rotvec() / h
    w = cardan_zxy_body_rate(ang[:, 1], ang[:, 2], *rate.T)
    np.testing.assert_allclose(w, w_fd, atol=1e-5)
    z, x, y = matrix_to_cardan_zxy(r0)
    np.testing.assert_allclose(np.column_stack([z, x, y]), ang, atol=1e-12)


def test_keyframe_rates_are_derivatives_of_values(scenario: Scenario) -> None:
    kin = scenario.kinematics
    t = np.linspace(0.0, kin.duration_s, 4001)
    h = 1e-5
    _, d, dd = kin.channels(t)
    vp, dp, _ = kin.channels(t + h)
    vm, dm, _ = kin.channels(t - h)
    np.testing.assert_allclose(d, (vp - vm) / (2 * h), atol=2e-4)
    np.testing.assert_allclose(dd, (dp - dm) / (2 * h), atol=2e-2)


def _integrate_body_rate(r0: np.ndarray, t: np.ndarray, w_mid: np.ndarray) -> np.ndarray:
    """Orientation by chaining exact rotations over each step with the mid-step body rate.

    q_{k+1} = q_k * exp(w_mid dt / 2) (Hamilton, x y z w); a plain-float loop is fast enough.
    """
    steps = Rotation.from_rotvec(w_mid * np.diff(t)[:, None]).as_quat().tolist()
    x, y, z, w = Rotation.from_matrix(r0).as_quat().tolist()
    out = [(x, y, z, w)]
    for bx, by, bz, bw in steps:
        x, y, z, w = (
            w * bx + x * bw + y * bz - z * by,
            w * by - x * bz + y * bw + z * bx,
            w * bz + x * by - y * bx + z * bw,
            w * bw - x * bx - y * by - z * bz,
        )
        out.append((x, y, z, w))
    return Rotation.from_quat(np.array(out)).as_matrix()


@pytest.mark.parametrize("segment", ["pelvis", "thigh"])
def test_integrating_the_gyroscope_reproduces_the_orientation(scenario: Scenario, segment: str) -> None:
    kin = scenario.kinematics
    dt = 4e-3
    t = np.arange(0.0, kin.duration_s, dt)
    mount = random_mount(np.random.default_rng(1), segment, kin.side)
    t_mid = t[:-1] + dt / 2
    ideal = ImuErrorModel.ideal()
    gyr_mid = synthesize_imu(kin, segment, t_mid, mount, ideal, np.random.default_rng(2), 500.0, None).gyr_rad_s
    truth = synthesize_imu(kin, segment, t, mount, ideal, np.random.default_rng(2), 500.0, None).r_earth_sensor
    integrated = _integrate_body_rate(truth[0], t, gyr_mid)
    rel = np.einsum("nji,njk->nik", truth, integrated)
    err_deg = np.degrees(np.linalg.norm(Rotation.from_matrix(rel).as_rotvec(), axis=1))
    assert err_deg.max() < 0.05, f"gyro integration drifts {err_deg.max():.3f}° from the true orientation"


def test_accelerometer_reads_gravity_up_at_rest(scenario: Scenario) -> None:
    kin = replace(scenario.kinematics, sway=Sway.none())
    static_end = scenario.phases["static"][0][1]
    t = np.linspace(0.2, static_end - 0.2, 200)
    for segment in ("pelvis", "thigh"):
        mount = random_mount(np.random.default_rng(3), segment, kin.side)
        r = synthesize_imu(kin, segment, t, mount, ImuErrorModel.ideal(), np.random.default_rng(0), 100.0, None)
        np.testing.assert_allclose(np.linalg.norm(r.acc_m_s2, axis=1), GRAVITY_M_S2, atol=1e-6)
        up_in_sensor = np.einsum("nji,j->ni", r.r_earth_sensor, np.array([0.0, 0.0, 1.0]))
        np.testing.assert_allclose(r.acc_m_s2 / GRAVITY_M_S2, up_in_sensor, atol=1e-7)
        np.testing.assert_allclose(r.gyr_rad_s, 0.0, atol=1e-12)


def test_accelerometer_at_rest_with_sway_and_noise_is_near_gravity(scenario: Scenario) -> None:
    kin = scenario.kinematics
    t = np.arange(0.2, scenario.phases["static"][0][1] - 0.2, 0.01)
    mount = random_mount(np.random.default_rng(3), "pelvis", kin.side)
    r = synthesize_imu(kin, "pelvis", t, mount, ImuErrorModel(), np.random.default_rng(0), 100.0, None)
    norm = np.linalg.norm(r.acc_m_s2, axis=1)
    assert abs(norm.mean() - GRAVITY_M_S2) < 0.15
    assert 0.005 < norm.std() < 0.08  # white noise of a consumer part plus sway, not a perfect sensor


def test_thigh_acceleration_follows_rigid_body_kinematics(scenario: Scenario) -> None:
    """With the pelvis still, the thigh sensor accelerates as alpha x r + w x (w x r) about the hip."""
    kin = replace(scenario.kinematics, sway=Sway.none())
    t0, t1 = scenario.phases["functional"][0]  # leg swings; pelvis does not move
    t = np.linspace(t0, t1, 400)
    _, a_thigh = kin.sensor_accelerations(t)
    st = kin.evaluate(t)
    h = 1e-5
    w_earth = np.einsum("nij,nj->ni", st.r_earth_femur, st.w_femur_body_rad_s)
    sp, sm = kin.evaluate(t + h), kin.evaluate(t - h)
    alpha = (
        np.einsum("nij,nj->ni", sp.r_earth_femur, sp.w_femur_body_rad_s)
        - np.einsum("nij,nj->ni", sm.r_earth_femur, sm.w_femur_body_rad_s)
    ) / (2 * h)
    geometry = kin.geometry
    lever_femur = np.array(geometry.thigh_sensor_m) * np.array([1.0, 1.0, kin.side_sign])
    r_earth = st.r_earth_femur @ lever_femur
    expected = np.cross(alpha, r_earth) + np.cross(w_earth, np.cross(w_earth, r_earth))
    np.testing.assert_allclose(a_thigh, expected, atol=5e-3)
    assert np.abs(expected).max() > 1.0  # the swings do accelerate the sensor noticeably


def test_magnetometer_norm_and_dip(scenario: Scenario) -> None:
    kin = scenario.kinematics
    t = np.arange(0.0, kin.duration_s, 0.05)
    env = MagneticEnvironment.earth(49.0, 64.0)
    for segment in ("pelvis", "thigh"):
        mount = random_mount(np.random.default_rng(4), segment, kin.side)
        r = synthesize_imu(kin, segment, t, mount, ImuErrorModel.ideal(), np.random.default_rng(0), 20.0, env)
        assert r.mag_uT is not None
        np.testing.assert_allclose(np.linalg.norm(r.mag_uT, axis=1), 49.0, rtol=1e-9)
        up = np.einsum("nji,j->ni", r.r_earth_sensor, np.array([0.0, 0.0, 1.0]))
        dip = np.degrees(np.arcsin(-np.sum(r.mag_uT * up, axis=1) / 49.0))
        np.testing.assert_allclose(dip, 64.0, atol=1e-6)


def test_truth_angles_recomputed_from_orientations_match_the_script(scenario: Scenario) -> None:
    kin = scenario.kinematics
    t = np.arange(0.0, kin.duration_s, 0.01)
    truth = truth_angles_deg(kin, t)
    scripted, _, _ = kin.channels(t)
    # Hip angles and pelvis angles as scripted (sway included); the truth is decomposed from the
    # simulated segment orientations, so this checks build and decomposition against each other.
    np.testing.assert_allclose(truth[:, 1:7], scripted[:, :6], atol=1e-9)
    assert CHANNELS[:6] == ("hip_flexion", "hip_adduction", "hip_rotation", "pelvis_tilt",
                            "pelvis_obliquity", "pelvis_rotation")


def test_right_hip_internal_rotation_seated_moves_the_foot_laterally() -> None:
    """Anatomical sign check: seated, internal rotation swings the foot outwards (to the right for a right hip)."""
    for side, lateral in (("right", 1.0), ("left", -1.0)):
        sc = build_scenario("seated_rotation", side, np.random.default_rng(9), reps=1, compensation_reps=(),
                            sway=False)
        kin = sc.kinematics
        rep = sc.reps[0]
        t_neutral = rep.t_start_s
        ir = truth_angles_deg(kin, np.linspace(rep.t_start_s, rep.t_end_s, 2000))
        t_ir = np.linspace(rep.t_start_s, rep.t_end_s, 2000)[np.argmax(ir[:, 3])]
        st = kin.evaluate(np.array([t_neutral, t_ir]))
        # Knee 0.45 m down the femur, shank hanging from it along -X of the femur (knee flexed 90°).
        knee = st.r_earth_femur @ np.array([0.0, -0.45, 0.0])
        foot = knee + st.r_earth_femur @ np.array([-0.42, 0.0, 0.0])
        right_earth = kin.r_earth_pelvis_neutral @ np.array([0.0, 0.0, 1.0])
        shift = (foot[1] - foot[0]) @ right_earth
        assert lateral * shift > 0.15, f"{side}: internal rotation moved the foot {shift:+.2f} m to the right"


def test_reps_count_compensation_and_pelvis_excursion(scenario: Scenario) -> None:
    kin = scenario.kinematics
    assert len(scenario.reps) == 4
    assert [r.compensation for r in scenario.reps] == [False, True, False, True]
    for rep in scenario.reps:
        t = np.linspace(rep.t_start_s, rep.t_end_s, 1500)
        excursion = pelvis_excursion_deg(kin, t, rep.t_start_s).max()
        if rep.compensation:
            assert excursion > 10.0
        else:
            assert excursion < 4.0
        rot = truth_angles_deg(kin, t)[:, 3]
        assert abs(rot.max() - rep.internal_target_deg) < 1.5
        assert abs(-rot.min() - rep.external_target_deg) < 1.5


def test_drill_postures(scenario: Scenario) -> None:
    """Where the femur points during the drill's neutral, by drill (earth frame, up = +z)."""
    kin = scenario.kinematics
    st = kin.evaluate(np.array([scenario.drill_start_s]))
    femur_down = st.r_earth_femur[0] @ np.array([0.0, -1.0, 0.0])  # hip -> knee
    pelvis_up = st.r_earth_pelvis[0] @ np.array([0.0, 1.0, 0.0])
    expected = {
        "seated_rotation": (0.0, 1.0),  # thigh about horizontal, trunk upright
        "standing_rotation": (-1.0, 1.0),  # thigh hanging, trunk upright
        "supine_rotation": (1.0, 0.0),  # knee above the hip, lying on the back
        "hip_90_90": (0.35, 1.0),  # knees up while sitting on the floor
        "long_sitting_rotation": (0.0, 1.0),  # legs straight out on the floor, trunk upright
    }[scenario.drill]
    assert femur_down[2] == pytest.approx(expected[0], abs=0.35)
    assert pelvis_up[2] == pytest.approx(expected[1], abs=0.25)
    first = scenario.reps[0]
    t = np.linspace(first.t_start_s, first.t_end_s, 600)
    rot = truth_angles_deg(kin, t)[:, 3]
    first_is_internal = np.argmax(rot) < np.argmin(rot)
    assert first_is_internal == (scenario.drill != "hip_90_90")


def test_soft_tissue_lag_turns_the_thigh_sensor_back_about_the_femur(scenario: Scenario) -> None:
    """With lag k the sensor rotates by (1 - k) of the hip's axial rotation; its gyro stays consistent."""
    k = 0.25
    kin = replace(scenario.kinematics, thigh_skin_lag=k)
    rep = scenario.reps[0]
    dt = 2e-3
    t = np.arange(rep.t_start_s, rep.t_end_s, dt)
    mount = random_mount(np.random.default_rng(6), "thigh", kin.side)
    ideal = ImuErrorModel.ideal()
    r = synthesize_imu(kin, "thigh", t, mount, ideal, np.random.default_rng(0), 500.0, None)
    st = kin.evaluate(t)
    r_femur_sensor = np.einsum("nji,njk->nik", st.r_earth_femur, r.r_earth_sensor) @ mount.T
    axial = np.degrees(Rotation.from_matrix(r_femur_sensor).as_rotvec())  # femur frame, about Y only
    hip_rot = truth_angles_deg(kin, t)[:, 3]
    np.testing.assert_allclose(axial[:, [0, 2]], 0.0, atol=1e-9)
    np.testing.assert_allclose(axial[:, 1], -k * kin.side_sign * hip_rot, atol=1e-6)
    gyr_mid = synthesize_imu(kin, "thigh", t[:-1] + dt / 2, mount, ideal, np.random.default_rng(0), 500.0,
                             None).gyr_rad_s
    integrated = _integrate_body_rate(r.r_earth_sensor[0], t, gyr_mid)
    rel = np.einsum("nji,njk->nik", r.r_earth_sensor, integrated)
    assert np.degrees(np.linalg.norm(Rotation.from_matrix(rel).as_rotvec(), axis=1)).max() < 0.02
