"""Malformed recordings and IMU CSV files through the command line: one clear line, never a traceback.

Each damaged input goes through ``sensorhub inspect``, ``replay``, ``analyze`` (recordings) or
``fuse`` and ``analyze --pelvis/--thigh`` (CSV files). The command must exit with code 2 and print
exactly one line on stderr that names the file and the position: the byte offset of the bad record
for a recording, the line (and column where there is one) for a CSV file. Most cases run the
command in-process (fast); two run the installed console script to check the real stderr.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sensorhub.cli import main
from sensorhub.errors import ProtocolError
from sensorhub.notification import Notification
from sensorhub.protocol import decode_packet, encode_packet_raw
from sensorhub.recording import MAGIC, RecordingWriter

HEADER_SIZE = 12

# -- a small valid recording and its records ------------------------------------------------------------


def _record(rtype: int, payload: bytes) -> bytes:
    head = struct.pack("<BI", rtype, len(payload))
    return head + payload + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head)))


def _json(rtype: int, obj: object) -> bytes:
    return _record(rtype, json.dumps(obj).encode())


META, SENSOR, NOTIFY, MARK, CALIBRATION, END = 1, 2, 3, 4, 5, 6


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("cli") / "valid.shr"
    with RecordingWriter(path, {"drill": "seated_rotation", "side": "right", "source": "test"},
                         background_flush=False) as w:
        w.add_sensor("P", segment="pelvis", rate_hz=100.0)
        w.add_sensor("T", segment="thigh", side="right", rate_hz=100.0)
        for k in range(6):
            for i, sid in enumerate("PT"):
                payload = encode_packet_raw(seq=k, t_first_us=40_000 * k, rate_code=3, range_code=1,
                                            raw=np.full((4, 6), 100 * k, dtype=np.int64))
                w.write_notification(Notification(sid, 0.04 * k + 0.04 + 0.001 * i, payload))
        w.write_mark(0.1, "drill_start")
    return path.read_bytes()


def records(raw: bytes) -> list[tuple[int, bytes]]:
    """(offset, bytes) of every record after the file header."""
    out, off = [], HEADER_SIZE
    while off < len(raw):
        (length,) = struct.unpack_from("<I", raw, off + 1)
        out.append((off, raw[off: off + 9 + length]))
        off += 9 + length
    return out


def first_of(raw: bytes, rtype: int) -> tuple[int, bytes]:
    return next((o, r) for o, r in records(raw) if r[0] == rtype)


def replace_record(raw: bytes, offset: int, new: bytes) -> bytes:
    (length,) = struct.unpack_from("<I", raw, offset + 1)
    return raw[:offset] + new + raw[offset + 9 + length:]


Damage = Callable[[bytes], tuple[bytes, int]]
"""valid bytes -> (damaged bytes, byte offset the error must name)"""


def _crc_mid_file(raw: bytes) -> tuple[bytes, int]:
    off, _ = first_of(raw, NOTIFY)
    damaged = bytearray(raw)
    damaged[off + 20] ^= 0xFF
    return bytes(damaged), off


def _insert_before_first_notify(raw: bytes, new: bytes) -> tuple[bytes, int]:
    off, _ = first_of(raw, NOTIFY)
    return raw[:off] + new + raw[off:], off


def _absurd_length(raw: bytes) -> tuple[bytes, int]:
    off, _ = first_of(raw, NOTIFY)
    return raw[:off] + struct.pack("<BI", MARK, 0x7FFF_FFFF) + raw[off + 5:], off + 1


def _sensor_before_meta(raw: bytes) -> tuple[bytes, int]:
    recs = records(raw)
    return raw[:HEADER_SIZE] + recs[1][1] + recs[0][1] + b"".join(r for _, r in recs[2:]), HEADER_SIZE


def _notify_payload(index: int, t: float) -> bytes:
    return struct.pack("<Hd", index, t) + encode_packet_raw(seq=0, t_first_us=0, rate_code=3, range_code=1,
                                                             raw=np.zeros((1, 6), dtype=np.int64))


RECORDING_CASES: dict[str, Damage] = {
    "empty file": lambda raw: (b"", 0),
    "a CSV file given as recording": lambda raw: (b"t,ax,ay,az,gx,gy,gz\n0,0,0,9.8,0,0,0\n", 0),
    "header cut short": lambda raw: (raw[:7], 0),
    "major version 2": lambda raw: (MAGIC + struct.pack("<HH", 2, 0) + raw[HEADER_SIZE:], 8),
    "CRC mismatch mid-file": _crc_mid_file,
    "unknown record type mid-file": lambda raw: _insert_before_first_notify(raw, _record(0x07, b"\x00" * 4)),
    "absurd record length": _absurd_length,
    "notification of an undeclared sensor": lambda raw: _insert_before_first_notify(raw, _record(NOTIFY, _notify_payload(7, 0.01))),
    "NaN notification time": lambda raw: _insert_before_first_notify(raw, _record(NOTIFY, _notify_payload(0, float("nan")))),
    "infinite notification time": lambda raw: _insert_before_first_notify(raw, _record(NOTIFY, _notify_payload(1, float("inf")))),
    "notification time of -1e308 s": lambda raw: _insert_before_first_notify(raw, _record(NOTIFY, _notify_payload(0, -1e308))),
    "NaN in a mark": lambda raw: _insert_before_first_notify(raw, _record(MARK, b'{"t_host_s": NaN, "label": "rep"}')),
    "metadata is a JSON list": lambda raw: (replace_record(raw, HEADER_SIZE, _record(META, b"[1, 2]")), HEADER_SIZE),
    "metadata is not UTF-8": lambda raw: (replace_record(raw, HEADER_SIZE, _record(META, b'{"drill": "\xff"}')), HEADER_SIZE),
    "sensor before metadata": _sensor_before_meta,
    "sensor declared twice": lambda raw: _insert_before_first_notify(
        raw, _json(SENSOR, {"sensor_id": "P", "segment": "pelvis"})),
    "sensor with a bad side": lambda raw: _insert_before_first_notify(
        raw, _json(SENSOR, {"sensor_id": "X", "segment": "thigh", "side": "middle"})),
    "record after END": lambda raw: (raw + _json(MARK, {"t_host_s": 1.0, "label": "late"}), len(raw)),
}

RECORDING_COMMANDS = {
    "inspect": lambda p, tmp: ["inspect", str(p)],
    "replay": lambda p, tmp: ["replay", "--fast", str(p)],
    "analyze": lambda p, tmp: ["analyze", str(p), "--out", str(tmp / "out"), "--no-report"],
}


def _one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert "Traceback" not in err
    assert lines[0].startswith(f"sensorhub {command}: error: ")
    return lines[0]


@pytest.mark.parametrize("command", list(RECORDING_COMMANDS))
@pytest.mark.parametrize("case", list(RECORDING_CASES))
def test_malformed_recording_is_one_line_naming_file_and_byte(
    valid: bytes, tmp_path: Path, case: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data, offset = RECORDING_CASES[case](valid)
    path = tmp_path / "damaged.shr"
    path.write_bytes(data)
    assert main(RECORDING_COMMANDS[command](path, tmp_path)) == 2
    line = _one_error_line(capsys.readouterr().err, command)
    assert f": error: {path}: byte {offset}: " in line, line
    assert not (tmp_path / "out").exists()  # analyze wrote nothing


def test_valid_recording_passes_the_same_commands(valid: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The yardstick: the undamaged file is read by inspect and replay without complaint."""
    path = tmp_path / "valid.shr"
    path.write_bytes(valid)
    assert main(["inspect", str(path)]) == 0
    assert main(["replay", "--fast", str(path)]) == 0
    assert capsys.readouterr().err == ""


# -- CSV files -------------------------------------------------------------------------------------------

GOOD_ROWS = [f"{0.01 * i:.2f},0.1,0.2,9.8,0.01,0.02,0.03" for i in range(200)]
HEADER = "t,ax,ay,az,gx,gy,gz"


def _csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


CSV_CASES: dict[str, tuple[bytes, int | None, str | None]] = {
    # name: (bytes, line the error must name (None: no line, e.g. an empty file), column or None)
    "empty file": (b"", None, None),
    "header only": (_csv(HEADER), 1, None),
    "missing column": (_csv("t,ax,ay,az,gx,gy", *GOOD_ROWS[:3]), 1, "gz"),
    "unknown column": (_csv(HEADER + ",temp", *GOOD_ROWS[:3]), 1, "temp"),
    "semicolons": (_csv(HEADER.replace(",", ";"), *GOOD_ROWS[:3]), 1, None),
    "too few fields": (_csv(HEADER, *GOOD_ROWS[:2], "0.02,0.1,0.2,9.8,0.01,0.02", *GOOD_ROWS[3:9]), 4, None),
    "decimal comma": (_csv(HEADER, *GOOD_ROWS[:4], "0,04,0.1,0.2,9.8,0.01,0.02,0.03"), 6, None),
    "not a number": (_csv(HEADER, GOOD_ROWS[0], "0.01,0.1,abc,9.8,0.01,0.02,0.03", *GOOD_ROWS[2:5]), 3, "ay"),
    "NaN value": (_csv(HEADER, *GOOD_ROWS[:3], "0.03,0.1,0.2,9.8,nan,0.02,0.03", *GOOD_ROWS[4:6]), 5, "gx"),
    "empty field": (_csv(HEADER, *GOOD_ROWS[:3], "0.03,0.1,0.2,9.8,0.01,,0.03"), 5, "gy"),
    "time going back": (_csv(HEADER, *GOOD_ROWS[:3], "0.01,0.1,0.2,9.8,0.01,0.02,0.03", *GOOD_ROWS[4:6]), 5, "t"),
    "invalid UTF-8 deep in the file": (
        _csv(HEADER, *[f"{0.01 * i:.2f},0.1,0.2,9.8,0.01,0.02,0.03" for i in range(3000)])
        + b"30.00,0.1,0.2,9.8,0.01,0.02,\xff0.03\n", 3002, None),
    "binary file": (bytes(range(256)) * 4, 1, None),
}


@pytest.fixture(scope="module")
def good_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("csv") / "good.csv"
    path.write_bytes(_csv(HEADER, *GOOD_ROWS))
    return path


CSV_COMMANDS = {
    "fuse": lambda bad, good, tmp: ["fuse", str(bad), str(tmp / "q.csv")],
    "analyze --pelvis": lambda bad, good, tmp: ["analyze", "--pelvis", str(bad), "--thigh", str(good), "--side", "right",
                                                "--drill", "seated_rotation", "--out", str(tmp / "out"), "--no-report"],
    "analyze --thigh": lambda bad, good, tmp: ["analyze", "--pelvis", str(good), "--thigh", str(bad), "--side", "left",
                                               "--drill", "seated_rotation", "--out", str(tmp / "out"), "--no-report"],
}


@pytest.mark.parametrize("command", list(CSV_COMMANDS))
@pytest.mark.parametrize("case", list(CSV_CASES))
def test_malformed_csv_is_one_line_naming_file_line_and_column(
    good_csv: Path, tmp_path: Path, case: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data, line_no, column = CSV_CASES[case]
    bad = tmp_path / "bad.csv"
    bad.write_bytes(data)
    argv = CSV_COMMANDS[command](bad, good_csv, tmp_path)
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err, argv[0])
    where = f": error: {bad}" + ("" if line_no is None else f", line {line_no}")
    assert where in line, line
    if column is not None:
        assert f", column '{column}': " in line, line
    assert not (tmp_path / "q.csv").exists() and not (tmp_path / "out").exists()


# -- the real console script -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["recording", "csv"])
def test_console_script_prints_one_line_and_exits_2(valid: bytes, good_csv: Path, tmp_path: Path, kind: str) -> None:
    if kind == "recording":
        data, offset = _crc_mid_file(valid)
        path = tmp_path / "damaged.shr"
        argv = ["inspect", str(path)]
        expected = f"sensorhub inspect: error: {path}: byte {offset}: "
    else:
        data, line_no, _ = CSV_CASES["invalid UTF-8 deep in the file"]
        path = tmp_path / "bad.csv"
        argv = ["fuse", str(path), str(tmp_path / "q.csv")]
        expected = f"sensorhub fuse: error: {path}, line {line_no}: "
    path.write_bytes(data)
    proc = subprocess.run([sys.executable, "-m", "sensorhub", *argv], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(expected), proc.stderr


# -- a damaged stream inside a valid recording, end to end -------------------------------------------------


def _write_session_recording(path: Path, session: Any, notes: list[Notification]) -> None:
    with RecordingWriter(path, {"drill": session.config.drill, "side": session.config.side, "source": "sim"},
                         background_flush=False, flush_records=4096) as w:
        for seg, s in session.sensors.items():
            w.add_sensor(s.sensor_id, segment=seg, side=session.config.side if seg == "thigh" else None,
                         has_mag=s.has_mag, rate_hz=s.rate_hz)
        for n in notes:
            w.write_notification(n)


def test_recording_of_a_damaged_stream_is_analyzed_and_inspected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Duplicates and corrupted notifications stored in a recording: inspect counts them, analyze keeps every rep."""
    from fault_injection import corrupt, duplicate

    from sensorhub.sim import SimConfig, simulate

    session = simulate(SimConfig(seed=5, reps=6, compensation_reps=(3,)))
    rng = np.random.default_rng(7)
    bad = corrupt(session.notifications, 0.03, rng)
    dup = duplicate(bad.notifications, 0.05, rng)
    path = tmp_path / "damaged_stream.shr"
    _write_session_recording(path, session, dup.notifications)

    assert main(["inspect", "--json", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    # What was stored: a duplicated corrupted notification is one more malformed payload, not a duplicate.
    undecodable: dict[str, int] = {}
    repeated: dict[str, int] = {}
    seen: set[tuple[str, bytes]] = set()
    for n in dup.notifications:
        try:
            decode_packet(n.payload)
        except ProtocolError:
            undecodable[n.sensor_id] = undecodable.get(n.sensor_id, 0) + 1
            continue
        if (n.sensor_id, n.payload) in seen:
            repeated[n.sensor_id] = repeated.get(n.sensor_id, 0) + 1
        seen.add((n.sensor_id, n.payload))
    for entry in report["sensors"]:
        sid = entry["sensor_id"]
        assert entry["malformed"] == undecodable[sid] >= bad.count[sid] > 5
        assert entry["duplicates"] == repeated[sid] > 5
        assert entry["packets_lost"] == len(bad.dropped_seq[sid])  # a rejected packet is a lost one
    assert main(["analyze", str(path), "--out", str(tmp_path / "out"), "--no-report"]) == 0
    reps = json.loads((tmp_path / "out" / "reps.json").read_text())["reps"]
    assert len(reps) == len(session.reps) == 6
    for got, want in zip(reps, session.reps, strict=True):
        assert got["peak_internal_rotation"] == pytest.approx(want.peak_internal_rotation, abs=3.0)
        assert got["peak_external_rotation"] == pytest.approx(want.peak_external_rotation, abs=3.0)


def test_recording_cut_off_mid_session_keeps_what_was_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The hub dies (kill -9, power) in the middle of rep 4: everything written before is analysed."""
    from sensorhub.sim import SimConfig, simulate

    session = simulate(SimConfig(seed=5, reps=6, compensation_reps=(3,)))
    full = tmp_path / "full.shr"
    _write_session_recording(full, session, session.notifications)
    r4 = session.reps[3]
    t_cut = 0.5 * (r4.t_start + r4.t_end)
    raw = full.read_bytes()
    # Cut inside the first NOTIFY record received after t_cut, as a half-written last record.
    off = next(o for o, rec in records(raw) if rec[0] == NOTIFY and struct.unpack_from("<d", rec, 7)[0] > t_cut)
    cut = tmp_path / "cut.shr"
    cut.write_bytes(raw[: off + 11])

    assert main(["inspect", "--json", str(cut)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["truncated"] is True and report["closed"] is False
    assert main(["analyze", str(cut), "--out", str(tmp_path / "out"), "--no-report"]) == 0
    doc = json.loads((tmp_path / "out" / "reps.json").read_text())
    assert len(doc["reps"]) == 3
    for got, want in zip(doc["reps"], session.reps[:3], strict=True):
        assert got["peak_internal_rotation"] == pytest.approx(want.peak_internal_rotation, abs=3.0)
    assert any(r["t_start"] < t_cut for r in doc.get("incomplete", []))
