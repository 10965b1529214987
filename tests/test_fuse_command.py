"""``sensorhub fuse``: file in, one quaternion row per sample out, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sensorhub.cli import main
from sensorhub.motion import quat
from sensorhub.motion.fusion_eval import error_angles_rad


def read_output(path: Path) -> np.ndarray:
    with path.open() as f:
        assert f.readline().strip() == "t,qw,qx,qy,qz"
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def inclination_deg(q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    return np.rad2deg(error_angles_rad(q1, q2)[2])


@pytest.fixture
def short_9axis_csv(examples_dir: Path, tmp_path: Path) -> Path:
    """The first 1500 rows (12.5 s at 120 Hz) of an example thigh sensor, 9-axis."""
    lines = (examples_dir / "seated_right_9axis" / "thigh.csv").read_text().splitlines()[:1501]
    path = tmp_path / "thigh.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_one_row_per_input_row_with_unit_quaternions(short_9axis_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "q.csv"
    assert main(["fuse", str(short_9axis_csv), str(out)]) == 0
    table = read_output(out)
    t_in = np.loadtxt(short_9axis_csv, delimiter=",", skiprows=1)[:, 0]
    assert table.shape == (len(t_in), 5)
    np.testing.assert_allclose(table[:, 0], t_in, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(table[:, 1:], axis=1), 1.0, atol=1e-8)
    assert not (tmp_path / "q.csv.partial").exists()


def test_modes_agree_on_inclination_and_differ_in_heading(short_9axis_csv: Path, tmp_path: Path) -> None:
    runs = {
        "online": [],
        "offline": ["--offline"],
        "no_mag": ["--no-mag"],
        "madgwick": ["--method", "madgwick"],
    }
    q = {}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.csv"
        assert main(["fuse", str(short_9axis_csv), str(out), *extra]) == 0
        q[name] = read_output(out)[:, 1:]
    settled = slice(300, None)  # after 2.5 s
    for name in ("offline", "no_mag", "madgwick"):
        assert np.median(inclination_deg(q[name], q["online"])[settled]) < 2.0, name
    # Without the magnetometer the heading is arbitrary, so the full orientation differs.
    total = np.rad2deg(quat.relative_angle_rad(q["no_mag"], q["online"]))
    assert np.median(total[settled]) > 5.0
    # Online vs offline: same data, genuinely different algorithms.
    assert np.abs(q["offline"] - q["online"]).max() > 1e-4


def test_six_axis_file_needs_no_option(examples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "q.csv"
    assert main(["fuse", str(examples_dir / "standing_left_6axis" / "pelvis.csv"), str(out)]) == 0
    assert read_output(out).shape == (5681, 5)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--offline", "--method", "mahony"], "--offline is only available for --method vqf"),
        (["--param", "restThGyro=1.0"], "unknown VQF parameter(s) restThGyro"),
        (["--param", "restThGyr"], "expected NAME=VALUE"),
        (["--param", "restThGyr=fast"], "'fast' is not a number"),
        (["--method", "madgwick", "--param", "beta_gain=0.1"], "madgwick: unknown parameter(s) beta_gain"),
    ],
)
def test_option_errors_are_one_clear_line(
    short_9axis_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["fuse", str(short_9axis_csv), str(tmp_path / "q.csv"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sensorhub fuse: error:") and message in err
    assert not (tmp_path / "q.csv").exists()


def test_file_errors_name_the_file(short_9axis_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.csv"
    assert main(["fuse", str(missing), str(tmp_path / "q.csv")]) == 2
    assert str(missing) in capsys.readouterr().err
    unwritable = tmp_path / "no_such_dir" / "q.csv"
    assert main(["fuse", str(short_9axis_csv), str(unwritable)]) == 2
    assert f"cannot write {unwritable}" in capsys.readouterr().err
