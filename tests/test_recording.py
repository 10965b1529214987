"""Tests of the session recording format: round trip, cut-off tails, corruption, crash safety.

The helpers below build records straight from docs/recording-format.md (not from the module's own
encoder), so a drift between the spec and the code fails here.
"""

from __future__ import annotations

import json
import logging
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensorhub.errors import RecordingError
from sensorhub.notification import Notification
from sensorhub.recording import (
    Athlete,
    BadMagicError,
    DuplicateSensorError,
    Mark,
    RecordCrcError,
    RecordingMeta,
    RecordingWriteError,
    RecordingWriter,
    RecordLengthError,
    RecordOrderError,
    RecordPayloadError,
    SensorDescriptor,
    UndeclaredSensorError,
    UnknownRecordTypeError,
    UnsupportedVersionError,
    open_recording,
)

# --- the spec, restated -----------------------------------------------------------------------------

SPEC_MAGIC = bytes([0x89]) + b"SHR\r\n\x1a\n"
T_META, T_SENSOR, T_NOTIFY, T_MARK, T_CALIBRATION, T_END = 1, 2, 3, 4, 5, 6


def spec_record(rtype: int, payload: bytes) -> bytes:
    head = struct.pack("<BI", rtype, len(payload))
    return head + payload + struct.pack("<I", zlib.crc32(head + payload))


def spec_json(rtype: int, obj: object) -> bytes:
    return spec_record(rtype, json.dumps(obj).encode())


def spec_notify(index: int, t: float, data: bytes) -> bytes:
    return spec_record(T_NOTIFY, struct.pack("<Hd", index, t) + data)


def spec_header(major: int = 1, minor: int = 0) -> bytes:
    return SPEC_MAGIC + struct.pack("<HH", major, minor)


def spec_file(*records: bytes, header: bytes | None = None) -> bytes:
    meta = spec_json(T_META, {"format_version": [1, 0], "created": "2026-01-01T00:00:00+00:00", "source": "test"})
    sensor = spec_json(T_SENSOR, {"sensor_id": "P", "segment": "pelvis", "side": None, "has_mag": False, "rate_hz": 100})
    return (header or spec_header()) + meta + sensor + b"".join(records)


@dataclass(frozen=True)
class RecordSpan:
    offset: int
    end: int
    rtype: int


def spec_spans(raw: bytes) -> list[RecordSpan]:
    """Record boundaries of a complete file, parsed per the spec."""
    spans = []
    off = 12
    while off < len(raw):
        rtype, length = struct.unpack_from("<BI", raw, off)
        end = off + 5 + length + 4
        spans.append(RecordSpan(off, end, rtype))
        off = end
    assert off == len(raw)
    return spans


# --- a session written by the writer ----------------------------------------------------------------


@dataclass
class Session:
    path: Path
    notifications: list[Notification]
    marks: list[Mark]
    calibration: dict[str, object]


def write_session(path: Path, n_per_sensor: int = 150, seed: int = 1) -> Session:
    rng = np.random.default_rng(seed)
    notes: list[Notification] = []
    marks: list[Mark] = []
    calibration = {"q_segment_sensor": {"pelvis": [0.5, 0.5, -0.5, 0.5], "thigh": [1.0, 0.0, 0.0, 0.0]}, "heading_deg": 12.25}
    meta = {"athlete": {"id": "ath-7", "name": "Zoë Example"}, "drill": "seated_rotation", "side": "right", "source": "test"}
    with RecordingWriter(path, meta, flush_records=17) as writer:
        assert writer.add_sensor("AA:01", segment="pelvis", has_mag=True, rate_hz=100.0, firmware="1.2.0") == 0
        assert writer.add_sensor(SensorDescriptor("BB:02", "thigh", side="right", has_mag=True, rate_hz=120.0)) == 1
        writer.write_mark(0.0, "calibration_start")
        marks.append(Mark(0.0, "calibration_start"))
        t = 0.0
        for i in range(2 * n_per_sensor):
            sensor = ("AA:01", "BB:02")[i % 2]
            t += float(rng.uniform(0.001, 0.02))
            data = rng.integers(0, 256, size=int(rng.integers(0, 245))).astype(np.uint8).tobytes()
            n = Notification(sensor, t, data)
            writer.write_notification(n)
            notes.append(n)
            if i == 100:
                writer.write_calibration(calibration)
                writer.write_mark(t, "drill_start", drill="seated_rotation")
                marks.append(Mark(t, "drill_start", {"drill": "seated_rotation"}))
            if i == 2 * n_per_sensor - 3:
                writer.write_mark(t, "rep", index=1, peak_deg=31.5)
                marks.append(Mark(t, "rep", {"index": 1, "peak_deg": 31.5}))
            if i == 2 * n_per_sensor - 2:
                writer.write_calibration(calibration | {"heading_deg": -3.0})
    return Session(path, notes, marks, calibration | {"heading_deg": -3.0})


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return write_session(tmp_path_factory.mktemp("rec") / "session.shr")


# --- round trip ---------------------------------------------------------------------------------------


def test_round_trip_is_exact(session: Session) -> None:
    rec = open_recording(session.path)
    assert rec.notifications() == session.notifications  # sensor ids, times (bit-exact floats), payload bytes
    assert list(rec.marks) == session.marks
    assert rec.calibration == session.calibration
    assert len(rec.calibrations) == 2 and rec.calibrations[0]["heading_deg"] == 12.25
    assert rec.meta.athlete == Athlete("ath-7", "Zoë Example")
    assert (rec.meta.drill, rec.meta.side, rec.meta.source) == ("seated_rotation", "right", "test")
    assert rec.meta.created.endswith("+00:00")
    assert rec.format_version == (1, 0)
    assert [(s.sensor_id, s.segment, s.side, s.has_mag, s.rate_hz, s.index) for s in rec.sensors] == [
        ("AA:01", "pelvis", None, True, 100.0, 0),
        ("BB:02", "thigh", "right", True, 120.0, 1),
    ]
    assert rec.sensors[0].firmware == "1.2.0"
    assert not rec.truncated
    assert rec.end is not None and rec.end["status"] == "ok"
    assert rec.end["notifications"] == {"AA:01": 150, "BB:02": 150}
    assert rec.notification_counts == {"AA:01": 150, "BB:02": 150}
    times = [n.t_host_s for n in session.notifications]
    assert rec.duration_s == pytest.approx(max(times) - 0.0)  # first event is the mark at t=0
    assert rec.sensor("thigh").sensor_id == "BB:02"


def test_iter_filters_and_timeline_order(session: Session) -> None:
    rec = open_recording(session.path)
    thigh = list(rec.iter_notifications("BB:02"))
    assert thigh == [n for n in session.notifications if n.sensor_id == "BB:02"]
    timeline = list(rec.iter_records())
    assert [x for x in timeline if isinstance(x, Mark)] == session.marks
    # the drill_start mark sits right after notification 101 (index 100) in file order
    i_mark = next(i for i, x in enumerate(timeline) if isinstance(x, Mark) and x.label == "drill_start")
    assert timeline[i_mark - 1] == session.notifications[100]
    with pytest.raises(RecordingError, match="no sensor 'CC'"):
        rec.iter_notifications("CC")


def test_file_layout_matches_spec(session: Session) -> None:
    raw = session.path.read_bytes()
    assert raw[:8] == SPEC_MAGIC and struct.unpack_from("<HH", raw, 8) == (1, 0)
    spans = spec_spans(raw)
    assert spans[0].rtype == T_META and spans[-1].rtype == T_END
    for span in spans:
        body = raw[span.offset : span.end - 4]
        assert zlib.crc32(body) == struct.unpack_from("<I", raw, span.end - 4)[0]
    notify = [s for s in spans if s.rtype == T_NOTIFY]
    first = session.notifications[0]
    index, t = struct.unpack_from("<Hd", raw, notify[0].offset + 5)
    assert (index, t) == (0, first.t_host_s)
    assert raw[notify[0].offset + 15 : notify[0].end - 4] == first.payload
    # 19 bytes of overhead per notification
    assert notify[0].end - notify[0].offset == 19 + len(first.payload)


# --- cut-off tails ------------------------------------------------------------------------------------


def _expected_prefix(session: Session, spans: list[RecordSpan], cut: int) -> tuple[int, int, bool]:
    """(notifications, marks, END present) among the records that end at or before ``cut``."""
    complete = [s for s in spans if s.end <= cut]
    return (
        sum(s.rtype == T_NOTIFY for s in complete),
        sum(s.rtype == T_MARK for s in complete),
        any(s.rtype == T_END for s in complete),
    )


def test_truncation_at_every_byte_of_the_last_records(session: Session, tmp_path: Path) -> None:
    raw = session.path.read_bytes()
    spans = spec_spans(raw)
    assert [s.rtype for s in spans[-6:]] == [T_NOTIFY, T_MARK, T_NOTIFY, T_CALIBRATION, T_NOTIFY, T_END]
    boundaries = {s.end for s in spans}
    cut_path = tmp_path / "cut.shr"
    for cut in range(spans[-6].offset, len(raw)):
        cut_path.write_bytes(raw[:cut])
        rec = open_recording(cut_path)
        n_notes, n_marks, has_end = _expected_prefix(session, spans, cut)
        assert rec.notifications() == session.notifications[:n_notes], cut
        assert len(rec.marks) == n_marks, cut
        assert (rec.end is not None) == has_end, cut
        assert rec.truncated == (cut not in boundaries), cut
        n_cal = sum(s.rtype == T_CALIBRATION and s.end <= cut for s in spans)
        assert len(rec.calibrations) == n_cal, cut


def test_truncation_at_sampled_offsets_across_the_file(session: Session, tmp_path: Path) -> None:
    raw = session.path.read_bytes()
    spans = spec_spans(raw)
    cut_path = tmp_path / "cut.shr"
    for cut in np.random.default_rng(5).integers(spans[0].end, len(raw), size=150):
        cut_path.write_bytes(raw[:cut])
        rec = open_recording(cut_path)
        n_notes, _, _ = _expected_prefix(session, spans, int(cut))
        assert rec.notifications() == session.notifications[:n_notes]


def test_truncation_logs_a_warning(session: Session, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = session.path.read_bytes()
    cut_path = tmp_path / "cut.shr"
    cut_path.write_bytes(raw[:-3])
    with caplog.at_level(logging.WARNING, logger="sensorhub.recording"):
        rec = open_recording(cut_path)
    assert rec.truncated and rec.end is None
    assert f"cut off at byte {spec_spans(raw)[-1].offset}" in caplog.text and "END record" in caplog.text


def test_zero_filled_tail_after_power_loss_is_a_cut(session: Session, tmp_path: Path) -> None:
    raw = session.path.read_bytes()
    spans = spec_spans(raw)
    path = tmp_path / "zeros.shr"
    path.write_bytes(raw + bytes(4096))
    rec = open_recording(path)
    assert rec.truncated and rec.notifications() == session.notifications and rec.end is not None
    # a last record whose second half became zeros (written, but its block not fully on disk)
    last = spans[-2]
    half = (last.offset + last.end) // 2
    path.write_bytes(raw[:half] + bytes(last.end - half) + bytes(512))
    rec = open_recording(path)
    assert rec.truncated and rec.notifications() == session.notifications[:-1]


def test_crc_failure_of_the_very_last_record_is_a_cut(session: Session, tmp_path: Path) -> None:
    raw = bytearray(session.path.read_bytes())
    raw[-8] ^= 0xFF  # inside the END payload
    path = tmp_path / "lastcrc.shr"
    path.write_bytes(bytes(raw))
    rec = open_recording(path)
    assert rec.truncated and rec.end is None and rec.notifications() == session.notifications


# --- corruption ---------------------------------------------------------------------------------------


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "bad.shr"
    path.write_bytes(data)
    return path


def test_bad_magic_and_short_files(tmp_path: Path) -> None:
    with pytest.raises(BadMagicError, match=r"bad\.shr: byte 0: found b'PK"):
        open_recording(_write(tmp_path, b"PK\x03\x04" + bytes(40)))
    with pytest.raises(BadMagicError, match="empty file"):
        open_recording(_write(tmp_path, b""))
    with pytest.raises(BadMagicError, match="only 5 bytes"):
        open_recording(_write(tmp_path, SPEC_MAGIC[:5]))
    with pytest.raises(RecordingError, match="cannot open"):
        open_recording(tmp_path / "missing.shr")


def test_unsupported_major_version_but_newer_minor_is_read(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedVersionError, match=r"byte 8: format version 2\.0; this reader understands 1\.x"):
        open_recording(_write(tmp_path, spec_file(header=spec_header(2, 0))))
    # a newer minor version may add optional record types (0x80 bit set): they are skipped
    records = (spec_notify(0, 1.0, b"a"), spec_record(0xC1, b"future"), spec_notify(0, 2.0, b"b"))
    rec = open_recording(_write(tmp_path, spec_file(*records, header=spec_header(1, 3))))
    assert rec.format_version == (1, 3)
    assert [n.payload for n in rec.iter_notifications()] == [b"a", b"b"]


def test_crc_mismatch_in_the_middle_names_the_offset(tmp_path: Path) -> None:
    records = [spec_notify(0, i * 0.01, bytes([i]) * 12) for i in range(5)]
    data = bytearray(spec_file(*records))
    bad_offset = len(data) - sum(len(r) for r in records[2:])
    data[bad_offset + 20] ^= 0x01  # a payload byte of the third notification
    with pytest.raises(RecordCrcError, match=rf"bad\.shr: byte {bad_offset}: NOTIFY record of 22 payload bytes fails its CRC-32"):
        open_recording(_write(tmp_path, bytes(data)))


def test_unknown_record_type(tmp_path: Path) -> None:
    good = spec_notify(0, 0.5, b"x")
    data = spec_file(good, spec_record(0x42, b"??"), good)
    offset = len(data) - len(good) - len(spec_record(0x42, b"??"))
    with pytest.raises(UnknownRecordTypeError, match=rf"byte {offset}: unknown record type 0x42; expected one of META=0x01"):
        open_recording(_write(tmp_path, data))


def test_notify_for_undeclared_sensor(tmp_path: Path) -> None:
    data = spec_file(spec_notify(0, 0.1, b"ok"), spec_notify(3, 0.2, b"??"))
    with pytest.raises(UndeclaredSensorError, match="sensor index 3; only 1 sensor"):
        open_recording(_write(tmp_path, data))


def test_absurd_length_is_corruption_not_a_cut(tmp_path: Path) -> None:
    data = spec_file(spec_notify(0, 0.1, b"ok")) + struct.pack("<BI", T_NOTIFY, 0x7FFF_FFFF) + bytes(30)
    with pytest.raises(RecordLengthError, match="announces 2147483647 payload bytes"):
        open_recording(_write(tmp_path, data))


def test_record_order_and_payload_errors(tmp_path: Path) -> None:
    end = spec_json(T_END, {"status": "ok"})
    with pytest.raises(RecordOrderError, match=r"NOTIFY record after END \(byte \d+\); expected end of file"):
        open_recording(_write(tmp_path, spec_file(end, spec_notify(0, 0.1, b""))))
    with pytest.raises(RecordOrderError, match="expected the META record first"):
        open_recording(_write(tmp_path, spec_header() + spec_notify(0, 0.1, b"")))
    dup = spec_json(T_SENSOR, {"sensor_id": "P", "segment": "thigh"})
    with pytest.raises(DuplicateSensorError, match="sensor 'P' declared a second time"):
        open_recording(_write(tmp_path, spec_file(dup)))
    with pytest.raises(RecordPayloadError, match="CALIBRATION payload is not UTF-8 JSON"):
        open_recording(_write(tmp_path, spec_file(spec_record(T_CALIBRATION, b"{not json"))))
    with pytest.raises(RecordPayloadError, match="MARK payload"):
        open_recording(_write(tmp_path, spec_file(spec_json(T_MARK, {"label": "rep"}))))
    with pytest.raises(RecordPayloadError, match="NOTIFY payload of 4 bytes"):
        open_recording(_write(tmp_path, spec_file(spec_record(T_NOTIFY, b"\x00\x00\x00\x00"))))
    with pytest.raises(RecordPayloadError, match="SENSOR: 'side' must be"):
        open_recording(_write(tmp_path, spec_file(spec_json(T_SENSOR, {"sensor_id": "Q", "segment": "thigh", "side": "up"}))))


def test_metadata_appended_later_is_folded(tmp_path: Path) -> None:
    data = spec_file(
        spec_notify(0, 0.1, b"a"),
        spec_json(T_META, {"drill": "standing_rotation", "extra": {"room": "lab 2"}}),
        spec_json(T_META, {"side": "left", "extra": {"note": "retake"}, "future_field": 3}),
        spec_json(T_SENSOR, {"sensor_id": "T", "segment": "thigh", "side": "left"}),
        spec_notify(1, 0.2, b"b"),
    )
    rec = open_recording(_write(tmp_path, data))
    assert (rec.meta.drill, rec.meta.side, rec.meta.source) == ("standing_rotation", "left", "test")
    assert rec.meta.extra == {"room": "lab 2", "note": "retake", "future_field": 3}
    assert [n.sensor_id for n in rec.iter_notifications()] == ["P", "T"]
    assert rec.end is None and not rec.truncated


# --- writer behaviour ---------------------------------------------------------------------------------


def test_writer_rejects_misuse(tmp_path: Path) -> None:
    path = tmp_path / "w.shr"
    with RecordingWriter(path, RecordingMeta(source="test")) as writer:
        writer.add_sensor("P", segment="pelvis")
        with pytest.raises(RecordingWriteError, match="sensor 'X' was not declared"):
            writer.write_notification(Notification("X", 0.0, b""))
        with pytest.raises(RecordingWriteError, match="already declared"):
            writer.add_sensor("P", segment="pelvis")
        with pytest.raises(RecordingWriteError, match="'segment' must be one of"):
            writer.add_sensor("Q", segment="shoulder")
        with pytest.raises(RecordingWriteError, match="t_host_s=nan"):
            writer.write_notification(Notification("P", float("nan"), b""))
        with pytest.raises(RecordingWriteError, match="cannot be stored as JSON"):
            writer.write_calibration({"bad": float("inf")})
    with pytest.raises(RecordingWriteError, match="writer is closed"):
        writer.write_mark(1.0, "rep")
    with pytest.raises(RecordingWriteError, match="file exists"):
        RecordingWriter(path, {})
    with pytest.raises(RecordingWriteError, match="'side' must be"):
        RecordingWriter(tmp_path / "other.shr", {"side": "middle"})
    with pytest.raises(RecordingWriteError, match="cannot be stored as JSON"):
        RecordingWriter(tmp_path / "other.shr", {"extra": {"when": object()}})
    assert not (tmp_path / "other.shr").exists()
    rec = open_recording(path)
    assert rec.end is not None and rec.n_notifications == 0 and [s.sensor_id for s in rec.sensors] == ["P"]


def test_exception_inside_with_block_marks_the_session_aborted(tmp_path: Path) -> None:
    path = tmp_path / "abort.shr"
    with pytest.raises(ZeroDivisionError):
        with RecordingWriter(path, {"source": "test"}) as writer:
            writer.add_sensor("P", segment="pelvis")
            writer.write_notification(Notification("P", 0.25, b"\x01"))
            1 / 0  # noqa: B018
    rec = open_recording(path)
    assert rec.end is not None and rec.end["status"] == "aborted: ZeroDivisionError"
    assert rec.notifications() == [Notification("P", 0.25, b"\x01")]


def test_update_meta_is_folded_by_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "meta.shr"
    with RecordingWriter(path, {"drill": "seated_rotation", "extra": {"room": "lab 2"}, "operator": "kim"}) as writer:
        writer.add_sensor("P", segment="pelvis")
        writer.write_notification(Notification("P", 0.5, b"x"))
        folded = writer.update_meta(athlete=Athlete("ath-9", "Lee"), side="left", extra={"note": "retake"})
        with pytest.raises(RecordingWriteError, match="'side' must be"):
            writer.update_meta(side="both")
    assert folded.extra == {"room": "lab 2", "operator": "kim", "note": "retake"}
    rec = open_recording(path)
    assert rec.meta.athlete == Athlete("ath-9", "Lee")
    assert (rec.meta.drill, rec.meta.side) == ("seated_rotation", "left")
    assert rec.meta.extra == folded.extra
    assert rec.meta.created == folded.created


def test_writer_is_thread_safe(tmp_path: Path) -> None:
    path = tmp_path / "threads.shr"
    per_thread = 2000
    with RecordingWriter(path, {}, flush_records=7) as writer:
        for k in range(4):
            writer.add_sensor(f"S{k}", segment=("pelvis", "thigh")[k % 2])

        def produce(k: int) -> None:
            for i in range(per_thread):
                writer.write_notification(Notification(f"S{k}", i * 0.01, struct.pack("<HI", k, i)))

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    rec = open_recording(path)
    assert rec.notification_counts == {f"S{k}": per_thread for k in range(4)}
    for k in range(4):
        got = [struct.unpack("<HI", n.payload) for n in rec.iter_notifications(f"S{k}")]
        assert got == [(k, i) for i in range(per_thread)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_flush_policy_by_time_and_by_count(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "flush.shr"
    writer = RecordingWriter(path, {}, flush_records=10, flush_interval_s=0.5, background_flush=False, clock=clock)
    writer.add_sensor("P", segment="pelvis")
    size0 = path.stat().st_size
    for i in range(5):
        writer.write_notification(Notification("P", i * 0.01, b"abcd"))
    assert path.stat().st_size == size0  # buffered
    clock.now += 0.49
    writer.write_notification(Notification("P", 0.05, b"abcd"))
    assert path.stat().st_size == size0
    clock.now += 0.02  # oldest buffered record is now 0.51 s old
    writer.write_notification(Notification("P", 0.06, b"abcd"))
    assert path.stat().st_size == size0 + 7 * 23
    for i in range(9):
        writer.write_notification(Notification("P", 0.1 + i * 0.01, b"abcd"))
    assert path.stat().st_size == size0 + 7 * 23
    writer.write_notification(Notification("P", 0.2, b"abcd"))  # tenth buffered record
    assert path.stat().st_size == size0 + 17 * 23
    writer.close()


def test_background_thread_flushes_an_idle_buffer(tmp_path: Path) -> None:
    path = tmp_path / "idle.shr"
    with RecordingWriter(path, {}, flush_interval_s=0.05) as writer:
        writer.add_sensor("P", segment="pelvis")
        size0 = path.stat().st_size
        writer.write_notification(Notification("P", 0.0, b"abcd"))
        deadline = time.monotonic() + 5.0
        while path.stat().st_size == size0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert path.stat().st_size == size0 + 23
        # a reader may open the file while it is being written
        rec = open_recording(path)
        assert rec.end is None and not rec.truncated and rec.n_notifications == 1


KILL_CHILD = textwrap.dedent(
    """
    import sys
    from sensorhub.notification import Notification
    from sensorhub.recording import RecordingWriter
    w = RecordingWriter(sys.argv[1], {"source": "kill-test"}, flush_records=1000, flush_interval_s=10.0)
    w.add_sensor("P", segment="pelvis")
    w.add_sensor("T", segment="thigh", side="left")
    i = 0
    while True:
        w.write_notification(Notification("PT"[i % 2], i * 0.005, i.to_bytes(4, "little") * (1 + i % 7)))
        i += 1
        if i == 3000:
            w.flush()
            print("flushed", i, flush=True)
    """
)


def test_kill_9_while_writing_replays_up_to_the_last_complete_record(tmp_path: Path) -> None:
    path = tmp_path / "killed.shr"
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "flushed 3000", line
        time.sleep(0.05)  # let it write (and flush in 1000-record chunks) a little longer
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    rec = open_recording(path)
    assert rec.end is None
    notes = rec.notifications()
    assert len(notes) >= 3000
    for i, n in enumerate(notes):
        assert n == Notification("PT"[i % 2], i * 0.005, i.to_bytes(4, "little") * (1 + i % 7))
    assert [(s.sensor_id, s.segment, s.side) for s in rec.sensors] == [("P", "pelvis", None), ("T", "thigh", "left")]
    assert rec.meta.source == "kill-test"


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_session(tmp_path_factory.mktemp("small") / "small.shr", n_per_sensor=6).path.read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_files_fail_only_with_recording_errors(small_file: bytes, tmp_path: Path, data: st.DataObject) -> None:
    """Whatever happens to the bytes, the reader either replays or raises a RecordingError, never a crash."""
    raw = bytearray(small_file)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    path = tmp_path / "damaged.shr"
    path.write_bytes(bytes(raw))
    try:
        rec = open_recording(path)
        list(rec.iter_records())
    except RecordingError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_payloads_with_valid_crc_fail_only_with_recording_errors(
    small_file: bytes, tmp_path: Path, data: st.DataObject
) -> None:
    """Payload damage behind a recomputed CRC reaches the JSON and NOTIFY decoders: still no crash."""
    raw = bytearray(small_file)
    span = data.draw(st.sampled_from(spec_spans(small_file)))
    payload = bytearray(raw[span.offset + 5 : span.end - 4])
    for _ in range(data.draw(st.integers(1, 3))):
        if payload:
            payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.sampled_from(b'{}[]":,0a\\\x00\xff'))
    rtype = data.draw(st.sampled_from([span.rtype, span.rtype, T_META, T_SENSOR, T_NOTIFY, T_MARK, T_END]))
    record = spec_record(rtype, bytes(payload))
    path = tmp_path / "damaged.shr"
    path.write_bytes(bytes(raw[: span.offset]) + record + bytes(raw[span.end :]))
    try:
        rec = open_recording(path)
        list(rec.iter_records())
    except RecordingError:
        pass
