"""The simulator against the independent example sessions in shared/examples.

1. Conventions: rebuilding the examples' segment orientations from their truth angles with *this*
   simulator's conventions (ISB Z-X-Y, left-side sign mirroring, standing-neutral pelvis frame,
   heading, mounts) must reproduce the examples' own gyroscope and accelerometer data. If a sign or
   an order differed, the error would be of the size of the signal, not of the noise.
2. Anatomy: in the seated right example, internal rotation moves the foot laterally.
3. Realism: a simulated session with the examples' settings has comparable timing, ranges and
   sensor statistics at rest (docs/simulator.md lists the numbers).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from sensorhub.sim import SimConfig, simulate, write_csv_dir
from sensorhub.sim.imu import GRAVITY_M_S2
from sensorhub.sim.kinematics import Kinematics, MotionScript
from sensorhub.sim.rotations import cardan_zxy, matrix_from_quat_wxyz
from sensorhub.sim.stats import session_stats

EXAMPLES = ("seated_right_9axis", "standing_left_6axis")


def _load(path: Path) -> dict[str, np.ndarray]:
    data = np.genfromtxt(path, delimiter=",", names=True)
    assert data.dtype.names is not None
    return {n: np.asarray(data[n], dtype=float) for n in data.dtype.names}


def _example_orientations(example: Path) -> tuple[dict, dict[str, np.ndarray], np.ndarray]:
    """Earth-from-sensor matrices of both sensors at the truth times, built with the simulator's conventions."""
    meta = json.loads((example / "meta.json").read_text())
    truth = _load(example / "truth.csv")
    s = 1.0 if meta["side"] == "right" else -1.0
    kin = Kinematics(MotionScript().build(), meta["side"], meta["heading_deg"])
    rad = {k: np.radians(v) for k, v in truth.items() if k != "t"}
    r_pelvis = kin.r_earth_pelvis_neutral @ cardan_zxy(rad["pelvis_tilt_z"], rad["pelvis_obliquity_x"],
                                                       rad["pelvis_rotation_y"])
    r_femur = r_pelvis @ cardan_zxy(rad["hip_flexion"], s * rad["hip_adduction"], s * rad["hip_rotation"])
    mounts = {seg: matrix_from_quat_wxyz(np.array(q)) for seg, q in meta["mounts_wxyz"].items()}
    return meta, {"pelvis": r_pelvis @ mounts["pelvis"], "thigh": r_femur @ mounts["thigh"]}, truth["t"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_simulator_conventions_reproduce_the_examples_sensor_data(examples_dir: Path, name: str) -> None:
    example = examples_dir / name
    _, r_earth_sensor, t = _example_orientations(example)
    for segment, r in r_earth_sensor.items():
        imu = _load(example / f"{segment}.csv")
        # Body-frame angular velocity from consecutive truth orientations.
        rel = np.einsum("nji,njk->nik", r[:-1], r[1:])
        w_truth = Rotation.from_matrix(rel).as_rotvec() / np.diff(t)[:, None]
        t_mid = 0.5 * (t[:-1] + t[1:])
        gyr = np.column_stack([np.interp(t_mid, imu["t"], imu[c]) for c in ("gx", "gy", "gz")])
        signal = np.sqrt(np.mean(w_truth**2))
        err = np.sqrt(np.mean((gyr - w_truth) ** 2))
        assert signal > 0.08
        assert err < min(0.02, 0.15 * signal), f"{name} {segment}: gyro differs by {err:.3f} rad/s RMS from the rebuilt motion"
        # Gravity direction in the sensor frame (the accelerometer also sees linear acceleration).
        acc = np.column_stack([np.interp(t, imu["t"], imu[c]) for c in ("ax", "ay", "az")])
        g_sensor = np.einsum("nji,j->ni", r, np.array([0.0, 0.0, GRAVITY_M_S2]))
        assert np.sqrt(np.mean((acc - g_sensor) ** 2)) < 0.5


def test_seated_right_internal_rotation_moves_the_foot_laterally_in_the_example(examples_dir: Path) -> None:
    example = examples_dir / "seated_right_9axis"
    meta, r_earth_sensor, t = _example_orientations(example)
    truth = _load(example / "truth.csv")
    reps = json.loads((example / "reps.json").read_text())
    mount = matrix_from_quat_wxyz(np.array(meta["mounts_wxyz"]["thigh"]))
    r_femur = r_earth_sensor["thigh"] @ mount.T
    rep = reps[0]
    sel = np.flatnonzero((t >= rep["t_start"]) & (t <= rep["t_end"]))
    i_ir = sel[np.argmax(truth["hip_rotation"][sel])]
    i_0 = sel[0]
    foot = [r_femur[i] @ np.array([0.0, -0.45, 0.0]) + r_femur[i] @ np.array([-0.42, 0.0, 0.0]) for i in (i_0, i_ir)]
    kin = Kinematics(MotionScript().build(), "right", meta["heading_deg"])
    right = kin.r_earth_pelvis_neutral @ np.array([0.0, 0.0, 1.0])
    assert (foot[1] - foot[0]) @ right > 0.15


@pytest.fixture(scope="module")
def simulated_like_examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("like_examples")
    configs = {
        "seated_right_9axis": SimConfig(drill="seated_rotation", side="right", seed=7, rates_hz=(100.0, 120.0)),
        "standing_left_6axis": SimConfig(drill="standing_rotation", side="left", seed=8, no_mag=True,
                                         compensation_reps=(2, 5), rates_hz=(100.0, 120.0)),
    }
    out = {}
    for name, cfg in configs.items():
        write_csv_dir(simulate(cfg), root / name)
        out[name] = root / name
    return out


@pytest.mark.parametrize("name", EXAMPLES)
def test_simulated_sessions_resemble_the_examples(
    examples_dir: Path, simulated_like_examples: dict[str, Path], name: str
) -> None:
    ref = session_stats(examples_dir / name)
    sim = session_stats(simulated_like_examples[name])
    assert sim["reps"] == ref["reps"] and sim["compensation_reps"] == ref["compensation_reps"]
    assert sim["static1_s"] >= 3.0 and sim["static2_s"] >= 2.0
    for key in ("functional_s", "hinge_s"):
        assert sim[key] == pytest.approx(ref[key], rel=0.3), key
    assert sim["duration_s"] == pytest.approx(ref["duration_s"], rel=0.35)
    assert sim["rep_duration_s"] == pytest.approx(ref["rep_duration_s"], rel=0.35)
    assert sim["drill_flexion_median_deg"] == pytest.approx(ref["drill_flexion_median_deg"], abs=8.0)
    assert sim["hinge_min_tilt_deg"] == pytest.approx(ref["hinge_min_tilt_deg"], abs=6.0)
    for key in ("peak_internal_rotation_deg", "peak_external_rotation_deg"):
        assert 15.0 < sim[key][0] and sim[key][1] < 50.0
    assert sim["pelvis_motion_clean_max_deg"] < 5.0 and ref["pelvis_motion_clean_max_deg"] < 5.0
    assert sim["pelvis_motion_compensated_min_deg"] > 10.0 and ref["pelvis_motion_compensated_min_deg"] > 10.0
    for segment in ("pelvis", "thigh"):
        r, s = ref[segment], sim[segment]
        assert s["rate_hz"] == pytest.approx(r["rate_hz"], rel=1e-3)
        assert s["acc_norm_mean_m_s2"] == pytest.approx(r["acc_norm_mean_m_s2"], abs=0.15)
        # Noise at rest within a factor of 2.5 of the examples' (same class of consumer IMU).
        for key in ("acc_std_m_s2", "gyr_std_rad_s"):
            assert r[key] / 2.5 < s[key] < r[key] * 2.5, (segment, key, s[key], r[key])
        if "mag_norm_uT" in r:
            assert s["mag_norm_uT"] == pytest.approx(r["mag_norm_uT"], rel=0.1)
            assert s["mag_dip_deg"] == pytest.approx(r["mag_dip_deg"], abs=5.0)
