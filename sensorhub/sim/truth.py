"""Ground truth of a simulated session, computed from the true segment orientations.

The truth angles are not copied from the script: they are decomposed again from the simulated
pelvis and femur orientations, exactly as an ideal measurement would, with the conventions of the
shared examples (/work/shared/examples/README.md):

* hip: ``R_pelvis_femur = R_earth_pelvis^T R_earth_femur = Rz(flexion) Rx(beta) Ry(gamma)``;
  adduction = ``s * beta``, internal rotation = ``s * gamma`` (``s = +1`` right, ``-1`` left);
* pelvis: its own Z-X-Y Cardan angles relative to its standing neutral,
  ``R_pelvis0^T R_earth_pelvis = Rz(tilt) Rx(obliquity) Ry(rotation)``.

Files: ``truth.csv`` (100 Hz, degrees, 5 decimals), ``reps.json`` and ``meta.json``, laid out like
the examples. Pure computation plus small writers; nothing here draws random numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sensorhub.sim.kinematics import Kinematics
from sensorhub.sim.rotations import FloatArray, matrix_to_cardan_zxy
from sensorhub.sim.scenario import ScriptedRep

TRUTH_COLUMNS: tuple[str, ...] = (
    "t",
    "hip_flexion",
    "hip_adduction",
    "hip_rotation",
    "pelvis_tilt_z",
    "pelvis_obliquity_x",
    "pelvis_rotation_y",
)
TRUTH_RATE_HZ = 100.0


def truth_angles_deg(kinematics: Kinematics, t_s: FloatArray) -> FloatArray:
    """Truth table at ``t_s``: shape (n, 7), columns :data:`TRUTH_COLUMNS` (time, then degrees)."""
    st = kinematics.evaluate(np.asarray(t_s, dtype=float))
    s = kinematics.side_sign
    r_pf = np.einsum("nji,njk->nik", st.r_earth_pelvis, st.r_earth_femur)
    flex, beta, gamma = matrix_to_cardan_zxy(r_pf)
    r_p0p = kinematics.r_earth_pelvis_neutral.T @ st.r_earth_pelvis
    tilt, obl, rot = matrix_to_cardan_zxy(r_p0p)
    angles = np.degrees(np.column_stack([flex, s * beta, s * gamma, tilt, obl, rot]))
    return np.column_stack([st.t_s, angles])


def pelvis_excursion_deg(kinematics: Kinematics, t_s: FloatArray, t_ref_s: float) -> FloatArray:
    """Angle (degrees) of the pelvis's rotation at ``t_s`` relative to its orientation at ``t_ref_s``."""
    r_ref = kinematics.evaluate(np.array([t_ref_s])).r_earth_pelvis[0]
    r = kinematics.evaluate(np.asarray(t_s, dtype=float)).r_earth_pelvis
    rel = np.einsum("ji,njk->nik", r_ref, r)
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


@dataclass(frozen=True)
class TruthRep:
    """One rep of ``reps.json`` (keys and meaning exactly as in the shared examples)."""

    t_start: float
    t_end: float
    compensation: bool
    peak_internal_rotation: float
    peak_external_rotation: float
    peak_pelvis_excursion_deg: float
    """Largest pelvis rotation relative to its orientation at rep start (kept out of reps.json)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "t_start": self.t_start,
            "t_end": self.t_end,
            "compensation": self.compensation,
            "peak_internal_rotation": self.peak_internal_rotation,
            "peak_external_rotation": self.peak_external_rotation,
        }


def truth_reps(kinematics: Kinematics, reps: Sequence[ScriptedRep], dt_s: float = 2e-3) -> list[TruthRep]:
    """Peaks of each scripted rep measured on the true hip rotation, sampled every ``dt_s``."""
    out: list[TruthRep] = []
    for rep in reps:
        t = np.arange(rep.t_start_s, rep.t_end_s + dt_s / 2, dt_s)
        st = kinematics.evaluate(t)
        s = kinematics.side_sign
        r_pf = np.einsum("nji,njk->nik", st.r_earth_pelvis, st.r_earth_femur)
        rot = s * np.degrees(matrix_to_cardan_zxy(r_pf)[2])
        rel = np.einsum("ji,njk->nik", st.r_earth_pelvis[0], st.r_earth_pelvis)
        cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
        out.append(
            TruthRep(
                t_start=float(rep.t_start_s),
                t_end=float(rep.t_end_s),
                compensation=rep.compensation,
                peak_internal_rotation=float(rot.max()),
                peak_external_rotation=float(-rot.min()),
                peak_pelvis_excursion_deg=float(np.degrees(np.arccos(cos)).max()),
            )
        )
    return out


def write_truth_csv(path: Path, table: FloatArray) -> None:
    """Write the truth table like the examples: header, then ``%.5f`` columns."""
    header = ",".join(TRUTH_COLUMNS)
    np.savetxt(path, table, fmt="%.5f", delimiter=",", header=header, comments="")


def write_json(path: Path, obj: Mapping[str, Any] | Sequence[Any]) -> None:
    path.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
