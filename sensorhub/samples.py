"""Typed containers for IMU samples shared by every pipeline stage.

Units are in the names: time in seconds, specific force in m/s² (+g upward at rest, i.e. the
accelerometer reads about +9.81 on the axis pointing up), angular rate in rad/s, magnetic field in µT.
This module does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ImuSamples:
    """Samples of one sensor on one time base.

    ``t_s`` is strictly increasing. ``gap_before[i]`` is True when samples were lost between sample
    ``i-1`` and sample ``i`` (so downstream stages can show the gap instead of silently bridging it).
    """

    t_s: FloatArray
    acc_m_s2: FloatArray
    gyr_rad_s: FloatArray
    mag_uT: FloatArray | None = None
    gap_before: NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        n = len(self.t_s)
        for name in ("acc_m_s2", "gyr_rad_s", "mag_uT"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != (n, 3):
                raise ValueError(f"ImuSamples.{name} has shape {arr.shape}, expected ({n}, 3)")
        if self.gap_before is not None and self.gap_before.shape != (n,):
            raise ValueError(f"ImuSamples.gap_before has shape {self.gap_before.shape}, expected ({n},)")

    def __len__(self) -> int:
        return len(self.t_s)

    @property
    def has_mag(self) -> bool:
        return self.mag_uT is not None

    @property
    def rate_hz(self) -> float:
        """Median sample rate; NaN with fewer than two samples."""
        if len(self.t_s) < 2:
            return float("nan")
        return float(1.0 / np.median(np.diff(self.t_s)))
