"""Codec for the control characteristic: commands the hub writes and replies the sensor notifies.

Every control payload starts with an opcode byte; its length is fixed per opcode. Commands have
bit 7 clear, replies bit 7 set (firmware_protocol/PROTOCOL.md, "Control")::

    0x01 START_STREAMING    [op]                                     1 byte
    0x02 STOP_STREAMING     [op]                                     1 byte
    0x03 SET_SAMPLE_RATE    [op, rate_code]                          2 bytes
    0x04 SET_RANGES         [op, range_code]                         2 bytes
    0x05 TIME_SYNC_REQUEST  [op, token, host_time_us u64]            10 bytes
    0x80 ACK                [op, acked_opcode]                       2 bytes
    0x85 TIME_SYNC_REPLY    [op, token, host_time_us u64,
                             sensor_time_us u32]                     14 bytes
    0xFF ERROR              [op, failed_opcode, error_code]          3 bytes

Pure functions and frozen dataclasses; no I/O and no logging.
"""

from __future__ import annotations

import struct
from dataclasses import astuple, dataclass
from enum import IntEnum
from typing import Final

from sensorhub.protocol.errors import (
    FieldValueError,
    LengthMismatchError,
    TruncatedPacketError,
    UnknownCodeError,
)
from sensorhub.protocol.spec import full_scale_range, sample_rate_hz

_WHERE: Final = "control"


class Opcode(IntEnum):
    START_STREAMING = 0x01
    STOP_STREAMING = 0x02
    SET_SAMPLE_RATE = 0x03
    SET_RANGES = 0x04
    TIME_SYNC_REQUEST = 0x05
    ACK = 0x80
    TIME_SYNC_REPLY = 0x85
    ERROR = 0xFF


COMMAND_OPCODES: Final = frozenset(op for op in Opcode if op < 0x80)


class ControlErrorCode(IntEnum):
    """Why the sensor refused a command (byte 2 of an ERROR reply). 0 and 7..255 are reserved."""

    UNKNOWN_OPCODE = 1
    BAD_LENGTH = 2
    UNKNOWN_RATE_CODE = 3
    UNKNOWN_RANGE_CODE = 4
    BUSY = 5
    """Valid command that cannot be carried out in the current state (e.g. IMU still booting)."""
    HARDWARE_FAULT = 6


@dataclass(frozen=True, slots=True)
class StartStreaming:
    """Begin notifying data packets. The sequence number continues; it is not reset."""


@dataclass(frozen=True, slots=True)
class StopStreaming:
    """Stop notifying data packets."""


@dataclass(frozen=True, slots=True)
class SetSampleRate:
    rate_code: int
    """Key of :data:`SAMPLE_RATES_HZ`."""


@dataclass(frozen=True, slots=True)
class SetRanges:
    range_code: int
    """Key of :data:`RANGE_CODES`."""


@dataclass(frozen=True, slots=True)
class TimeSyncRequest:
    token: int
    """0..255, chosen by the hub to match the reply to its request."""
    host_time_us: int
    """Hub clock at sending, µs, unsigned 64-bit."""


@dataclass(frozen=True, slots=True)
class Ack:
    opcode: int
    """The command opcode that was carried out."""


@dataclass(frozen=True, slots=True)
class TimeSyncReply:
    token: int
    host_time_us: int
    """Echo of the request's host time."""
    sensor_time_us: int
    """Sensor clock (the one of ``t_first_us``, u32, wraps) when the request was received."""


@dataclass(frozen=True, slots=True)
class ErrorReply:
    opcode: int
    """Opcode byte of the refused write (0 for an empty write)."""
    error: ControlErrorCode


ControlMessage = (
    StartStreaming | StopStreaming | SetSampleRate | SetRanges | TimeSyncRequest | Ack | TimeSyncReply | ErrorReply
)

# opcode -> (message class, layout after the opcode byte, human name). One table drives both directions.
_TABLE: Final[dict[Opcode, tuple[type, struct.Struct, str]]] = {
    Opcode.START_STREAMING: (StartStreaming, struct.Struct("<"), "start streaming"),
    Opcode.STOP_STREAMING: (StopStreaming, struct.Struct("<"), "stop streaming"),
    Opcode.SET_SAMPLE_RATE: (SetSampleRate, struct.Struct("<B"), "set sample rate"),
    Opcode.SET_RANGES: (SetRanges, struct.Struct("<B"), "set ranges"),
    Opcode.TIME_SYNC_REQUEST: (TimeSyncRequest, struct.Struct("<BQ"), "time-sync request"),
    Opcode.ACK: (Ack, struct.Struct("<B"), "ack"),
    Opcode.TIME_SYNC_REPLY: (TimeSyncReply, struct.Struct("<BQI"), "time-sync reply"),
    Opcode.ERROR: (ErrorReply, struct.Struct("<BB"), "error reply"),
}
_OPCODE_OF: Final = {cls: op for op, (cls, _, _) in _TABLE.items()}


def control_length(opcode: int) -> int:
    """Total byte length of the control payload with ``opcode``."""
    return 1 + _TABLE[Opcode(opcode)][1].size


def _validate(msg: ControlMessage, where: str) -> None:
    """Range checks shared by encoder and decoder (codes -> UnknownCodeError, numbers -> FieldValueError)."""
    if isinstance(msg, SetSampleRate):
        sample_rate_hz(msg.rate_code, where)
    elif isinstance(msg, SetRanges):
        full_scale_range(msg.range_code, where)
    elif isinstance(msg, Ack) and msg.opcode not in COMMAND_OPCODES:
        raise UnknownCodeError(
            f"{where}: acked opcode 0x{msg.opcode:02x} is not a command, expected one of "
            + ", ".join(f"0x{op:02x}" for op in sorted(COMMAND_OPCODES))
        )
    elif isinstance(msg, ErrorReply) and msg.error not in set(ControlErrorCode):
        raise UnknownCodeError(f"{where}: error code {int(msg.error)} is reserved, expected 1..{max(ControlErrorCode)}")


def encode_control(msg: ControlMessage) -> bytes:
    """Bytes of a control command or reply; raises for out-of-range fields or reserved codes."""
    try:
        opcode = _OPCODE_OF[type(msg)]
    except KeyError:
        raise FieldValueError(f"{_WHERE}: {type(msg).__name__} is not a control message") from None
    _cls, layout, name = _TABLE[opcode]
    where = f"{_WHERE} {name}"
    _validate(msg, where)
    fields = tuple(int(v) for v in astuple(msg))
    try:
        return bytes([opcode]) + layout.pack(*fields)
    except struct.error:
        raise FieldValueError(f"{where}: field out of range in {msg!r}") from None


def decode_control(payload: bytes | bytearray | memoryview) -> ControlMessage:
    """Decode a control payload (a command the hub wrote or a reply the sensor notified).

    Raises :class:`TruncatedPacketError` (empty or shorter than the opcode's layout),
    :class:`LengthMismatchError` (longer), :class:`UnknownCodeError` (unknown opcode, reserved
    rate/range/error code, ack of a non-command).
    """
    if not payload:
        raise TruncatedPacketError(f"{_WHERE}: empty payload, expected at least the opcode byte")
    try:
        opcode = Opcode(payload[0])
    except ValueError:
        raise UnknownCodeError(
            f"{_WHERE}: unknown opcode 0x{payload[0]:02x}, expected one of "
            + ", ".join(f"0x{op:02x}" for op in Opcode)
        ) from None
    cls, layout, name = _TABLE[opcode]
    expected = 1 + layout.size
    if len(payload) != expected:
        error = TruncatedPacketError if len(payload) < expected else LengthMismatchError
        raise error(f"{_WHERE}: {name} (opcode 0x{opcode:02x}) needs {expected} bytes, got {len(payload)}")
    fields = layout.unpack_from(payload, 1)
    if cls is ErrorReply:
        try:
            fields = (fields[0], ControlErrorCode(fields[1]))
        except ValueError:
            raise UnknownCodeError(
                f"{_WHERE}: {name}: error code {fields[1]} is reserved, expected 1..{max(ControlErrorCode)}"
            ) from None
    msg: ControlMessage = cls(*fields)
    _validate(msg, f"{_WHERE} {name}")
    return msg


@dataclass(frozen=True, slots=True)
class TimeSyncPoint:
    """One sensor-clock/host-clock correspondence from a time-sync round trip (NTP-style)."""

    host_time_us: float
    """Midpoint of the round trip on the host clock: the best estimate of when the sensor read its clock."""
    sensor_time_us: int
    """Sensor clock at that moment (u32, wraps)."""
    round_trip_us: int
    """Host receive minus host send; the offset estimate is uncertain by at most half of it."""


def time_sync_point(reply: TimeSyncReply, host_receive_time_us: int) -> TimeSyncPoint:
    """Pair the sensor's clock with the host clock from a reply and the time the host received it.

    Assumes the request and reply took equally long (as NTP does); keep the points with the
    smallest ``round_trip_us`` when fitting the sensor clock's offset and drift.
    """
    rtt = host_receive_time_us - reply.host_time_us
    if rtt < 0:
        raise FieldValueError(
            f"{_WHERE}: time-sync reply token {reply.token} received at {host_receive_time_us} µs, "
            f"before its request was sent at {reply.host_time_us} µs"
        )
    return TimeSyncPoint(reply.host_time_us + rtt / 2, reply.sensor_time_us, rtt)
