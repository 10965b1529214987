"""Tests of the Python wire-protocol codec (sensorhub.protocol) against hand-written bytes,
property-based round trips, every malformation class and the shared golden vectors."""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sensorhub.errors import ProtocolError
from sensorhub.protocol import (
    INFO_LENGTH,
    RANGE_CODES,
    SAMPLE_RATES_HZ,
    Ack,
    ControlErrorCode,
    ControlMessage,
    ErrorReply,
    FieldValueError,
    LengthMismatchError,
    SensorInfo,
    SensorState,
    SeqStatus,
    SequenceUnwrapper,
    SetRanges,
    SetSampleRate,
    StartStreaming,
    StopStreaming,
    TimeSyncReply,
    TimeSyncRequest,
    TruncatedPacketError,
    UnknownCodeError,
    UnsupportedVersionError,
    decode_control,
    decode_info,
    decode_packet,
    encode_control,
    encode_info,
    encode_packet,
    encode_packet_raw,
    max_samples_per_packet,
    range_code_for,
    rate_code_for_hz,
    time_sync_point,
    unwrap_seq,
    unwrap_time_us,
)

G = 9.80665


# --- hand-written bytes -------------------------------------------------------------------------


def test_decode_hand_written_one_sample_packet() -> None:
    # descriptor 0x4008: version 1, 1 sample, 6-axis, no clipping, streaming, 50 Hz, ±2 g/±250 dps
    payload = bytes.fromhex("0840" "3412" "efcdab89" "0040" "0000" "00c0" "0010" "ffff" "0000")
    p = decode_packet(payload)
    assert (p.version, p.seq, p.t_first_us) == (1, 0x1234, 0x89ABCDEF)
    assert (p.n_samples, p.has_mag, p.clipping, p.sensor_state) == (1, False, False, SensorState.STREAMING)
    assert (p.rate_code, p.sample_rate_hz, p.sample_period_us) == (1, 50.0, 20000.0)
    assert (p.range_code, p.acc_range_g, p.gyr_range_dps) == (0, 2.0, 250.0)
    np.testing.assert_allclose(p.acc_m_s2, [[G, 0.0, -G]], rtol=1e-15)
    np.testing.assert_allclose(p.gyr_rad_s, [[math.radians(31.25), math.radians(-250 / 32768), 0.0]], rtol=1e-15)
    assert p.mag_uT is None
    assert p.acc_m_s2.dtype == np.float64 and not p.acc_m_s2.flags.writeable


def test_decode_hand_written_9axis_packet_with_flags() -> None:
    # descriptor: version 1 (0x4000) | 2 samples (1 << 10) | mag (0x200) | clipping (0x100)
    #             | warming up (1 << 6) | 60 Hz (2 << 3) | ±16 g/±2000 dps (3)
    descriptor = 0x4000 | 0x0400 | 0x0200 | 0x0100 | 0x0040 | 0x0010 | 0x0003
    samples = [-32768, 0, 1, 2, 3, 4, 100, -100, 0, 5, 6, 7, 8, 9, 10, 32767, 1, -1]
    payload = struct.pack("<HHI18h", descriptor, 7, 1000, *samples)
    assert len(payload) == 8 + 2 * 18
    p = decode_packet(payload)
    assert (p.n_samples, p.has_mag, p.clipping, p.sensor_state) == (2, True, True, SensorState.WARMING_UP)
    assert p.sample_rate_hz == 60.0
    assert p.sample_period_us == pytest.approx(16666.666666, abs=1e-5)
    np.testing.assert_allclose(p.sample_times_us(), [0.0, 1e6 / 60])
    np.testing.assert_allclose(p.acc_m_s2[0], [-16 * G, 0.0, 16 * G / 32768])
    np.testing.assert_allclose(p.gyr_rad_s[1], np.radians([8, 9, 10]) * 2000 / 32768)
    assert p.mag_uT is not None
    np.testing.assert_allclose(p.mag_uT, [[15.0, -15.0, 0.0], [32767 * 0.15, 0.15, -0.15]])


def test_decode_accepts_bleak_bytearray_and_returns_read_only_arrays() -> None:
    payload = bytearray.fromhex("0840" "3412" "efcdab89" "0040" "0000" "00c0" "0010" "ffff" "0000")
    p = decode_packet(payload)
    payload[8:10] = b"\x00\x00"  # the caller reusing its buffer must not change the decoded packet
    assert p.raw[0, 0] == 16384 and p.acc_m_s2[0, 0] == pytest.approx(G)
    for arr in (p.raw, p.acc_m_s2, p.gyr_rad_s):
        with pytest.raises(ValueError, match="read-only"):
            arr[0, 0] = 0


def test_encode_sets_clipping_when_values_saturate() -> None:
    acc = [[0.0, 0.0, G], [0.0, 0.0, 3 * G]]  # 3 g exceeds ±2 g
    gyr = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    p = decode_packet(encode_packet(seq=1, t_first_us=0, rate_code=3, range_code=0, acc_m_s2=acc, gyr_rad_s=gyr))
    assert p.clipping
    assert p.raw[1, 2] == 32767
    assert p.acc_m_s2[1, 2] == pytest.approx(2 * G * 32767 / 32768)
    q = decode_packet(encode_packet(seq=1, t_first_us=0, rate_code=3, range_code=1, acc_m_s2=acc, gyr_rad_s=gyr))
    assert not q.clipping  # ±4 g holds 3 g


def test_raw_encoder_ors_caller_clipping_with_rails() -> None:
    raw = np.zeros((1, 6), dtype=np.int16)
    assert not decode_packet(encode_packet_raw(seq=0, t_first_us=0, rate_code=0, range_code=0, raw=raw)).clipping
    assert decode_packet(
        encode_packet_raw(seq=0, t_first_us=0, rate_code=0, range_code=0, raw=raw, clipping=True)
    ).clipping
    raw[0, 4] = -32768
    assert decode_packet(encode_packet_raw(seq=0, t_first_us=0, rate_code=0, range_code=0, raw=raw)).clipping


# --- sizes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mtu", "has_mag", "expected"),
    [(23, False, 1), (23, True, 0), (28, True, 0), (29, True, 1), (35, False, 2), (247, False, 16), (247, True, 13),
     (185, False, 14), (185, True, 9), (517, True, 16)],
)
def test_max_samples_per_packet(mtu: int, has_mag: bool, expected: int) -> None:
    assert max_samples_per_packet(mtu, has_mag) == expected
    n = expected
    if n:
        raw = np.zeros((n, 9 if has_mag else 6), dtype=np.int16)
        assert len(encode_packet_raw(seq=0, t_first_us=0, rate_code=0, range_code=0, raw=raw)) <= mtu - 3


@pytest.mark.parametrize("mtu", [0, 22, 518])
def test_max_samples_per_packet_rejects_impossible_mtu(mtu: int) -> None:
    with pytest.raises(FieldValueError, match=f"MTU {mtu}"):
        max_samples_per_packet(mtu, False)


def test_code_lookups() -> None:
    assert rate_code_for_hz(60) == 2 and SAMPLE_RATES_HZ[rate_code_for_hz(400)] == 400
    assert range_code_for(8, 2000) == 5 and RANGE_CODES[5].gyr_dps == 2000
    with pytest.raises(UnknownCodeError, match="59"):
        rate_code_for_hz(59)
    with pytest.raises(UnknownCodeError, match="±2 g/±2000 dps"):
        range_code_for(2, 2000)


# --- round trips --------------------------------------------------------------------------------

raw_samples = st.integers(1, 16).flatmap(
    lambda n: st.sampled_from([6, 9]).flatmap(
        lambda axes: hnp.arrays(np.int16, (n, axes), elements=st.integers(-32768, 32767))
    )
)


@settings(max_examples=150, deadline=None)
@given(
    raw=raw_samples,
    seq=st.integers(0, 0xFFFF),
    t_first_us=st.integers(0, 0xFFFFFFFF),
    rate_code=st.sampled_from(sorted(SAMPLE_RATES_HZ)),
    range_code=st.sampled_from(sorted(RANGE_CODES)),
    state=st.sampled_from(list(SensorState)),
    clipping=st.booleans(),
)
def test_raw_round_trip(
    raw: np.ndarray, seq: int, t_first_us: int, rate_code: int, range_code: int, state: SensorState, clipping: bool
) -> None:
    payload = encode_packet_raw(
        seq=seq, t_first_us=t_first_us, rate_code=rate_code, range_code=range_code, raw=raw,
        sensor_state=state, clipping=clipping,
    )
    assert len(payload) == 8 + raw.size * 2
    p = decode_packet(payload)
    np.testing.assert_array_equal(p.raw, raw)
    assert (p.seq, p.t_first_us, p.rate_code, p.range_code, p.sensor_state) == (seq, t_first_us, rate_code, range_code, state)
    assert p.clipping == (clipping or bool(np.any((raw == 32767) | (raw == -32768))))
    assert p.has_mag == (raw.shape[1] == 9)
    rng = RANGE_CODES[range_code]
    np.testing.assert_allclose(p.acc_m_s2, raw[:, :3] / 32768 * rng.acc_g * G, rtol=1e-14)
    np.testing.assert_allclose(p.gyr_rad_s, np.radians(raw[:, 3:6] / 32768 * rng.gyr_dps), rtol=1e-14)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 16),
    range_code=st.sampled_from(sorted(RANGE_CODES)),
    with_mag=st.booleans(),
    data=st.data(),
)
def test_si_round_trip_within_half_a_count(n: int, range_code: int, with_mag: bool, data: st.DataObject) -> None:
    rng = RANGE_CODES[range_code]
    acc_fs = rng.acc_g * G
    gyr_fs = math.radians(rng.gyr_dps)
    # stay strictly inside full scale so nothing saturates
    acc = data.draw(hnp.arrays(np.float64, (n, 3), elements=st.floats(-0.999 * acc_fs, 0.999 * acc_fs)))
    gyr = data.draw(hnp.arrays(np.float64, (n, 3), elements=st.floats(-0.999 * gyr_fs, 0.999 * gyr_fs)))
    mag = data.draw(hnp.arrays(np.float64, (n, 3), elements=st.floats(-4900.0, 4900.0))) if with_mag else None
    p = decode_packet(
        encode_packet(seq=3, t_first_us=5, rate_code=4, range_code=range_code, acc_m_s2=acc, gyr_rad_s=gyr, mag_uT=mag)
    )
    assert not p.clipping
    assert np.max(np.abs(p.acc_m_s2 - acc)) <= 0.5 * acc_fs / 32768 * (1 + 1e-9)
    assert np.max(np.abs(p.gyr_rad_s - gyr)) <= 0.5 * gyr_fs / 32768 * (1 + 1e-9)
    if with_mag:
        assert p.mag_uT is not None and mag is not None
        assert np.max(np.abs(p.mag_uT - mag)) <= 0.075 * (1 + 1e-9)


def test_round_trip_over_sequence_and_timestamp_wrap() -> None:
    """A stream of 1-sample packets at 400 Hz crossing both wraps unwraps to a straight line."""
    rate_hz = 400.0
    start_seq, start_us = 65530, 2**32 - 20_000
    prev_seq: int | None = None
    prev_t: int | None = None
    seqs, times = [], []
    for k in range(20):
        t_true = start_us + round(k * 1e6 / rate_hz)
        payload = encode_packet_raw(
            seq=(start_seq + k) & 0xFFFF, t_first_us=t_true & 0xFFFFFFFF, rate_code=6, range_code=3,
            raw=np.full((1, 6), k, dtype=np.int16),
        )
        p = decode_packet(payload)
        prev_seq = unwrap_seq(prev_seq, p.seq)
        prev_t = unwrap_time_us(prev_t, p.t_first_us)
        seqs.append(prev_seq)
        times.append(prev_t)
    assert seqs == list(range(start_seq, start_seq + 20))
    assert times == [start_us + round(k * 2500.0) for k in range(20)]
    assert times[-1] > 2**32  # the wrap really happened


# --- unwrapping ---------------------------------------------------------------------------------


def test_unwrap_functions() -> None:
    assert unwrap_seq(None, 65535) == 65535
    assert unwrap_seq(65535, 0) == 65536
    assert unwrap_seq(65536, 65535) == 65535  # late packet: behind, not a wrap forward
    assert unwrap_seq(10, 10) == 10
    assert unwrap_seq(0, 32768) == 32768  # exact half range counts as forward
    assert unwrap_seq(0, 32769) == -32767
    assert unwrap_time_us(2**32 - 1, 0) == 2**32
    assert unwrap_time_us(3 * 2**32 + 5, 1) == 3 * 2**32 + 1
    # after an outage longer than half the range, a host-time reference resolves the ambiguity
    last = 1_000
    elapsed_host_us = 3_000_000_000  # 50 min
    t32 = (last + elapsed_host_us + 1234) % 2**32
    assert unwrap_time_us(last, t32) != last + elapsed_host_us + 1234
    assert unwrap_time_us(last + elapsed_host_us, t32) == last + elapsed_host_us + 1234


@settings(max_examples=150, deadline=None)
@given(bits=st.sampled_from([16, 32]), start=st.integers(0, 2**40), data=st.data())
def test_unwrap_recovers_any_counter_with_steps_up_to_half_range(bits: int, start: int, data: st.DataObject) -> None:
    steps = data.draw(st.lists(st.integers(0, 2 ** (bits - 1)), min_size=1, max_size=50))
    unwrap = unwrap_seq if bits == 16 else unwrap_time_us
    true_values = [start]
    for step in steps:
        true_values.append(true_values[-1] + step)
    unwrapped: list[int] = []
    prev: int | None = None
    for value in true_values:
        prev = unwrap(prev, value % 2**bits)
        unwrapped.append(prev)
    assert [u - unwrapped[0] for u in unwrapped] == [t - start for t in true_values]


def test_sequence_unwrapper_classifies_arrivals() -> None:
    u = SequenceUnwrapper(window=8)
    arrivals = [65534, 65535, 2, 0, 0, 3, 1, 65535]
    got = [u.update(s) for s in arrivals]
    assert [g.unwrapped for g in got] == [65534, 65535, 65538, 65536, 65536, 65539, 65537, 65535]
    assert [g.status for g in got] == [
        SeqStatus.FIRST, SeqStatus.IN_ORDER, SeqStatus.GAP, SeqStatus.LATE,
        SeqStatus.DUPLICATE, SeqStatus.IN_ORDER, SeqStatus.LATE, SeqStatus.DUPLICATE,
    ]
    assert got[2].lost == 2
    for s in range(4, 40):
        u.update(s)
    assert u.update(5).status is SeqStatus.STALE  # 65541 is more than 8 behind 65575


# --- malformed input ----------------------------------------------------------------------------


def _packet(descriptor: int, n_values: int) -> bytes:
    return struct.pack("<HHI", descriptor, 0, 0) + bytes(2 * n_values)


V1 = 0x4000


@pytest.mark.parametrize(
    ("payload", "error", "message"),
    [
        (b"", TruncatedPacketError, "0 bytes, expected at least the 2-byte descriptor"),
        (b"\x00\x40\x00", TruncatedPacketError, "3 bytes, expected at least the 8-byte header"),
        (_packet(0x0000, 6), UnsupportedVersionError, "protocol version 0 .* expected 1"),
        (_packet(0x8000, 6), UnsupportedVersionError, "protocol version 2"),
        (_packet(0xC000, 6)[:4], UnsupportedVersionError, "protocol version 3"),
        (_packet(V1 | (3 << 10), 21), TruncatedPacketError, "sample count 4 with 6-axis samples needs 56 bytes, got 50"),
        (_packet(V1, 7), LengthMismatchError, "sample count 1 with 6-axis samples needs 20 bytes, got 22"),
        (_packet(V1 | 0x200, 6), TruncatedPacketError, "sample count 1 with 9-axis samples needs 26 bytes, got 20"),
        (_packet(V1 | (7 << 3), 6), UnknownCodeError, "sample-rate code 7 is reserved"),
        (_packet(V1 | 6, 6), UnknownCodeError, "range code 6 is reserved"),
        (_packet(V1 | 7, 6), UnknownCodeError, "range code 7 is reserved"),
        (_packet(V1 | (3 << 6), 6), UnknownCodeError, "sensor state 3 is reserved"),
    ],
)
def test_malformed_data_packets(payload: bytes, error: type[ProtocolError], message: str) -> None:
    with pytest.raises(error, match=message) as info:
        decode_packet(payload)
    assert isinstance(info.value, ProtocolError) and isinstance(info.value, ValueError)
    assert str(info.value).startswith("data packet: ")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seq": 65536}, "seq 65536"),
        ({"seq": -1}, "seq -1"),
        ({"t_first_us": 2**32}, "t_first_us 4294967296"),
        ({"raw": np.zeros((17, 6), dtype=np.int16)}, "sample count 17"),
        ({"raw": np.zeros((0, 6), dtype=np.int16)}, "sample count 0"),
        ({"raw": np.zeros((2, 7), dtype=np.int16)}, r"shape \(2, 7\)"),
        ({"raw": np.full((1, 6), 40000)}, "-32768..32767"),
    ],
)
def test_raw_encoder_rejects_bad_fields(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"seq": 0, "t_first_us": 0, "rate_code": 0, "range_code": 0,
                               "raw": np.zeros((1, 6), dtype=np.int16)}
    args.update(kwargs)
    with pytest.raises(FieldValueError, match=message):
        encode_packet_raw(**args)  # type: ignore[arg-type]


def test_encoders_reject_reserved_codes_and_nan() -> None:
    raw = np.zeros((1, 6), dtype=np.int16)
    with pytest.raises(UnknownCodeError, match="sample-rate code 7"):
        encode_packet_raw(seq=0, t_first_us=0, rate_code=7, range_code=0, raw=raw)
    with pytest.raises(UnknownCodeError, match="sensor state 3"):
        encode_packet_raw(seq=0, t_first_us=0, rate_code=0, range_code=0, raw=raw, sensor_state=3)
    with pytest.raises(FieldValueError, match="acc_m_s2 contains NaN"):
        encode_packet(seq=0, t_first_us=0, rate_code=0, range_code=0, acc_m_s2=[[np.nan, 0, 0]], gyr_rad_s=[[0, 0, 0]])
    with pytest.raises(FieldValueError, match=r"gyr_rad_s has shape \(2, 3\), expected \(1, 3\)"):
        encode_packet(seq=0, t_first_us=0, rate_code=0, range_code=0, acc_m_s2=[[0, 0, 0]], gyr_rad_s=np.zeros((2, 3)))


# --- control ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_bytes", "message"),
    [
        ("01", StartStreaming()),
        ("02", StopStreaming()),
        ("0302", SetSampleRate(rate_code=2)),
        ("0405", SetRanges(range_code=5)),
        (("05" "2a" "0807060504030201"), TimeSyncRequest(token=42, host_time_us=0x0102030405060708)),
        ("8004", Ack(opcode=4)),
        (("85" "2a" "0807060504030201" "78563412"), TimeSyncReply(42, 0x0102030405060708, 0x12345678)),
        (("ff" "03" "03"), ErrorReply(opcode=3, error=ControlErrorCode.UNKNOWN_RATE_CODE)),
    ],
)
def test_control_messages_hand_written(hex_bytes: str, message: ControlMessage) -> None:
    payload = bytes.fromhex(hex_bytes)
    assert decode_control(payload) == message
    assert encode_control(message) == payload


@pytest.mark.parametrize(
    ("hex_bytes", "error", "match"),
    [
        ("", TruncatedPacketError, "empty payload"),
        ("06", UnknownCodeError, "unknown opcode 0x06"),
        ("00", UnknownCodeError, "unknown opcode 0x00"),
        ("0100", LengthMismatchError, r"start streaming \(opcode 0x01\) needs 1 bytes, got 2"),
        ("03", TruncatedPacketError, "set sample rate .* needs 2 bytes, got 1"),
        ("052a0807060504", TruncatedPacketError, "time-sync request .* needs 10 bytes, got 7"),
        ("8501", TruncatedPacketError, "time-sync reply .* needs 14 bytes, got 2"),
        ("0307", UnknownCodeError, "set sample rate: sample-rate code 7 is reserved"),
        ("0406", UnknownCodeError, "set ranges: full-scale range code 6 is reserved"),
        ("8085", UnknownCodeError, "acked opcode 0x85 is not a command"),
        ("ff0300", UnknownCodeError, "error code 0 is reserved"),
        ("ff0307", UnknownCodeError, "error code 7 is reserved"),
    ],
)
def test_malformed_control(hex_bytes: str, error: type[ProtocolError], match: str) -> None:
    with pytest.raises(error, match=match) as info:
        decode_control(bytes.fromhex(hex_bytes))
    assert str(info.value).startswith("control")


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (TimeSyncRequest(token=256, host_time_us=0), FieldValueError),
        (TimeSyncRequest(token=0, host_time_us=-1), FieldValueError),
        (TimeSyncReply(token=0, host_time_us=0, sensor_time_us=2**32), FieldValueError),
        (SetSampleRate(rate_code=7), UnknownCodeError),
        (Ack(opcode=0x80), UnknownCodeError),
    ],
)
def test_control_encoder_rejects_bad_fields(message: ControlMessage, error: type[ProtocolError]) -> None:
    with pytest.raises(error):
        encode_control(message)


def test_time_sync_point_is_round_trip_midpoint() -> None:
    reply = TimeSyncReply(token=1, host_time_us=1_000_000, sensor_time_us=55_000)
    point = time_sync_point(reply, host_receive_time_us=1_030_001)
    assert (point.host_time_us, point.sensor_time_us, point.round_trip_us) == (1_015_000.5, 55_000, 30_001)
    with pytest.raises(FieldValueError, match="before its request"):
        time_sync_point(reply, host_receive_time_us=999_999)


# --- info ---------------------------------------------------------------------------------------

INFO_HEX = "01" "020a03" "c0ffee012345" "57" "01" "03" "05"


def test_info_hand_written() -> None:
    info = decode_info(bytes.fromhex(INFO_HEX))
    assert info == SensorInfo(
        protocol_version=1, firmware_version=(2, 10, 3), sensor_id="c0ffee012345", battery_percent=87,
        has_mag=True, rate_code=3, range_code=5,
    )
    assert info.sample_rate_hz == 100.0 and info.firmware_version_str == "2.10.3"
    assert encode_info(info).hex() == INFO_HEX
    unknown_battery = decode_info(bytes.fromhex(INFO_HEX[:20] + "ff" + INFO_HEX[22:]))
    assert unknown_battery.battery_percent is None
    assert encode_info(unknown_battery)[10] == 0xFF


@pytest.mark.parametrize(
    ("hex_bytes", "error", "match"),
    [
        ("", TruncatedPacketError, f"needs {INFO_LENGTH} bytes, got 0"),
        (INFO_HEX[:-2], TruncatedPacketError, "needs 14 bytes, got 13"),
        (INFO_HEX + "00", LengthMismatchError, "needs 14 bytes, got 15"),
        ("02" + INFO_HEX[2:], UnsupportedVersionError, "protocol version 2, expected 1"),
        (INFO_HEX[:20] + "65" + INFO_HEX[22:], FieldValueError, "battery percent 101"),
        (INFO_HEX[:22] + "03" + INFO_HEX[24:], UnknownCodeError, "capabilities 0x03"),
        (INFO_HEX[:24] + "07" + INFO_HEX[26:], UnknownCodeError, "sample-rate code 7"),
        (INFO_HEX[:26] + "06", UnknownCodeError, "range code 6"),
    ],
)
def test_malformed_info(hex_bytes: str, error: type[ProtocolError], match: str) -> None:
    with pytest.raises(error, match=match) as info:
        decode_info(bytes.fromhex(hex_bytes))
    assert str(info.value).startswith("info: ")


# --- golden vectors (shared with the C encoder, tests/test_protocol_c.py) -----------------------

VECTORS_PATH = Path(__file__).resolve().parent.parent / "firmware_protocol" / "vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text())
ERRORS: dict[str, type[ProtocolError]] = {
    cls.__name__: cls
    for cls in (TruncatedPacketError, LengthMismatchError, UnsupportedVersionError, UnknownCodeError, FieldValueError)
}


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


def test_vectors_cover_the_required_edge_cases() -> None:
    valid = {v["name"]: v for v in VECTORS["data"]["valid"]}
    assert valid["one_sample_6axis_mtu23"]["length"] == 20
    assert max(v["length"] for v in valid.values()) <= 244
    assert any(v["decoded"]["has_mag"] for v in valid.values())
    assert any(v["inputs"]["seq"] == 65535 for v in valid.values())
    assert any(v["inputs"]["t_first_us"] > 2**32 - 1000 for v in valid.values())
    assert any(-32768 in np.asarray(v["inputs"]["raw"]) for v in valid.values())
    assert {v["inputs"]["rate_code"] for v in valid.values()} == set(SAMPLE_RATES_HZ)
    assert {v["inputs"]["range_code"] for v in valid.values()} == set(RANGE_CODES)
    assert {v["error"] for v in VECTORS["data"]["malformed"]} == {
        "TruncatedPacketError", "UnsupportedVersionError", "LengthMismatchError", "UnknownCodeError"}


@pytest.mark.parametrize("vector", VECTORS["data"]["valid"], ids=_ids(VECTORS["data"]["valid"]))
def test_golden_data_vectors(vector: dict[str, Any]) -> None:
    inputs = vector["inputs"]
    payload = encode_packet_raw(
        seq=inputs["seq"], t_first_us=inputs["t_first_us"], rate_code=inputs["rate_code"],
        range_code=inputs["range_code"], raw=np.array(inputs["raw"], dtype=np.int16),
        sensor_state=inputs["sensor_state"], clipping=inputs["clipping"],
    )
    assert payload.hex() == vector["hex"]
    p = decode_packet(bytes.fromhex(vector["hex"]))
    want = vector["decoded"]
    for field in ("version", "seq", "t_first_us", "n_samples", "has_mag", "clipping", "rate_code",
                  "sample_rate_hz", "range_code", "acc_range_g", "gyr_range_dps"):
        assert getattr(p, field) == want[field], field
    assert p.sensor_state is SensorState[want["sensor_state"]]
    assert p.sample_period_us == pytest.approx(want["sample_period_us"], rel=1e-15)
    np.testing.assert_allclose(p.sample_times_us(), want["sample_times_us"], rtol=1e-15)
    np.testing.assert_allclose(p.acc_m_s2, want["acc_m_s2"], rtol=1e-13, atol=0)
    np.testing.assert_allclose(p.gyr_rad_s, want["gyr_rad_s"], rtol=1e-13, atol=0)
    if want["mag_uT"] is None:
        assert p.mag_uT is None
    else:
        assert p.mag_uT is not None
        np.testing.assert_allclose(p.mag_uT, want["mag_uT"], rtol=1e-13, atol=0)
    # The SI encoder must land on the same counts when fed the decoded values.
    again = encode_packet(
        seq=p.seq, t_first_us=p.t_first_us, rate_code=p.rate_code, range_code=p.range_code,
        acc_m_s2=p.acc_m_s2, gyr_rad_s=p.gyr_rad_s, mag_uT=p.mag_uT, sensor_state=p.sensor_state,
        clipping=inputs["clipping"],
    )
    assert again.hex() == vector["hex"]


@pytest.mark.parametrize("vector", VECTORS["data"]["malformed"], ids=_ids(VECTORS["data"]["malformed"]))
def test_golden_malformed_data_vectors(vector: dict[str, Any]) -> None:
    with pytest.raises(ERRORS[vector["error"]]) as info:
        decode_packet(bytes.fromhex(vector["hex"]))
    assert type(info.value) is ERRORS[vector["error"]]
    assert vector["message_contains"] in str(info.value)


_CONTROL_TYPES: dict[str, Any] = {
    cls.__name__: cls
    for cls in (StartStreaming, StopStreaming, SetSampleRate, SetRanges, TimeSyncRequest, Ack, TimeSyncReply, ErrorReply)
}


@pytest.mark.parametrize("vector", VECTORS["control"]["valid"], ids=_ids(VECTORS["control"]["valid"]))
def test_golden_control_vectors(vector: dict[str, Any]) -> None:
    fields = dict(vector["message"])
    cls = _CONTROL_TYPES[fields.pop("type")]
    if "error" in fields:
        fields["error"] = ControlErrorCode[fields["error"]]
    message = cls(**fields)
    assert encode_control(message).hex() == vector["hex"]
    assert decode_control(bytes.fromhex(vector["hex"])) == message


@pytest.mark.parametrize("vector", VECTORS["control"]["malformed"], ids=_ids(VECTORS["control"]["malformed"]))
def test_golden_malformed_control_vectors(vector: dict[str, Any]) -> None:
    with pytest.raises(ERRORS[vector["error"]], match=re.escape(vector["message_contains"])):
        decode_control(bytes.fromhex(vector["hex"]))


@pytest.mark.parametrize("vector", VECTORS["info"]["valid"], ids=_ids(VECTORS["info"]["valid"]))
def test_golden_info_vectors(vector: dict[str, Any]) -> None:
    f = vector["fields"]
    info = SensorInfo(
        protocol_version=f["protocol_version"], firmware_version=tuple(f["firmware_version"]),
        sensor_id=f["sensor_id"], battery_percent=f["battery_percent"], has_mag=f["has_mag"],
        rate_code=f["rate_code"], range_code=f["range_code"],
    )
    assert encode_info(info).hex() == vector["hex"]
    assert decode_info(bytes.fromhex(vector["hex"])) == info


@pytest.mark.parametrize("vector", VECTORS["info"]["malformed"], ids=_ids(VECTORS["info"]["malformed"]))
def test_golden_malformed_info_vectors(vector: dict[str, Any]) -> None:
    with pytest.raises(ERRORS[vector["error"]], match=re.escape(vector["message_contains"])):
        decode_info(bytes.fromhex(vector["hex"]))
