"""Codec for the info characteristic: a fixed 14-byte record the hub reads once per connection.

Layout (firmware_protocol/PROTOCOL.md, "Info")::

    byte 0      u8  protocol version (1)
    bytes 1-3   u8  firmware version major, minor, patch
    bytes 4-9   6 bytes sensor id (shown as 12 lowercase hex digits, byte 4 first)
    byte 10     u8  battery percent 0..100, 255 = unknown
    byte 11     u8  capabilities: bit 0 has magnetometer; bits 1-7 reserved (0)
    byte 12     u8  current sample-rate code
    byte 13     u8  current full-scale range code

Pure functions; no I/O, no logging.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from sensorhub.protocol.errors import (
    FieldValueError,
    LengthMismatchError,
    TruncatedPacketError,
    UnknownCodeError,
    UnsupportedVersionError,
)
from sensorhub.protocol.spec import PROTOCOL_VERSION, full_scale_range, sample_rate_hz

_WHERE: Final = "info"
_LAYOUT: Final = struct.Struct("<B3B6sBBBB")
INFO_LENGTH: Final = _LAYOUT.size
BATTERY_UNKNOWN: Final = 255
CAP_MAGNETOMETER: Final = 0x01
_CAP_RESERVED: Final = 0xFF & ~CAP_MAGNETOMETER


@dataclass(frozen=True, slots=True)
class SensorInfo:
    protocol_version: int
    firmware_version: tuple[int, int, int]
    """(major, minor, patch)."""
    sensor_id: str
    """12 lowercase hex digits; the stable id the hub uses for this sensor."""
    battery_percent: int | None
    """0..100, or None when the sensor does not know (255 on the wire)."""
    has_mag: bool
    rate_code: int
    range_code: int

    @property
    def sample_rate_hz(self) -> float:
        return sample_rate_hz(self.rate_code, _WHERE)

    @property
    def firmware_version_str(self) -> str:
        return ".".join(str(v) for v in self.firmware_version)


def decode_info(payload: bytes | bytearray | memoryview) -> SensorInfo:
    """Decode the info record; raises a ProtocolError subclass for any deviation from the layout."""
    if len(payload) >= 1 and payload[0] != PROTOCOL_VERSION:
        raise UnsupportedVersionError(f"{_WHERE}: protocol version {payload[0]}, expected {PROTOCOL_VERSION}")
    if len(payload) != INFO_LENGTH:
        error = TruncatedPacketError if len(payload) < INFO_LENGTH else LengthMismatchError
        raise error(f"{_WHERE}: record needs {INFO_LENGTH} bytes, got {len(payload)}")
    version, major, minor, patch, sensor_id, battery, caps, rate_code, range_code = _LAYOUT.unpack(payload)
    if battery > 100 and battery != BATTERY_UNKNOWN:
        raise FieldValueError(f"{_WHERE}: battery percent {battery}, expected 0..100 or 255 (unknown)")
    if caps & _CAP_RESERVED:
        raise UnknownCodeError(f"{_WHERE}: capabilities 0x{caps:02x} set reserved bits, expected only bit 0")
    sample_rate_hz(rate_code, _WHERE)
    full_scale_range(range_code, _WHERE)
    return SensorInfo(
        protocol_version=version,
        firmware_version=(major, minor, patch),
        sensor_id=sensor_id.hex(),
        battery_percent=None if battery == BATTERY_UNKNOWN else battery,
        has_mag=bool(caps & CAP_MAGNETOMETER),
        rate_code=rate_code,
        range_code=range_code,
    )


def encode_info(info: SensorInfo) -> bytes:
    """Bytes of the info record (what firmware serves; the simulator and tests use it)."""
    try:
        sensor_id = bytes.fromhex(info.sensor_id)
    except ValueError:
        sensor_id = b""
    if len(sensor_id) != 6:
        raise FieldValueError(f"{_WHERE}: sensor id {info.sensor_id!r}, expected 12 hex digits")
    battery = BATTERY_UNKNOWN if info.battery_percent is None else info.battery_percent
    if not 0 <= battery <= 100 and battery != BATTERY_UNKNOWN:
        raise FieldValueError(f"{_WHERE}: battery percent {battery}, expected 0..100 or None")
    if info.protocol_version != PROTOCOL_VERSION:
        raise UnsupportedVersionError(f"{_WHERE}: protocol version {info.protocol_version}, expected {PROTOCOL_VERSION}")
    sample_rate_hz(info.rate_code, _WHERE)
    full_scale_range(info.range_code, _WHERE)
    try:
        return _LAYOUT.pack(
            info.protocol_version, *info.firmware_version, sensor_id, battery,
            CAP_MAGNETOMETER if info.has_mag else 0, info.rate_code, info.range_code,
        )
    except struct.error:
        raise FieldValueError(f"{_WHERE}: firmware version {info.firmware_version}, expected three values 0..255") from None
