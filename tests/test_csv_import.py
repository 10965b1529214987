"""Tests of the IMU CSV importer/exporter: the shared example sessions, round trips, and every error."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorhub.csv_import import (
    CsvColumnCountError,
    CsvEmptyError,
    CsvExportError,
    CsvFormatError,
    CsvHeaderError,
    CsvTimeOrderError,
    CsvValueError,
    read_imu_csv,
    read_imu_csv_dir,
    write_imu_csv,
)
from sensorhub.errors import ImportFormatError
from sensorhub.samples import ImuSamples

HEADER = "t,ax,ay,az,gx,gy,gz"
ROWS = [
    "0.00,0.1,0.2,9.8,0.01,0.02,0.03",
    "0.01,0.1,0.2,9.8,0.01,0.02,0.03",
    "0.02,0.1,0.2,9.8,0.01,0.02,0.03",
    "0.03,0.1,0.2,9.8,0.01,0.02,0.03",
    "0.04,0.1,0.2,9.8,0.01,0.02,0.03",
]


def _csv(tmp_path: Path, text: str, name: str = "imu.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _lines(*lines: str) -> str:
    return "\n".join(lines) + "\n"


# --- the shared examples ------------------------------------------------------------------------------


@pytest.mark.parametrize("session", ["seated_right_9axis", "standing_left_6axis"])
def test_reads_the_example_sessions(examples_dir: Path, session: str) -> None:
    folder = examples_dir / session
    meta = json.loads((folder / "meta.json").read_text())
    samples = read_imu_csv_dir(folder)
    rates = [float(r) for r in meta["rates"].split(",")]
    for segment, rate in zip(("pelvis", "thigh"), rates, strict=True):
        s = samples[segment]
        with open(folder / f"{segment}.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert len(s) == len(rows) - 1
        assert s.has_mag == (not meta["no_mag"])
        first = [float(x) for x in rows[1]]
        last = [float(x) for x in rows[-1]]
        assert s.t_s[0] == first[0] and s.t_s[-1] == last[0]
        assert s.acc_m_s2[0].tolist() == first[1:4] and s.gyr_rad_s[-1].tolist() == last[4:7]
        if s.mag_uT is not None:
            assert s.mag_uT[0].tolist() == first[7:10]
        assert s.rate_hz == pytest.approx(rate, rel=1e-3)
        # Standing still during the first second: specific force of about +1 g, no rotation.
        still = s.t_s < s.t_s[0] + 1.0
        assert np.linalg.norm(s.acc_m_s2[still], axis=1).mean() == pytest.approx(9.81, abs=0.15)
        assert np.abs(s.gyr_rad_s[still]).max() < 0.1
        assert s.t_s.flags.c_contiguous and s.acc_m_s2.flags.c_contiguous and s.acc_m_s2.dtype == np.float64
    # the two sensors have their own rates and start times on one clock
    assert samples["pelvis"].t_s[0] != samples["thigh"].t_s[0]


# --- round trips ----------------------------------------------------------------------------------------


def _random_samples(n: int, t0: float, with_mag: bool, seed: int = 3) -> ImuSamples:
    rng = np.random.default_rng(seed)
    t = t0 + np.cumsum(rng.uniform(0.004, 0.012, n))
    return ImuSamples(
        t_s=t,
        acc_m_s2=rng.normal([0, 0, 9.81], 2.0, (n, 3)),
        gyr_rad_s=rng.normal(0, 1.5, (n, 3)),
        mag_uT=rng.normal([20, 5, -40], 3, (n, 3)) if with_mag else None,
    )


@pytest.mark.parametrize(("t0", "with_mag"), [(0.0, True), (0.0, False), (1_763_712_000.0, True)])
def test_write_read_round_trip(tmp_path: Path, t0: float, with_mag: bool) -> None:
    original = _random_samples(500, t0, with_mag)
    path = tmp_path / "rt.csv"
    write_imu_csv(path, original)
    assert path.read_text().splitlines()[0] == HEADER + (",mx,my,mz" if with_mag else "")
    back = read_imu_csv(path)
    # time to the nanosecond (at epoch scale, a double resolves ~0.24 µs: exact either way)
    np.testing.assert_allclose(back.t_s, original.t_s, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back.acc_m_s2, original.acc_m_s2, rtol=1e-8)
    np.testing.assert_allclose(back.gyr_rad_s, original.gyr_rad_s, rtol=1e-8)
    assert back.has_mag == with_mag
    if with_mag:
        assert original.mag_uT is not None and back.mag_uT is not None
        np.testing.assert_allclose(back.mag_uT, original.mag_uT, rtol=1e-8)
    assert not list(tmp_path.glob("*.partial"))


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(
        st.floats(width=32, allow_nan=False, allow_infinity=False, min_value=-2000, max_value=2000),
        min_size=9,
        max_size=9,
    ),
    n=st.integers(1, 5),
)
def test_float32_sensor_values_round_trip_exactly(tmp_path_factory: pytest.TempPathFactory, values: list[float], n: int) -> None:
    """9 significant digits identify every float32: a sensor's float32 readings survive the trip exactly."""
    data_f32 = np.tile(np.asarray(values, dtype=np.float32), (n, 1))
    data = data_f32.astype(np.float64)
    t_s = np.linspace(0.0, 0.01 * (n - 1), n)
    samples = ImuSamples(t_s=t_s, acc_m_s2=data[:, 0:3], gyr_rad_s=data[:, 3:6], mag_uT=data[:, 6:9])
    path = tmp_path_factory.mktemp("f32") / "f32.csv"
    write_imu_csv(path, samples)
    back = read_imu_csv(path)
    assert back.mag_uT is not None
    back_all = np.hstack([back.acc_m_s2, back.gyr_rad_s, back.mag_uT])
    assert np.array_equal(back_all.astype(np.float32), data_f32)
    np.testing.assert_allclose(back_all, data, rtol=5e-9, atol=0)


def test_column_order_comments_blank_lines_crlf_and_bom(tmp_path: Path) -> None:
    text = (
        "\ufeff# exported by some other system\r\n"
        "\r\n"
        "gz,gy,gx,mz,my,mx,az,ay,ax,t\r\n"
        "3,2,1,-40,5,20,9.8,0.2,0.1,10.0\r\n"
        "# pause\r\n"
        "6,5,4,-41,6,21,9.7,0.3,0.2,10.5   # trailing comment\r\n"
    )
    path = tmp_path / "odd.csv"
    path.write_bytes(text.encode("utf-8"))
    s = read_imu_csv(path)
    assert s.t_s.tolist() == [10.0, 10.5]
    assert s.acc_m_s2.tolist() == [[0.1, 0.2, 9.8], [0.2, 0.3, 9.7]]
    assert s.gyr_rad_s.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert s.mag_uT is not None and s.mag_uT.tolist() == [[20, 5, -40], [21, 6, -41]]


# --- errors name file, line and column ---------------------------------------------------------------


def _error(tmp_path: Path, text: str, kind: type[CsvFormatError]) -> CsvFormatError:
    path = _csv(tmp_path, text)
    with pytest.raises(kind) as info:
        read_imu_csv(path)
    err = info.value
    assert isinstance(err, ImportFormatError) and isinstance(err, ValueError)
    assert str(err).startswith(str(path))
    return err


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    err = _error(tmp_path, "", CsvEmptyError)
    assert "empty file" in str(err)
    err = _error(tmp_path, "# only a comment\n\n", CsvEmptyError)
    err = _error(tmp_path, _lines("# comment", HEADER), CsvEmptyError)
    assert err.line == 2 and "no data rows" in str(err)


@pytest.mark.parametrize(
    ("header", "column", "message"),
    [
        ("t,ax,ay,az,gx,gy", "gz", "missing column(s) gz"),
        ("t,ax,ay,gx,gy,gz,mx,my,mz", "az", "missing column(s) az"),
        ("t,ax,ay,az,gx,gy,gz,temp", "temp", "unknown column"),
        ("t,ax,ay,az,gx,gy,gz,ax", "ax", "column named twice (fields 2 and 8)"),
        ("t,ax,ay,az,gx,gy,gz,mx", "my", "magnetometer columns incomplete: have mx, missing my,mz"),
        ("0.0,0.1,0.2,9.8,0.01,0.02,0.03", "0.0", "header must be the first line"),
        ("t;ax;ay;az;gx;gy;gz", "t;ax;ay;az;gx;gy;gz", "separated by ','"),
    ],
)
def test_header_errors(tmp_path: Path, header: str, column: str, message: str) -> None:
    err = _error(tmp_path, _lines(header, *ROWS), CsvHeaderError)
    assert (err.line, err.column) == (1, column)
    assert message in str(err)
    assert f"line 1, column '{column}'" in str(err)


def test_wrong_field_count(tmp_path: Path) -> None:
    rows = list(ROWS)
    rows[2] = "0.02,0.1,0.2,9.8,0.01,0.02"
    err = _error(tmp_path, _lines(HEADER, *rows), CsvColumnCountError)
    assert err.line == 4 and "6 fields; expected 7" in str(err)
    rows[2] = "0.02,0,1,0.2,9.8,0.01,0.02,0.03"
    err = _error(tmp_path, _lines(HEADER, *rows), CsvColumnCountError)
    assert err.line == 4 and "decimal commas" in str(err)


@pytest.mark.parametrize(
    ("bad", "column", "message"),
    [
        ("abc", "gy", "'abc' is not a number"),
        ("nan", "gy", "'nan' is not a finite number"),
        ("-Inf", "gy", "'-Inf' is not a finite number"),
        ("", "gy", "empty field"),
        ("1e999", "gy", "overflows"),
        ("1_0", "gy", "'1_0' is not a number"),
    ],
)
def test_bad_values_name_line_and_column(tmp_path: Path, bad: str, column: str, message: str) -> None:
    rows = list(ROWS)
    rows[3] = f"0.03,0.1,0.2,9.8,0.01,{bad},0.03"
    # a comment and a blank line before it: line numbers are physical lines of the file
    err = _error(tmp_path, _lines("# comment", HEADER, *rows[:2], "", *rows[2:]), CsvValueError)
    assert (err.line, err.column) == (7, column)
    assert message in str(err) and "line 7, column 'gy'" in str(err)


def test_time_must_increase_strictly(tmp_path: Path) -> None:
    rows = list(ROWS)
    rows[4] = rows[3]  # duplicate time 0.03 on line 6
    err = _error(tmp_path, _lines(HEADER, *rows), CsvTimeOrderError)
    assert (err.line, err.column) == (6, "t")
    assert "t=0.03 s is not after t=0.03 s on line 5" in str(err)
    rows[4] = "0.025,0.1,0.2,9.8,0.01,0.02,0.03"
    err = _error(tmp_path, _lines(HEADER, *rows), CsvTimeOrderError)
    assert err.line == 6 and "t=0.025 s is not after t=0.03 s" in str(err)


def test_error_deep_in_a_large_file_is_located(tmp_path: Path) -> None:
    samples = _random_samples(20_000, 0.0, True)
    path = tmp_path / "big.csv"
    write_imu_csv(path, samples)
    lines = path.read_text().splitlines()
    fields = lines[15_001].split(",")
    fields[8] = "NaN"  # my
    lines[15_001] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CsvValueError) as info:
        read_imu_csv(path)
    assert (info.value.line, info.value.column) == (15_002, "my")


def test_missing_file_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(CsvFormatError, match="cannot read"):
        read_imu_csv(tmp_path / "nope.csv")
    path = tmp_path / "bin.csv"
    path.write_bytes(b"t,ax\xff\xfe\x00")
    with pytest.raises(CsvFormatError, match="not UTF-8 text"):
        read_imu_csv(path)
    with pytest.raises(CsvFormatError, match=r"missing thigh\.csv"):
        _csv(tmp_path, _lines(HEADER, *ROWS), "pelvis.csv")
        read_imu_csv_dir(tmp_path)


def test_unit_mistakes_are_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows_in_g = [f"{i * 0.01:.2f},0.01,0.02,1.0,0.1,0.2,0.3" for i in range(5)]
    with caplog.at_level(logging.WARNING, logger="sensorhub.csv_import"):
        read_imu_csv(_csv(tmp_path, _lines(HEADER, *rows_in_g)))
    assert "is the file in g?" in caplog.text
    caplog.clear()
    rows_deg = [f"{i * 0.01:.2f},0.1,0.2,9.8,0.1,250.0,0.3" for i in range(5)]
    with caplog.at_level(logging.WARNING, logger="sensorhub.csv_import"):
        read_imu_csv(_csv(tmp_path, _lines(HEADER, *rows_deg)))
    assert "not °/s" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sensorhub.csv_import"):
        read_imu_csv(_csv(tmp_path, _lines(HEADER, *ROWS)))
    assert caplog.text == ""


# --- export errors ----------------------------------------------------------------------------------


def test_write_refuses_invalid_samples(tmp_path: Path) -> None:
    good = _random_samples(10, 0.0, False)
    acc = good.acc_m_s2.copy()
    acc[4, 1] = np.nan
    with pytest.raises(CsvExportError, match="sample 4 has ay=nan"):
        write_imu_csv(tmp_path / "x.csv", ImuSamples(good.t_s, acc, good.gyr_rad_s))
    t = good.t_s.copy()
    t[6] = t[5]
    with pytest.raises(CsvExportError, match=r"t_s\[6\]=.* is not after t_s\[5\]"):
        write_imu_csv(tmp_path / "x.csv", ImuSamples(t, good.acc_m_s2, good.gyr_rad_s))
    empty = np.zeros((0, 3))
    with pytest.raises(CsvExportError, match="no samples"):
        write_imu_csv(tmp_path / "x.csv", ImuSamples(np.zeros(0), empty, empty))
    assert not (tmp_path / "x.csv").exists()
