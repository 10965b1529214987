"""``sensorhub analyze`` failures name the input they come from, whichever stage raises them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sensorhub.analysis import naming_input
from sensorhub.cli import main
from sensorhub.errors import CalibrationError, ConfigurationError
from sensorhub.recording import RecordCrcError

REPLAY_DATA = Path(__file__).resolve().parent.parent / "replay_data"


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("sensorhub analyze: error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_motion_stage_error_names_the_recording_and_the_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The first 60 kB of a session: the calibration protocol starts but never ends, so the motion
    # stage (not the reader) fails, with a message that on its own names no file.
    cut = tmp_path / "cut.shr"
    cut.write_bytes((REPLAY_DATA / "seated_right_9axis.shr").read_bytes()[:60_000])
    assert main(["analyze", str(cut), "--out", str(tmp_path / "out")]) == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"sensorhub analyze: error: {cut}: right leg: no final still phase"), line
    assert re.search(r"t = \d+\.\d\d s", line), line


def test_motion_stage_error_names_both_csv_files(examples_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ex = examples_dir / "seated_right_9axis"
    pelvis, thigh = tmp_path / "pelvis.csv", tmp_path / "thigh.csv"
    for src, dst in ((ex / "pelvis.csv", pelvis), (ex / "thigh.csv", thigh)):
        dst.write_text("".join((src.read_text().splitlines(keepends=True))[:300]))  # 3 s: no calibration protocol
    rc = main(["analyze", "--pelvis", str(pelvis), "--thigh", str(thigh), "--side", "right", "--drill", "seated_rotation",
               "--out", str(tmp_path / "out"), "--no-report"])
    assert rc == 2
    line = _error_line(capsys.readouterr().err)
    assert line.startswith(f"sensorhub analyze: error: {pelvis} + {thigh}: right leg: no leg swings"), line


def test_naming_input_prefixes_once_and_keeps_the_type() -> None:
    with pytest.raises(CalibrationError, match=r"^a\.shr: left leg: no still span$"), naming_input("a.shr", "left leg"):
        raise CalibrationError("no still span")
    # A message that already names the file (the readers' errors) is left as it is.
    with pytest.raises(RecordCrcError, match=r"^a\.shr: byte 12: bad$"), naming_input("a.shr", "left leg"):
        raise RecordCrcError("a.shr", 12, "bad")
    with pytest.raises(ConfigurationError, match=r"^t\.csv, line 3: x$"), naming_input("p.csv + t.csv"):
        raise ConfigurationError("t.csv, line 3: x")


def test_naming_input_notes_the_input_on_unexpected_errors() -> None:
    with pytest.raises(ValueError) as info, naming_input("a.shr", "right leg"):
        raise ValueError("shape mismatch")
    assert str(info.value) == "shape mismatch"
    assert info.value.__notes__ == ["while analysing a.shr (right leg)"]
