"""Orientation error measures for judging fusion against a reference (BROAD's definitions).

BROAD (Laidig, Caruso, Cereatti, Seel, Data 6(7):72, 2021) compares an estimate with optical ground
truth through the earth-frame error quaternion ``e = q_est ⊗ q_ref⁻¹``: total error
``2·acos|e_w|``, heading error ``2·atan(|e_z / e_w|)`` (rotation about the vertical) and inclination
error ``2·acos(√(e_w² + e_z²))`` (the remainder, tilt), each summarised as the RMSE over the samples
of interest with NaN reference rows skipped. Both quaternions must map sensor to the same earth
frame. Pure array maths; loading recordings is left to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sensorhub.motion import quat


@dataclass(frozen=True)
class OrientationErrors:
    """RMSE in degrees over the evaluated samples, and how many samples that was."""

    total_deg: float
    heading_deg: float
    inclination_deg: float
    n_samples: int


def error_angles_rad(
    q_est: ArrayLike, q_ref: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per-sample total, heading and inclination error in rad (NaN where either input is NaN)."""
    e = quat.multiply(quat.as_quat(q_est, "q_est"), quat.conjugate(quat.as_quat(q_ref, "q_ref")))
    norm = np.linalg.norm(e, axis=-1, keepdims=True)
    e = e / norm  # float32 references are not exactly unit length
    ew = np.abs(e[..., 0])
    ez = np.abs(e[..., 3])
    total = 2.0 * np.arccos(np.clip(ew, 0.0, 1.0))
    heading = 2.0 * np.arctan2(ez, ew)
    inclination = 2.0 * np.arccos(np.clip(np.sqrt(ew**2 + ez**2), 0.0, 1.0))
    return total, heading, inclination


def rmse_errors(q_est: ArrayLike, q_ref: ArrayLike, mask: ArrayLike | None = None) -> OrientationErrors:
    """BROAD's error figures: RMSE (degrees) over ``mask`` (e.g. the movement phase), NaN rows skipped."""
    total, heading, inclination = error_angles_rad(q_est, q_ref)
    use = np.isfinite(total)
    if mask is not None:
        use &= np.asarray(mask, dtype=bool)
    n = int(np.count_nonzero(use))
    if n == 0:
        raise ValueError("no samples to evaluate (mask empty or reference all NaN)")

    def rmse_deg(x: NDArray[np.float64]) -> float:
        return float(np.rad2deg(np.sqrt(np.mean(x[use] ** 2))))

    return OrientationErrors(rmse_deg(total), rmse_deg(heading), rmse_deg(inclination), n)
