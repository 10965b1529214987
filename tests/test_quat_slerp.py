"""``quat.slerp_resample`` equals scipy's ``Slerp`` (which it replaced for speed), sign included."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Slerp

from sensorhub.motion import quat


def _scipy_slerp(t: np.ndarray, q: np.ndarray, t_new: np.ndarray) -> np.ndarray:
    return quat.from_rotation(Slerp(t, quat.to_rotation(q))(t_new))


@pytest.mark.parametrize("step_sd_rad", [1e-6, 0.05, 1.5])
def test_matches_scipy_slerp_on_random_series(step_sd_rad: float) -> None:
    rng = np.random.default_rng(4)
    n = 3000
    t = np.cumsum(rng.uniform(0.005, 0.015, n))
    rotvec = np.cumsum(rng.normal(0.0, step_sd_rad, (n, 3)), axis=0)
    q = quat.from_axis_angle(rotvec, np.linalg.norm(rotvec, axis=1))
    q *= np.where(rng.random(n) < 0.3, -1.0, 1.0)[:, None]  # either sign of each rotation
    q[100:105] = q[100]  # identical neighbours: a zero step
    q[200] *= 3.0  # not unit length
    # Samples' own times (interval ends), both ends, and times in between.
    t_new = np.concatenate([t[:300], [t[0], t[-1]], rng.uniform(t[0], t[-1], 2000)])
    got = quat.slerp_resample(t, q, t_new)
    ref = _scipy_slerp(t, q, t_new)
    assert np.max(np.abs(got - ref)) < 1e-12  # components, so the sign agrees too
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-12)


def test_halfway_between_two_rotations_about_z() -> None:
    q = quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0]))
    mid = quat.slerp_resample(np.array([0.0, 2.0]), q, np.array([0.5, 1.0]))
    expected = quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), np.array([0.25, 0.5]))
    np.testing.assert_allclose(mid, expected, atol=1e-15)
