"""Quaternion helpers checked against scipy's Rotation and against hand-worked rotations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sensorhub.motion import quat

RNG = np.random.default_rng(7)


def random_quats(n: int) -> np.ndarray:
    return quat.from_rotation(Rotation.random(n, random_state=11))


def test_scipy_conversion_keeps_scalar_first() -> None:
    # 90° about z: w = cos45°, z = sin45°; scipy must see the same rotation.
    q = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])
    rot = quat.to_rotation(q)
    np.testing.assert_allclose(rot.as_rotvec(), [0.0, 0.0, np.pi / 2], atol=1e-12)
    np.testing.assert_allclose(quat.from_rotation(rot), q, atol=1e-12)


def test_rotate_by_hand_worked_examples() -> None:
    q_z90 = quat.from_axis_angle([0, 0, 1], np.pi / 2)
    np.testing.assert_allclose(quat.rotate(q_z90, [1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-12)
    q_x90 = quat.from_axis_angle([1, 0, 0], np.pi / 2)
    np.testing.assert_allclose(quat.rotate(q_x90, [0.0, 0.0, 1.0]), [0.0, -1.0, 0.0], atol=1e-12)


def test_multiply_and_rotate_match_scipy() -> None:
    q1 = random_quats(50)
    q2 = quat.from_rotation(Rotation.random(50, random_state=12))
    v = RNG.normal(size=(50, 3))
    expected = (quat.to_rotation(q1) * quat.to_rotation(q2)).as_quat()
    got = quat.to_rotation(quat.multiply(q1, q2)).as_quat()
    # Compare as rotations (sign of q is free).
    dots = np.abs(np.einsum("ij,ij->i", expected, got))
    np.testing.assert_allclose(dots, 1.0, atol=1e-12)
    np.testing.assert_allclose(quat.rotate(q1, v), quat.to_rotation(q1).apply(v), atol=1e-12)
    # Chaining frames: rotating by q1 ⊗ q2 equals rotating by q2, then by q1.
    np.testing.assert_allclose(quat.rotate(quat.multiply(q1, q2), v), quat.rotate(q1, quat.rotate(q2, v)), atol=1e-12)


def test_conjugate_inverts() -> None:
    q = random_quats(20)
    ident = quat.multiply(q, quat.conjugate(q))
    np.testing.assert_allclose(ident, np.tile(quat.IDENTITY, (20, 1)), atol=1e-12)


def test_relative_angle_small_and_large() -> None:
    q = random_quats(10)
    for angle in (1e-7, 0.3, np.pi - 1e-3):
        q2 = quat.multiply(q, quat.from_axis_angle([0.2, -1.0, 0.5], angle))
        np.testing.assert_allclose(quat.relative_angle_rad(q, q2), angle, rtol=1e-6, atol=1e-12)
    # Sign of the quaternion does not matter.
    np.testing.assert_allclose(quat.relative_angle_rad(q, -q), 0.0, atol=1e-7)


def test_heading_of_x_axis() -> None:
    # x axis East -> 0; x axis North -> +90° (counter-clockwise seen from above in ENU).
    assert quat.heading_rad(quat.IDENTITY) == pytest.approx(0.0)
    q_north = quat.heading_rotation(np.pi / 2)
    assert quat.heading_rad(q_north) == pytest.approx(np.pi / 2)
    np.testing.assert_allclose(quat.rotate(q_north, [1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-12)


def test_slerp_resample_constant_rate_rotation() -> None:
    # A rotation about z at 1 rad/s sampled at 10 Hz, resampled at 37 Hz, must give angle == t exactly.
    t = np.arange(0.0, 2.0001, 0.1)
    q = quat.from_axis_angle([0, 0, 1], t)
    t_new = np.arange(0.0, 2.0, 1 / 37)
    q_new = quat.slerp_resample(t, q, t_new)
    np.testing.assert_allclose(quat.heading_rad(q_new), t_new, atol=1e-12)


def test_slerp_resample_outside_policies() -> None:
    t = np.array([0.0, 1.0])
    q = quat.from_axis_angle([0, 0, 1], t)
    with pytest.raises(ValueError, match="outside"):
        quat.slerp_resample(t, q, [-0.5, 0.5])
    held = quat.slerp_resample(t, q, [-0.5, 1.5], outside="hold")
    np.testing.assert_allclose(quat.heading_rad(held), [0.0, 1.0], atol=1e-12)
    nan = quat.slerp_resample(t, q, [-0.5, 0.5], outside="nan")
    assert np.isnan(nan[0]).all() and quat.heading_rad(nan[1]) == pytest.approx(0.5)


def test_make_continuous_removes_sign_flips() -> None:
    q = quat.from_axis_angle([0, 0, 1], np.linspace(0, 6, 50))
    q[::3] *= -1
    cont = quat.make_continuous(q)
    assert np.all(np.einsum("ij,ij->i", cont[1:], cont[:-1]) > 0)
    np.testing.assert_allclose(quat.relative_angle_rad(cont, q), 0.0, atol=1e-7)


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="expected"):
        quat.multiply(np.zeros(3), quat.IDENTITY)
    with pytest.raises(ValueError, match="zero quaternion"):
        quat.normalize(np.zeros(4))
