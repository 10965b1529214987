"""Exceptions for payloads that break the wire protocol (firmware_protocol/PROTOCOL.md).

Every class here derives from :class:`sensorhub.errors.ProtocolError` (itself a ``ValueError``), so
a consumer that must never stop on bad input catches that one type, counts the packet as malformed
and carries on. The subclasses let statistics tell the failure modes apart. Each message names the
record kind ("data packet", "control", "info"), the offending value and what was expected.
"""

from __future__ import annotations

from sensorhub.errors import ProtocolError

__all__ = [
    "FieldValueError",
    "LengthMismatchError",
    "ProtocolError",
    "TruncatedPacketError",
    "UnknownCodeError",
    "UnsupportedVersionError",
]


class TruncatedPacketError(ProtocolError):
    """The payload is shorter than its fixed header or than its own fields say it must be."""


class LengthMismatchError(ProtocolError):
    """The payload is longer than its fields say it must be (e.g. sample count vs. byte length)."""


class UnsupportedVersionError(ProtocolError):
    """The protocol version field names a version this codec does not implement."""


class UnknownCodeError(ProtocolError):
    """A coded field holds a reserved value: sample-rate, range, sensor-state, opcode or error code."""


class FieldValueError(ProtocolError):
    """A plain numeric field is outside its documented range (mostly raised by the encoders)."""
