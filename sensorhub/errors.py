"""The exception families of sensorhub.

Every error that bad input can cause derives from :class:`SensorhubError`, so a running service can
catch one type at its edge, log the message (which names what and where) and carry on. Each module
raises the most specific subclass it can; the message must say what was wrong and where (file,
byte offset, line, column, field) and what was expected.
"""


class SensorhubError(Exception):
    """Base of every error sensorhub raises on purpose."""


class ProtocolError(SensorhubError, ValueError):
    """A BLE payload (data packet, control command, info record) does not follow firmware_protocol/PROTOCOL.md."""


class RecordingError(SensorhubError):
    """A session recording cannot be read or written (bad magic, unsupported version, corrupt record)."""


class ImportFormatError(SensorhubError, ValueError):
    """An imported file (IMU CSV, calibration JSON) is malformed; the message names file, line and column."""


class CalibrationError(SensorhubError):
    """The calibration protocol could not be found or evaluated in the data."""


class ConfigurationError(SensorhubError, ValueError):
    """A command-line option, drill name or setting is not valid."""
