"""Rotation helpers for the simulator: Z-X-Y Cardan matrices, their angular velocities, quaternions.

The simulator builds segment orientations from Cardan angles (ISB hip and pelvis conventions, see
docs/simulator.md) and needs the matching body-frame angular velocity analytically, so the synthetic
gyroscope is exact rather than a finite difference. Everything here works on stacks of rotations:
angles are arrays of shape (n,), matrices (n, 3, 3), vectors (n, 3).

The simulator deliberately does not import :mod:`sensorhub.motion`: it is the test bed of that code
and must not share its mistakes.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

FloatArray = NDArray[np.float64]


def rot_x(a_rad: FloatArray) -> FloatArray:
    """Stack of rotation matrices about X, shape (n, 3, 3)."""
    c, s = np.cos(a_rad), np.sin(a_rad)
    o, z = np.ones_like(a_rad), np.zeros_like(a_rad)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def rot_y(a_rad: FloatArray) -> FloatArray:
    """Stack of rotation matrices about Y, shape (n, 3, 3)."""
    c, s = np.cos(a_rad), np.sin(a_rad)
    o, z = np.ones_like(a_rad), np.zeros_like(a_rad)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def rot_z(a_rad: FloatArray) -> FloatArray:
    """Stack of rotation matrices about Z, shape (n, 3, 3)."""
    c, s = np.cos(a_rad), np.sin(a_rad)
    o, z = np.ones_like(a_rad), np.zeros_like(a_rad)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def cardan_zxy(z_rad: FloatArray, x_rad: FloatArray, y_rad: FloatArray) -> FloatArray:
    """``Rz(z) @ Rx(x) @ Ry(y)`` (intrinsic Z, then the floating X, then Y), shape (n, 3, 3)."""
    return rot_z(z_rad) @ rot_x(x_rad) @ rot_y(y_rad)


def cardan_zxy_body_rate(
    x_rad: FloatArray, y_rad: FloatArray, dz: FloatArray, dx: FloatArray, dy: FloatArray
) -> FloatArray:
    """Body-frame angular velocity (rad/s, shape (n, 3)) of ``Rz(z) Rx(x) Ry(y)`` given angle rates.

    With ``R = Rz Rx Ry``: ``R^T dR/dt = [w]x`` and
    ``w = Ry^T Rx^T (0, 0, dz) + Ry^T (dx, 0, 0) + (0, dy, 0)``. The Z angle itself does not enter.
    """
    cx, sx = np.cos(x_rad), np.sin(x_rad)
    cy, sy = np.cos(y_rad), np.sin(y_rad)
    # Rx^T (0,0,dz) = (0, sx*dz, cx*dz); then Ry^T (a, b, c) = (cy*a - sy*c, b, sy*a + cy*c).
    a = dx
    b = sx * dz
    c = cx * dz
    return np.stack([cy * a - sy * c, b + dy, sy * a + cy * c], axis=-1)


def matrix_to_cardan_zxy(r: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Z, X, Y Cardan angles (rad) of rotation matrices (n, 3, 3), inverse of :func:`cardan_zxy`.

    The X angle lies in [-pi/2, pi/2]; the decomposition is singular only at X = ±90°, which no hip or
    pelvis posture reaches.
    """
    # R = Rz Rx Ry: R[2,1] = sin x, R[0,1] = -sin z cos x, R[1,1] = cos z cos x,
    # R[2,0] = -cos x sin y, R[2,2] = cos x cos y.
    x = np.arcsin(np.clip(r[..., 2, 1], -1.0, 1.0))
    z = np.arctan2(-r[..., 0, 1], r[..., 1, 1])
    y = np.arctan2(-r[..., 2, 0], r[..., 2, 2])
    return z, x, y


def quat_wxyz_from_matrix(r: FloatArray) -> FloatArray:
    """Unit quaternions w, x, y, z (Hamilton) of rotation matrices, with w >= 0."""
    q_xyzw = Rotation.from_matrix(r).as_quat()
    q = np.roll(np.atleast_2d(q_xyzw), 1, axis=-1)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(np.shape(q_xyzw))


def matrix_from_quat_wxyz(q_wxyz: FloatArray) -> FloatArray:
    """Rotation matrices of unit quaternions w, x, y, z."""
    q = np.asarray(q_wxyz, dtype=float)
    return Rotation.from_quat(np.roll(q, -1, axis=-1)).as_matrix()


def random_rotation(rng: np.random.Generator, spread_deg: float) -> FloatArray:
    """A rotation about a uniformly random axis by an angle ~ N(0, spread), as a 3x3 matrix."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.radians(rng.normal(0.0, spread_deg))
    return Rotation.from_rotvec(axis * angle).as_matrix()
