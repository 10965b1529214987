"""Errors of the BLE edge (scanning, connecting, control commands, time sync).

All derive from :class:`BleError`, itself a :class:`sensorhub.errors.SensorhubError`, so the CLI and
the service report them as one line naming the sensor and what failed.
"""

from __future__ import annotations

from sensorhub.errors import ConfigurationError, SensorhubError


class BleError(SensorhubError):
    """Something went wrong talking to a sensor over BLE; the message names the sensor."""


class NoSensorsFoundError(BleError):
    """A scan found no device advertising the sensorhub service (or none of the wanted sensors)."""


class ControlCommandError(BleError):
    """A control command failed: refused by the sensor or not answered in time."""


class CommandRefusedError(ControlCommandError):
    """The sensor answered a command with an ERROR reply (the message names the error code)."""


class ReplyTimeoutError(ControlCommandError):
    """No reply to a control command within the reply timeout."""


class TimeSyncError(BleError):
    """No time-sync round trip completed."""


class AssignmentError(ConfigurationError):
    """A sensor-to-body assignment is invalid (unknown segment, missing side) or its file is unreadable."""
