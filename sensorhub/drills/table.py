"""The input of the drills stage: a time series of hip and pelvis angles (degrees).

:class:`AngleTable` holds the columns ``t, hip_flexion, hip_adduction, hip_rotation, pelvis_tilt,
pelvis_obliquity, pelvis_rotation`` as float arrays; NaN marks samples lost in a gap. Hip angles follow
docs/architecture.md (femur relative to pelvis, internal rotation positive on either side); pelvis
angles are the pelvis's own tilt (sagittal), obliquity (frontal) and rotation (transverse) relative to
its standing neutral.

It deliberately does not import the motion stage: anything that yields these arrays can feed the
drills (the analysis pipeline, a truth file of the simulator, a test).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from sensorhub.errors import ImportFormatError

FloatArray = NDArray[np.float64]

# Accepted spellings of each column (the simulator truth names the pelvis angles by their Cardan axes).
_ALIASES: dict[str, tuple[str, ...]] = {
    "t": ("t", "t_s", "time"),
    "hip_flexion": ("hip_flexion", "hip_flexion_deg"),
    "hip_adduction": ("hip_adduction", "hip_adduction_deg"),
    "hip_rotation": ("hip_rotation", "hip_rotation_deg"),
    "pelvis_tilt": ("pelvis_tilt", "pelvis_tilt_deg", "pelvis_tilt_z"),
    "pelvis_obliquity": ("pelvis_obliquity", "pelvis_obliquity_deg", "pelvis_obliquity_x"),
    "pelvis_rotation": ("pelvis_rotation", "pelvis_rotation_deg", "pelvis_rotation_y"),
}
_OPTIONAL = {"hip_flexion", "hip_adduction", "pelvis_tilt", "pelvis_obliquity", "pelvis_rotation"}


@dataclass(frozen=True)
class AngleTable:
    """Hip and pelvis angles in degrees on one time base ``t`` (seconds, strictly increasing)."""

    t: FloatArray
    hip_rotation: FloatArray
    hip_flexion: FloatArray
    hip_adduction: FloatArray
    pelvis_tilt: FloatArray
    pelvis_obliquity: FloatArray
    pelvis_rotation: FloatArray

    def __post_init__(self) -> None:
        n = len(self.t)
        for f in fields(self):
            arr = getattr(self, f.name)
            if np.shape(arr) != (n,):
                raise ValueError(f"AngleTable.{f.name} has shape {np.shape(arr)}, expected ({n},)")
        if n > 1 and not np.all(np.diff(self.t) > 0):
            raise ValueError("AngleTable.t must be strictly increasing")

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def from_arrays(
        cls,
        t: FloatArray,
        hip_rotation: FloatArray,
        *,
        hip_flexion: FloatArray | None = None,
        hip_adduction: FloatArray | None = None,
        pelvis_tilt: FloatArray | None = None,
        pelvis_obliquity: FloatArray | None = None,
        pelvis_rotation: FloatArray | None = None,
    ) -> AngleTable:
        """Build a table; missing angle columns become NaN (unknown), never zero."""
        t_arr = np.asarray(t, dtype=np.float64)

        def col(a: FloatArray | None) -> FloatArray:
            if a is None:
                return np.full(t_arr.shape, np.nan)
            return np.asarray(a, dtype=np.float64)

        return cls(
            t=t_arr,
            hip_rotation=col(hip_rotation),
            hip_flexion=col(hip_flexion),
            hip_adduction=col(hip_adduction),
            pelvis_tilt=col(pelvis_tilt),
            pelvis_obliquity=col(pelvis_obliquity),
            pelvis_rotation=col(pelvis_rotation),
        )

    @classmethod
    def from_csv(cls, path: str | Path) -> AngleTable:
        """Read a CSV with a header row; empty cells and ``nan`` are gaps.

        Raises :class:`ImportFormatError` naming the file (and line) when a required column is missing
        or a value is not a number.
        """
        path = Path(path)
        try:
            with path.open(newline="") as fh:
                reader = csv.reader(fh)
                header = [h.strip() for h in next(reader)]
                rows = list(reader)
        except (OSError, StopIteration) as exc:
            raise ImportFormatError(f"{path}: cannot read an angle table header ({exc or 'empty file'})") from exc
        index: dict[str, int] = {}
        for name, aliases in _ALIASES.items():
            for alias in aliases:
                if alias in header:
                    index[name] = header.index(alias)
                    break
            else:
                if name not in _OPTIONAL:
                    raise ImportFormatError(
                        f"{path}: line 1: missing column {name!r} (accepted: {', '.join(aliases)}); header is {header}"
                    )
        data = np.full((len(rows), len(_ALIASES)), np.nan)
        names = list(_ALIASES)
        for i, row in enumerate(rows):
            for j, name in enumerate(names):
                if name not in index:
                    continue
                k = index[name]
                cell = row[k].strip() if k < len(row) else ""
                if cell == "":
                    continue
                try:
                    data[i, j] = float(cell)
                except ValueError:
                    raise ImportFormatError(
                        f"{path}: line {i + 2}, column {k + 1} ({header[k]}): {cell!r} is not a number"
                    ) from None
        columns = {name: data[:, j] for j, name in enumerate(names)}
        if np.isnan(columns["t"]).any():
            bad = int(np.flatnonzero(np.isnan(columns["t"]))[0])
            raise ImportFormatError(f"{path}: line {bad + 2}: time column is empty")
        try:
            return cls(**columns)
        except ValueError as exc:
            raise ImportFormatError(f"{path}: {exc}") from exc

    def slice_time(self, t0: float, t1: float) -> AngleTable:
        """Rows with ``t0 <= t <= t1``."""
        m = (self.t >= t0) & (self.t <= t1)
        return AngleTable(**{f.name: getattr(self, f.name)[m] for f in fields(self)})
