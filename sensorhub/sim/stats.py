"""Summary statistics of a session in the IMU CSV format, to compare simulators with each other.

Used to hold the project's simulator against the independent example sessions in
/work/shared/examples (a test and docs/simulator.md): durations, calibration phase timing, angle
ranges, pelvis motion in clean and compensated reps, and what the sensors read at rest. Reads a
directory laid out like the examples (pelvis.csv, thigh.csv, truth.csv, reps.json, meta.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sensorhub.errors import ImportFormatError


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    try:
        data = np.genfromtxt(path, delimiter=",", names=True)
    except (OSError, ValueError) as exc:
        raise ImportFormatError(f"{path}: cannot read as a CSV with a header line: {exc}") from exc
    if data.dtype.names is None:
        raise ImportFormatError(f"{path}: no header line")
    return {name: np.asarray(data[name], dtype=float) for name in data.dtype.names}


def _rest_stats(cols: dict[str, np.ndarray], t0: float, t1: float) -> dict[str, float]:
    t = cols["t"]
    sel = (t > t0) & (t < t1)
    acc = np.column_stack([cols["ax"], cols["ay"], cols["az"]])[sel]
    gyr = np.column_stack([cols["gx"], cols["gy"], cols["gz"]])[sel]
    out = {
        "rate_hz": float(1.0 / np.median(np.diff(t))),
        "acc_norm_mean_m_s2": float(np.linalg.norm(acc, axis=1).mean()),
        "acc_std_m_s2": float(acc.std(axis=0).mean()),
        "gyr_std_rad_s": float(gyr.std(axis=0).mean()),
        "gyr_mean_norm_rad_s": float(np.linalg.norm(gyr.mean(axis=0))),
    }
    if "mx" in cols:
        mag = np.column_stack([cols["mx"], cols["my"], cols["mz"]])[sel]
        a = acc.mean(axis=0)
        m = mag.mean(axis=0)
        out["mag_norm_uT"] = float(np.linalg.norm(mag, axis=1).mean())
        out["mag_std_uT"] = float(mag.std(axis=0).mean())
        out["mag_dip_deg"] = float(np.degrees(np.arcsin(-(a @ m) / np.linalg.norm(a) / np.linalg.norm(m))))
    return out


def session_stats(directory: str | Path) -> dict[str, Any]:
    """Statistics of one session directory (see the module docstring); angles in degrees."""
    d = Path(directory)
    meta = json.loads((d / "meta.json").read_text())
    reps = json.loads((d / "reps.json").read_text())
    truth = _read_csv(d / "truth.csv")
    seg = meta["segments"]
    static1, static2 = seg["static"][0], seg["static"][-1]
    t = truth["t"]
    pelvis = np.column_stack([truth["pelvis_tilt_z"], truth["pelvis_obliquity_x"], truth["pelvis_rotation_y"]])

    def pelvis_motion(rep: dict[str, Any]) -> float:
        sel = (t >= rep["t_start"]) & (t <= rep["t_end"])
        p = pelvis[sel]
        return float(np.linalg.norm(p - p[0], axis=1).max())

    drill = (t >= reps[0]["t_start"]) & (t <= reps[-1]["t_end"])
    clean = [pelvis_motion(r) for r in reps if not r["compensation"]]
    comp = [pelvis_motion(r) for r in reps if r["compensation"]]
    stats: dict[str, Any] = {
        "duration_s": float(t[-1]),
        "static1_s": static1[1] - static1[0],
        "functional_s": seg["functional"][0][1] - seg["functional"][0][0],
        "hinge_s": seg["hinge"][0][1] - seg["hinge"][0][0],
        "static2_s": static2[1] - static2[0],
        "reps": len(reps),
        "compensation_reps": [i + 1 for i, r in enumerate(reps) if r["compensation"]],
        "rep_duration_s": float(np.mean([r["t_end"] - r["t_start"] for r in reps])),
        "peak_internal_rotation_deg": (min(r["peak_internal_rotation"] for r in reps),
                                       max(r["peak_internal_rotation"] for r in reps)),
        "peak_external_rotation_deg": (min(r["peak_external_rotation"] for r in reps),
                                       max(r["peak_external_rotation"] for r in reps)),
        "drill_flexion_median_deg": float(np.median(truth["hip_flexion"][drill])),
        "functional_flexion_range_deg": (
            float(truth["hip_flexion"][(t >= seg["functional"][0][0]) & (t <= seg["functional"][0][1])].min()),
            float(truth["hip_flexion"][(t >= seg["functional"][0][0]) & (t <= seg["functional"][0][1])].max()),
        ),
        "hinge_min_tilt_deg": float(truth["pelvis_tilt_z"][(t >= seg["hinge"][0][0]) & (t <= seg["hinge"][0][1])].min()),
        "pelvis_motion_clean_max_deg": max(clean) if clean else None,
        "pelvis_motion_compensated_min_deg": min(comp) if comp else None,
    }
    for name in ("pelvis", "thigh"):
        cols = _read_csv(d / f"{name}.csv")
        stats[name] = _rest_stats(cols, static1[0] + 0.5, static1[1] - 0.3)
        stats[name]["t_first_s"] = float(cols["t"][0])
    return stats
