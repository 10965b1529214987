"""Property-based fuzzing of the file readers: session recordings and IMU CSV files.

For any bytes, :func:`sensorhub.recording.open_recording` either reads the file (every stored time
then finite) or raises a :class:`~sensorhub.errors.RecordingError` naming the file and the byte
offset; :func:`sensorhub.csv_import.read_imu_csv` either returns valid samples (finite, strictly
increasing time) or raises an :class:`~sensorhub.errors.ImportFormatError` naming the file.
Inputs are damaged versions of valid files: byte changes, cuts, records with recomputed CRCs and
hostile payloads (NaN times, odd JSON), CSV text from a CSV-shaped alphabet and invalid UTF-8.
``SENSORHUB_FUZZ_EXAMPLES`` raises the example count (docs/reliability.md).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
from fuzz_support import check_csv_bytes, check_recording_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from sensorhub.notification import Notification
from sensorhub.protocol import encode_packet_raw
from sensorhub.recording import MAGIC, RecordingWriter

EXAMPLES = int(os.environ.get("SENSORHUB_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None)
_TMP = Path(tempfile.mkdtemp(prefix="sensorhub-fuzz-files-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)

# -- recordings --------------------------------------------------------------------------------------


def _record(rtype: int, payload: bytes) -> bytes:
    head = struct.pack("<BI", rtype, len(payload))
    return head + payload + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head)))


def _valid_recording() -> bytes:
    path = _TMP / "valid.shr"
    path.unlink(missing_ok=True)
    with RecordingWriter(path, {"drill": "seated_rotation", "side": "right", "source": "fuzz"},
                         background_flush=False) as w:
        w.add_sensor("P", segment="pelvis", rate_hz=100.0)
        w.add_sensor("T", segment="thigh", side="right", has_mag=True, rate_hz=100.0)
        for k in range(4):
            for i, mag in ((0, False), (1, True)):
                raw = np.full((2, 9 if mag else 6), k, dtype=np.int64)
                payload = encode_packet_raw(seq=k, t_first_us=20_000 * k, rate_code=3, range_code=1, raw=raw)
                w.write_notification(Notification("PT"[i], 0.02 * k + 0.001 * i, payload))
        w.write_mark(0.01, "drill_start", drill="seated_rotation")
        w.write_calibration({"side": "right"})
    return path.read_bytes()


VALID_RECORDING = _valid_recording()


def _split_records(raw: bytes) -> list[bytes]:
    out, off = [], 12
    while off < len(raw):
        (length,) = struct.unpack_from("<I", raw, off + 1)
        out.append(raw[off: off + 9 + length])
        off += 9 + length
    return out


RECORDS = _split_records(VALID_RECORDING)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
KEYS = ["sensor_id", "segment", "side", "has_mag", "rate_hz", "athlete", "drill", "source", "extra",
        "t_host_s", "label", "data", "format_version", "name", "id"]


@st.composite
def hostile_records(draw: st.DrawFn) -> bytes:
    """One record with a valid CRC and a payload chosen to upset the decoders behind the CRC."""
    rtype = draw(st.sampled_from([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x00, 0x07, 0x80, 0xFF]))
    kind = draw(st.sampled_from(["json", "raw_json", "notify", "bytes"]))
    if kind == "json":
        obj = draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5))
        payload = json.dumps(obj).encode()
    elif kind == "raw_json":
        payload = draw(st.sampled_from([b'{"t_host_s": NaN, "label": "x"}', b'{"t_host_s": Infinity, "label": "x"}',
                                        b'{"a": 1e999}', b"[" * 3000, b'"just a string"', b"{}", b'{"\xff": 1}']))
    elif kind == "notify":
        t = draw(st.one_of(st.floats(), st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -1.0])))
        payload = struct.pack("<Hd", draw(st.integers(0, 3)), t) + draw(st.binary(max_size=30))
    else:
        payload = draw(st.binary(max_size=40))
    return _record(rtype, payload)


@st.composite
def damaged_recordings(draw: st.DrawFn) -> bytes:
    records = list(RECORDS)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["insert", "replace", "drop", "move"]))
        i = draw(st.integers(0, len(records)))
        if op == "insert":
            records.insert(i, draw(hostile_records()))
        elif records and op == "replace":
            records[min(i, len(records) - 1)] = draw(hostile_records())
        elif records and op == "drop":
            records.pop(min(i, len(records) - 1))
        elif records:
            records.insert(i, records.pop(draw(st.integers(0, len(records) - 1))))
    header = VALID_RECORDING[:12] if draw(st.integers(0, 9)) else draw(st.sampled_from(
        [MAGIC + struct.pack("<HH", 2, 0), MAGIC + struct.pack("<HH", 1, 9), b"\x89SHR", b""]))
    raw = bytearray(header + b"".join(records))
    for _ in range(draw(st.integers(0, 2))):
        if raw:
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.just(len(raw)), st.integers(0, len(raw))))
    tail = draw(st.sampled_from([b"", b"\x00" * 16]))
    return bytes(raw[:cut]) + tail


@FUZZ
@given(damaged_recordings())
def test_recording_reader_reads_or_names_file_and_offset(data: bytes) -> None:
    check_recording_bytes(data, _TMP / "damaged.shr")


@settings(max_examples=min(EXAMPLES, 100), deadline=None)
@given(st.binary(max_size=200))
def test_recording_reader_on_random_bytes(data: bytes) -> None:
    check_recording_bytes(MAGIC + b"\x01\x00\x00\x00" + data, _TMP / "random.shr")


# -- CSV ---------------------------------------------------------------------------------------------

HEADERS = ["t,ax,ay,az,gx,gy,gz", "t,ax,ay,az,gx,gy,gz,mx,my,mz", "gz,gy,gx,az,ay,ax,t", "t,ax,ay,az,gx,gy",
           "t,ax,ay,az,gx,gy,gz,mx", "t;ax;ay;az;gx;gy;gz", "\ufefft,ax,ay,az,gx,gy,gz"]
FIELD = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e999", "1,5", "0x10", "1_0", "١٢", "--1", ".", "e5", "+.5e-3",
                     "# c", "\"1\"", "1.0.0", "\t2\t"]),
)


@st.composite
def csv_texts(draw: st.DrawFn) -> bytes:
    lines = [draw(st.sampled_from(HEADERS))]
    n_cols = draw(st.sampled_from([7, 10, 6, 8]))
    t = draw(st.floats(-1e3, 1e9, allow_nan=False))
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.integers(0, 9))
        t += draw(st.sampled_from([0.01, 0.01, 0.0, -0.01, 1e-12]))
        if kind < 6:
            fields = [repr(t)] + [repr(x) for x in draw(st.lists(st.floats(-50, 50), min_size=n_cols - 1, max_size=n_cols - 1))]
        elif kind < 8:
            fields = draw(st.lists(FIELD, min_size=n_cols - 1, max_size=n_cols + 1))
        elif kind == 8:
            fields = [draw(st.sampled_from(["", "# comment", "   "]))]
        else:
            fields = [draw(st.text(max_size=20))]
        lines.append(",".join(fields))
    sep = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    data = (sep.join(lines) + draw(st.sampled_from(["", sep]))).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 5)) == 0:  # invalid UTF-8 somewhere
        i = draw(st.integers(0, len(data)))
        data = data[:i] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])) + data[i:]
    return data


@FUZZ
@given(csv_texts())
def test_csv_importer_reads_or_names_file_and_line(data: bytes) -> None:
    check_csv_bytes(data, _TMP / "fuzz.csv")


def test_invalid_utf8_far_into_a_large_file_names_its_line(tmp_path: Path) -> None:
    """Text is decoded in chunks; a bad byte beyond the first chunk must still be an ImportFormatError."""
    rows = ["t,ax,ay,az,gx,gy,gz"] + [f"{i * 0.01:.2f},0,0,9.8,0,0,0" for i in range(5000)]
    data = ("\n".join(rows) + "\n").encode() + b"50.5,0,0,9.8,0,0,\xff\n"
    from sensorhub.csv_import import CsvFormatError, read_imu_csv

    path = tmp_path / "late_binary.csv"
    path.write_bytes(data)
    try:
        read_imu_csv(path)
    except CsvFormatError as exc:
        assert exc.line == 5002
        assert "not UTF-8" in str(exc)
    else:
        raise AssertionError("invalid UTF-8 was accepted")
