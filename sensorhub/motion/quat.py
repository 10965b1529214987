"""Small quaternion helpers on ``(n, 4)`` arrays in ``w, x, y, z`` order (Hamilton convention).

A quaternion ``q_a_b`` rotates a vector from frame ``b`` into frame ``a``:
``v_a = q_a_b ⊗ v_b ⊗ q_a_b*`` (see docs/architecture.md). Composition therefore chains frames:
``q_a_c = multiply(q_a_b, q_b_c)``.

scipy's :class:`~scipy.spatial.transform.Rotation` stores quaternions as ``x, y, z, w``; the only
place that ordering is converted is :func:`to_rotation` / :func:`from_rotation`, so the rest of the
code never handles scalar-last arrays. Every function accepts a single quaternion of shape ``(4,)``
as well as a stack ``(n, 4)`` and broadcasts like NumPy. These are generic helpers; they hold no
state and do no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from sensorhub.motion import kernels

FloatArray = NDArray[np.float64]

IDENTITY: FloatArray = np.array([1.0, 0.0, 0.0, 0.0])


def as_quat(q: ArrayLike, name: str = "q") -> FloatArray:
    """Return ``q`` as a float64 array whose last axis has length 4 (raises ValueError otherwise)."""
    arr = np.asarray(q, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != 4:
        raise ValueError(f"{name} has shape {arr.shape}, expected (4,) or (n, 4) quaternions w, x, y, z")
    return arr


def normalize(q: ArrayLike) -> FloatArray:
    """Scale each quaternion to unit norm."""
    arr = as_quat(q)
    norm = np.linalg.norm(arr, axis=-1, keepdims=True)
    if np.any(norm == 0.0):
        raise ValueError("cannot normalize a zero quaternion")
    return arr / norm


def canonical(q: ArrayLike) -> FloatArray:
    """Pick the representative with ``w >= 0`` (q and -q are the same rotation)."""
    arr = as_quat(q)
    sign = np.where(arr[..., :1] < 0.0, -1.0, 1.0)
    return arr * sign


def make_continuous(q: ArrayLike) -> FloatArray:
    """Flip signs along a time series ``(n, 4)`` so consecutive quaternions lie in the same hemisphere.

    Useful before plotting or filtering quaternion components; the rotations are unchanged.
    """
    arr = as_quat(q).copy()
    if arr.ndim != 2 or len(arr) < 2:
        return arr
    dots = np.einsum("ij,ij->i", arr[1:], arr[:-1])
    flips = np.cumprod(np.where(dots < 0.0, -1.0, 1.0))
    arr[1:] *= flips[:, None]
    return arr


def conjugate(q: ArrayLike) -> FloatArray:
    """Conjugate (the inverse for unit quaternions): ``q_b_a = conjugate(q_a_b)``."""
    arr = as_quat(q)
    if arr.ndim == 2 and len(arr) >= kernels.MIN_ROWS:
        out, finite = kernels.conjugate_rows(np.ascontiguousarray(arr))  # long series: one compiled pass, the same bits
        if finite:
            return out
    return arr * np.array([1.0, -1.0, -1.0, -1.0])


def multiply(q1: ArrayLike, q2: ArrayLike) -> FloatArray:
    """Hamilton product ``q1 ⊗ q2`` (broadcasting over leading axes)."""
    a = as_quat(q1, "q1")
    b = as_quat(q2, "q2")
    w1, x1, y1, z1 = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    w2, x2, y2, z2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    # Written into one preallocated array (np.stack of four temporaries took twice as long).
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
    out[..., 1] = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
    out[..., 2] = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
    out[..., 3] = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2
    return out


def rotate(q: ArrayLike, v: ArrayLike) -> FloatArray:
    """Rotate vectors: ``q ⊗ v ⊗ q*`` for unit ``q``; ``v`` has shape ``(3,)`` or ``(n, 3)``."""
    qa = as_quat(q)
    va = np.asarray(v, dtype=np.float64)
    if va.shape[-1] != 3:
        raise ValueError(f"v has shape {va.shape}, expected (3,) or (n, 3) vectors")
    if qa.ndim == 2 and va.ndim == 2 and len(qa) == len(va) >= kernels.MIN_ROWS:
        # Long series (batch): the same arithmetic row by row in one compiled pass, the same bits.
        return kernels.rotate_rows(np.ascontiguousarray(qa), np.ascontiguousarray(va))
    w = qa[..., :1]
    u = qa[..., 1:]
    # v' = v + 2 w (u × v) + 2 u × (u × v), the expanded sandwich product for a unit quaternion.
    uv = _cross(u, va)
    return va + 2.0 * w * uv + 2.0 * _cross(u, uv)


def norm3(v: FloatArray) -> FloatArray:
    """Row lengths of 3-vectors (n, 3): ``np.linalg.norm(v, axis=1)`` to the bit (the squares added left
    to right, as NumPy's reduction over three elements does), at a fraction of its cost on long series."""
    if len(v) >= kernels.MIN_ROWS and v.ndim == 2 and v.shape[1] == 3 and v.dtype == np.float64:
        return kernels.norm3_rows(np.ascontiguousarray(v))  # long series: one compiled pass, the same bits
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    return np.sqrt(x * x + y * y + z * z)


def _cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """``np.cross`` of (..., 3) arrays with the same arithmetic, without its axis handling overhead."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = a1 * b2 - a2 * b1
    out[..., 1] = a2 * b0 - a0 * b2
    out[..., 2] = a0 * b1 - a1 * b0
    return out


def from_axis_angle(axis: ArrayLike, angle_rad: ArrayLike) -> FloatArray:
    """Quaternion(s) for a rotation by ``angle_rad`` about ``axis`` (need not be unit length)."""
    ax = np.asarray(axis, dtype=np.float64)
    ax = ax / np.linalg.norm(ax, axis=-1, keepdims=True)
    half = 0.5 * np.asarray(angle_rad, dtype=np.float64)[..., None]
    return np.concatenate((np.cos(half), np.sin(half) * ax), axis=-1)


def to_rotation(q: ArrayLike) -> Rotation:
    """Convert ``w, x, y, z`` quaternion(s) to a scipy Rotation (which stores ``x, y, z, w``)."""
    arr = as_quat(q)
    return Rotation.from_quat(arr[..., [1, 2, 3, 0]])


def from_rotation(rot: Rotation) -> FloatArray:
    """Convert a scipy Rotation to ``w, x, y, z`` quaternion(s), shape ``(4,)`` or ``(n, 4)``."""
    xyzw = rot.as_quat()
    return np.asarray(xyzw[..., [3, 0, 1, 2]], dtype=np.float64)


def relative_angle_rad(q1: ArrayLike, q2: ArrayLike) -> FloatArray:
    """Angle of the rotation between ``q1`` and ``q2`` in rad, in ``[0, π]``.

    Frame-independent: the same for ``q1 ⊗ q2*`` and ``q1* ⊗ q2``. Computed with ``atan2`` rather
    than ``acos`` so it stays accurate for small angles.
    """
    e = multiply(conjugate(normalize(q1)), normalize(q2))
    return np.asarray(2.0 * np.arctan2(np.linalg.norm(e[..., 1:], axis=-1), np.abs(e[..., 0])))


def heading_rotation(delta_rad: ArrayLike) -> FloatArray:
    """Rotation about the earth's vertical (z, up) axis by ``delta_rad``, counter-clockwise seen from above.

    ``multiply(heading_rotation(delta), q_earth_sensor)`` turns an orientation by ``delta`` in
    heading, e.g. VQF's 9D = heading_rotation(delta) ⊗ 6D.
    """
    return from_axis_angle(np.array([0.0, 0.0, 1.0]), delta_rad)


def turn_heading(delta_rad: ArrayLike, q: ArrayLike) -> FloatArray:
    """``multiply(heading_rotation(delta_rad), q)``: ``q`` turned about the earth's vertical, bit for bit.

    The heading rotation has only ``w`` and ``z`` components, so the Hamilton product reduces to
    two products per component; the terms the general product multiplies by those zeros add
    exactly nothing, which is why the result is identical (tests/test_quat.py).
    """
    return turn_heading_each(delta_rad, (q,))[0]


def turn_heading_each(delta_rad: ArrayLike, qs: Sequence[ArrayLike]) -> list[FloatArray]:
    """:func:`turn_heading` of several quaternion series by the same ``delta_rad``, its cosine and sine computed once."""
    half = 0.5 * np.asarray(delta_rad, dtype=np.float64)
    c, s = np.cos(half), np.sin(half)
    outs = []
    for q in qs:
        b = as_quat(q)
        w2, x2, y2, z2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
        out = np.empty(np.broadcast_shapes(np.shape(half) + (4,), b.shape))
        out[..., 0] = c * w2 - s * z2
        out[..., 1] = c * x2 - s * y2
        out[..., 2] = c * y2 + s * x2
        out[..., 3] = c * z2 + s * w2
        outs.append(out)
    return outs


def rotate_axis(q: ArrayLike, axis: int) -> FloatArray:
    """``rotate(q, e)`` for the unit vector ``e`` along sensor axis ``axis`` (0 = x, 1 = y, 2 = z), bit for bit.

    :func:`rotate`'s expansion with the zero components of ``e`` left out (they contribute exact
    zeros there); the column ``axis`` of the rotation matrix, in a third of the operations.
    """
    qa = as_quat(q)
    if qa.ndim == 2 and len(qa) >= kernels.MIN_ROWS and axis in (0, 1, 2):
        return kernels.rotate_axis_rows(np.ascontiguousarray(qa), axis)  # long series: one compiled pass, the same bits
    w, u = qa[..., 0], (qa[..., 1], qa[..., 2], qa[..., 3])
    i, j, k = axis, (axis + 1) % 3, (axis + 2) % 3
    ui, uj, uk = u[i], u[j], u[k]
    # u × e_i = (0, u_k, -u_j) in the (i, j, k) cyclic frame; u × (u × e_i) = (-(u_j² + u_k²), u_i u_j, u_i u_k).
    out = np.empty(qa.shape[:-1] + (3,))
    out[..., i] = 1.0 + 2.0 * (uj * -uj - uk * uk)
    out[..., j] = 2.0 * w * uk + 2.0 * (ui * uj)
    out[..., k] = 2.0 * w * -uj + 2.0 * (ui * uk)
    return out


def heading_rad(q_earth_sensor: ArrayLike, axis: ArrayLike = (1.0, 0.0, 0.0)) -> FloatArray:
    """Heading of a sensor axis projected onto the horizontal ENU plane, in rad.

    Measured counter-clockwise from East (math convention in the x-y plane of ENU): a sensor whose
    ``axis`` points East has heading 0, North +π/2. NaN-free but meaningless when the axis is vertical.
    """
    v = rotate(q_earth_sensor, np.asarray(axis, dtype=np.float64))
    return np.asarray(np.arctan2(v[..., 1], v[..., 0]))


def slerp_resample(
    t_s: ArrayLike,
    q: ArrayLike,
    t_new_s: ArrayLike,
    outside: Literal["raise", "hold", "nan"] = "raise",
) -> FloatArray:
    """Resample a quaternion time series onto ``t_new_s`` by spherical linear interpolation.

    The same interpolant as :class:`scipy.spatial.transform.Slerp` (interval choice, shortest arc,
    output sign; equal to ~1e-15 per component), computed directly on the quaternion arrays instead
    of through ``Rotation`` objects, which cost ten times more on long series.
    ``t_s`` must be strictly increasing. Times outside ``[t_s[0], t_s[-1]]`` raise ValueError
    (``outside="raise"``), take the nearest end value (``"hold"``) or give NaN rows (``"nan"``).
    """
    t = np.asarray(t_s, dtype=np.float64)
    t_new = np.asarray(t_new_s, dtype=np.float64)
    arr = as_quat(q)
    if arr.ndim != 2 or t.shape != (len(arr),):
        raise ValueError(f"slerp_resample needs t_s (n,) and q (n, 4); got {t.shape} and {arr.shape}")
    if len(t) < 2 or np.any(np.diff(t) <= 0.0):
        raise ValueError("slerp_resample needs at least two strictly increasing times")
    before = t_new < t[0]
    after = t_new > t[-1]
    if outside == "raise" and (np.any(before) or np.any(after)):
        raise ValueError(f"resample times span [{t_new.min()}, {t_new.max()}] s, outside the data [{t[0]}, {t[-1]}] s")
    out = _slerp_inside(t, normalize(arr), np.clip(t_new, t[0], t[-1]))
    if outside == "nan":
        out[before | after] = np.nan
    return out


def _slerp_inside(t: FloatArray, q_unit: FloatArray, t_new: FloatArray) -> FloatArray:
    """Slerp of unit quaternions ``q_unit`` at times ``t_new`` within ``[t[0], t[-1]]``.

    Mirrors scipy's Slerp: the interval is ``searchsorted(t, t_new) - 1`` (the left end of the
    series belongs to the first interval, a time equal to a sample to the interval ending there),
    the step between neighbours is ``q_i* ⊗ q_i+1`` taken in the hemisphere ``w >= 0`` (shortest
    arc) and the result is ``q_i ⊗ exp(alpha · log(step))``.
    """
    step = multiply(conjugate(q_unit[:-1]), q_unit[1:])
    step *= np.where(step[:, :1] < 0.0, -1.0, 1.0)
    sin_half = np.linalg.norm(step[:, 1:], axis=1)
    angle = 2.0 * np.arctan2(sin_half, step[:, 0])
    i = np.searchsorted(t, t_new) - 1
    i[t_new == t[0]] = 0
    alpha = (t_new - t[i]) / (t[i + 1] - t[i])
    half = 0.5 * alpha * angle[i]
    # sin(alpha·θ/2) times the step's unit axis; a zero step (identical neighbours) has no axis.
    s_i = sin_half[i]
    scale = np.divide(np.sin(half), s_i, out=np.zeros_like(half), where=s_i > 0.0)
    partial = np.concatenate((np.cos(half)[:, None], scale[:, None] * step[i, 1:]), axis=1)
    return multiply(q_unit[i], partial)
