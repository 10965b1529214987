"""Hip and pelvis angle conventions (ISB / Grood & Suntay Z-X-Y), checked on constructed rotations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sensorhub.motion import angles, quat


def _q(rot: Rotation) -> np.ndarray:
    return quat.from_rotation(rot)


def _femur_in_pelvis(flex: float, add_beta: float, rot_gamma: float) -> Rotation:
    return Rotation.from_euler("ZXY", [flex, add_beta, rot_gamma], degrees=True)


@pytest.mark.parametrize("side,sign", [("right", 1.0), ("left", -1.0)])
def test_hip_angles_recover_cardan_angles_under_any_pelvis_orientation(side: str, sign: float) -> None:
    rng = np.random.default_rng(1)
    pelvis = Rotation.random(50, random_state=rng)
    truth = np.column_stack((rng.uniform(-20, 110, 50), rng.uniform(-30, 30, 50), rng.uniform(-50, 50, 50)))
    femur = pelvis * Rotation.from_euler("ZXY", truth, degrees=True)
    hip = angles.hip_angles_deg(_q(pelvis), _q(femur), side)
    np.testing.assert_allclose(hip[:, 0], truth[:, 0], atol=1e-9)
    np.testing.assert_allclose(hip[:, 1], sign * truth[:, 1], atol=1e-9)
    np.testing.assert_allclose(hip[:, 2], sign * truth[:, 2], atol=1e-9)


def test_flexion_moves_the_knee_forward() -> None:
    # The knee lies along the femur's −Y axis; flexion must bring it anterior (+X of the pelvis).
    femur = _femur_in_pelvis(30.0, 0.0, 0.0)
    knee_dir = femur.apply([0.0, -1.0, 0.0])
    assert knee_dir[0] > 0.4
    hip = angles.hip_angles_deg(quat.IDENTITY[None, :], _q(femur)[None, :], "right")
    assert hip[0, 0] == pytest.approx(30.0)


@pytest.mark.parametrize("side", ["right", "left"])
def test_adduction_moves_the_knee_medially(side: str) -> None:
    medial = -1.0 if side == "right" else 1.0  # Z points right: the right leg's medial side is −Z
    beta = 10.0 * medial * -1.0  # the Cardan β that moves the knee (−Y) towards the midline
    femur = _femur_in_pelvis(0.0, beta, 0.0)
    knee_dir = femur.apply([0.0, -1.0, 0.0])
    assert np.sign(knee_dir[2]) == medial
    hip = angles.hip_angles_deg(quat.IDENTITY[None, :], _q(femur)[None, :], side)
    assert hip[0, 1] == pytest.approx(10.0)


@pytest.mark.parametrize("side", ["right", "left"])
def test_internal_rotation_turns_the_front_of_the_thigh_inwards(side: str) -> None:
    medial = -1.0 if side == "right" else 1.0
    gamma = 15.0 if side == "right" else -15.0
    femur = _femur_in_pelvis(0.0, 0.0, gamma)
    front = femur.apply([1.0, 0.0, 0.0])
    assert np.sign(front[2]) == medial
    hip = angles.hip_angles_deg(quat.IDENTITY[None, :], _q(femur)[None, :], side)
    assert hip[0, 2] == pytest.approx(15.0)


def test_pelvis_tilt_positive_when_the_front_rises_and_relative_to_neutral() -> None:
    # Neutral standing in ENU: anterior = east, superior = up, right = south; then any heading.
    upright = Rotation.from_matrix(np.column_stack(([1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0])))
    neutral = Rotation.from_euler("z", 70.0, degrees=True) * upright
    tilted = neutral * Rotation.from_euler("Z", 10.0, degrees=True)
    assert tilted.apply([1.0, 0.0, 0.0])[2] == pytest.approx(np.sin(np.radians(10.0)))  # the front rose
    a = angles.pelvis_angles_deg(_q(tilted)[None, :], _q(neutral))
    np.testing.assert_allclose(a[0], [10.0, 0.0, 0.0], atol=1e-9)
    combined = neutral * Rotation.from_euler("ZXY", [10.0, -4.0, 7.0], degrees=True)
    np.testing.assert_allclose(angles.pelvis_angles_deg(_q(combined)[None, :], _q(neutral))[0], [10.0, -4.0, 7.0], atol=1e-9)


def test_matrix_and_quaternion_paths_agree() -> None:
    q = quat.normalize(np.random.default_rng(3).normal(size=(200, 4)))
    r = angles.rotation_matrices(q)
    np.testing.assert_allclose(r, quat.to_rotation(q).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(angles.cardan_zxy_deg_from_matrix(r), angles.cardan_zxy_deg(q), atol=1e-9)


def test_nan_quaternions_give_nan_angles_and_bad_side_raises() -> None:
    q = np.array([[1.0, 0.0, 0.0, 0.0], [np.nan] * 4])
    out = angles.cardan_zxy_deg(q)
    assert np.all(np.isfinite(out[0])) and np.all(np.isnan(out[1]))
    with pytest.raises(ValueError, match="side"):
        angles.hip_angles_deg(q[:1], q[:1], "middle")
