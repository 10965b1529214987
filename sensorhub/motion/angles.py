"""Hip joint angles and pelvis angles from segment orientations.

Conventions (written once here and in docs/conventions.md):

* Segment frames follow ISB (Wu et al. 2002): X anterior, Y superior, Z to the right, for the
  pelvis and for the femur of either side. ``q_earth_segment`` rotates segment vectors into the ENU
  earth frame.
* Hip angles follow Grood & Suntay as adopted by ISB: the femur relative to the pelvis,
  ``R_pelvis_femur = R_earth_pelvisᵀ · R_earth_femur = Rz(α) · Rx(β) · Ry(γ)`` (intrinsic Z-X-Y
  Cardan sequence). α is flexion about the pelvis's medio-lateral axis, β rotation about the
  floating axis, γ rotation about the femur's long axis.
* Right side: flexion = α, adduction = β, internal rotation = γ. Left side: flexion = α,
  adduction = −β, internal rotation = −γ. So flexion, adduction and internal rotation are positive
  on both sides (and extension, abduction, external rotation negative).
* Pelvis angles are the pelvis's orientation relative to its standing neutral, expressed in the
  neutral pelvis frame: ``R_neutralᵀ · R_earth_pelvis = Rz(tilt) · Rx(obliquity) · Ry(rotation)``.
  Tilt (about Z) is positive when the front of the pelvis rises (posterior tilt), obliquity (about
  X) is positive when the right side drops, rotation (about Y) is positive when the right side
  moves forward. The axes are the same right-handed ISB axes for either measured leg.

All angles in degrees. Pure maths; no I/O.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from sensorhub.motion import quat

FloatArray = NDArray[np.float64]

_SEQ = "ZXY"  # intrinsic (upper case in scipy): Rz · Rx · Ry


def side_sign(side: str) -> float:
    """+1 for the right side, −1 for the left (the mirror of adduction and rotation)."""
    if side == "right":
        return 1.0
    if side == "left":
        return -1.0
    raise ValueError(f"side is {side!r}, expected 'left' or 'right'")


def segment_orientation(q_earth_sensor: FloatArray, q_segment_sensor: FloatArray) -> FloatArray:
    """``q_earth_segment = q_earth_sensor ⊗ q_segment_sensor*`` for one mount and many samples."""
    return quat.multiply(q_earth_sensor, quat.conjugate(q_segment_sensor))


def cardan_zxy_deg(q_a_b: FloatArray) -> FloatArray:
    """Intrinsic Z-X-Y Cardan angles (n, 3) in degrees of ``R_a_b = Rz(α)·Rx(β)·Ry(γ)``.

    Computed from the five rotation-matrix elements the angles need (as
    :func:`cardan_zxy_deg_from_matrix`), with the quaternion's norm divided out, instead of through
    ``scipy.spatial.transform.Rotation.as_euler``: the same angles to about 1e-12° away from
    β = ±90° (tests/test_angles.py compares the two), in a third of the time on long series.
    Rows with NaN quaternions give NaN angles.
    """
    q = np.atleast_2d(quat.as_quat(q_a_b))
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    with np.errstate(invalid="ignore"):
        s = 2.0 / (w * w + x * x + y * y + z * z)
        xx = x * x
        out = np.empty((len(q), 3))
        # R[2,1] = sin β; R[0,1] = -sin α cos β, R[1,1] = cos α cos β; R[2,0] = -cos β sin γ, R[2,2] = cos β cos γ.
        out[:, 1] = np.arcsin(np.minimum(np.maximum(s * (y * z + w * x), -1.0), 1.0))
        out[:, 0] = np.arctan2(s * (w * z - x * y), 1.0 - s * (xx + z * z))
        out[:, 2] = np.arctan2(s * (w * y - x * z), 1.0 - s * (xx + y * y))
    return np.degrees(out, out=out)


def hip_angles_deg(q_earth_pelvis: FloatArray, q_earth_femur: FloatArray, side: str) -> FloatArray:
    """Hip flexion, adduction and internal rotation (n, 3) in degrees (ISB / Grood & Suntay).

    Both inputs are segment orientations (ISB frames) in one common earth frame.
    """
    q_pelvis_femur = quat.multiply(quat.conjugate(q_earth_pelvis), q_earth_femur)
    a = cardan_zxy_deg(q_pelvis_femur)
    s = side_sign(side)
    return np.column_stack((a[:, 0], s * a[:, 1], s * a[:, 2]))


def pelvis_angles_deg(q_earth_pelvis: FloatArray, q_earth_pelvis_neutral: FloatArray) -> FloatArray:
    """Pelvis tilt, obliquity and rotation (n, 3) in degrees relative to the standing neutral.

    ``q_earth_pelvis_neutral`` is one quaternion (4,), the pelvis orientation in neutral standing.
    """
    q_rel = quat.multiply(quat.conjugate(q_earth_pelvis_neutral), q_earth_pelvis)
    return cardan_zxy_deg(q_rel)


# rotation_matrices: element k of R (row-major) is 1 − 2·(P[_R_A[k]] + s_k·P[_R_B[k]]) on the diagonal and
# 2·(P[_R_A[k]] + s_k·P[_R_B[k]]) off it, with P the 16 products q_i·q_j (w, x, y, z) and s_k = ±1.
_R_A = np.array([10, 6, 7, 6, 5, 11, 7, 11, 5])  # yy xy xz / xy xx yz / xz yz xx
_R_B = np.array([15, 3, 2, 3, 15, 1, 2, 1, 10])  # zz wz wy / wz zz wx / wy wx yy
_R_SIGN = np.array([1.0, -1.0, 1.0, 1.0, 1.0, -1.0, -1.0, 1.0, 1.0])
_R_DIAG = np.array([0, 4, 8])


def rotation_matrices(q: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """Rotation matrices (n, 3, 3) of unit quaternions (n, 4) ``w, x, y, z``; ``v_a = R @ v_b`` for ``q_a_b``.

    A direct formula: cheaper than a scipy Rotation for the short blocks of the online pipeline.
    ``out``: a C-contiguous (n, 3, 3) array to write them into (returned).
    """
    # The textbook formula (1 − 2(y² + z²), 2(xy − wz), ...) with all products from one outer
    # product and the nine sums in one call: the live path calls this on a handful of rows, where
    # the count of NumPy calls is the cost. Same products and sums (a + (−1·b) is a − b exactly,
    # signed zeros included), so the same bits (tests/test_live_helpers.py).
    n = len(q)
    p = (q[:, :, None] * q[:, None, :]).reshape(n, 16)
    e = np.empty((n, 9)) if out is None else out.reshape(n, 9)
    np.take(p, _R_A, axis=1, out=e)
    e += p[:, _R_B] * _R_SIGN
    e *= 2.0
    e[:, _R_DIAG] = 1.0 - e[:, _R_DIAG]
    return out if out is not None else e.reshape(n, 3, 3)


def cardan_zxy_deg_from_matrix(r_a_b: FloatArray) -> FloatArray:
    """Z-X-Y Cardan angles (n, 3) in degrees of rotation matrices ``R = Rz(α)·Rx(β)·Ry(γ)`` (n, 3, 3).

    From ``R[2,1] = sin β``, ``R[0,1] = −sin α cos β``, ``R[1,1] = cos α cos β``,
    ``R[2,0] = −cos β sin γ``, ``R[2,2] = cos β cos γ``; same values as :func:`cardan_zxy_deg`.
    """
    # minimum/maximum: the same values as np.clip without its per-call overhead (live path).
    beta = np.arcsin(np.minimum(np.maximum(r_a_b[:, 2, 1], -1.0), 1.0))
    alpha = np.arctan2(-r_a_b[:, 0, 1], r_a_b[:, 1, 1])
    gamma = np.arctan2(-r_a_b[:, 2, 0], r_a_b[:, 2, 2])
    return np.degrees(np.stack((alpha, beta, gamma), axis=1))  # np.column_stack's result, less overhead


def heading_matrices(phi_rad: FloatArray) -> FloatArray:
    """Rotations (n, 3, 3) about the earth's vertical (ENU z) by ``phi_rad``."""
    c, s = np.cos(phi_rad), np.sin(phi_rad)
    out = np.zeros((len(phi_rad), 3, 3))
    out[:, 0, 0] = c
    out[:, 0, 1] = -s
    out[:, 1, 0] = s
    out[:, 1, 1] = c
    out[:, 2, 2] = 1.0
    return out
