"""The BLE edge of the hub: scanning, connecting and supervising sensors, and a fake peripheral.

* :mod:`sensorhub.ble.backend`: the narrow :class:`BleBackend` interface and its bleak implementation
  :class:`BleakBleBackend` (what users run).
* :mod:`sensorhub.ble.manager`: :class:`BleManager` (one scan, serialised connects, parallel
  streaming, per-sensor supervisor with reconnect and backoff, time sync, control commands).
* :mod:`sensorhub.ble.fake`: :class:`FakePeripheral` / :class:`FakeRadio`, byte-exact fake sensors
  plugged in under bleak as a platform backend (tests and ``--fake-sensors``).

Notifications leave this package as :class:`sensorhub.notification.Notification`; decoding and
stream assembly are :mod:`sensorhub.protocol` and :mod:`sensorhub.ingest`. See docs/ble.md.
"""

from sensorhub.ble.backend import BleakBleBackend, BleBackend, ClientLike, FoundSensor
from sensorhub.ble.errors import (
    AssignmentError,
    BleError,
    CommandRefusedError,
    ControlCommandError,
    NoSensorsFoundError,
    ReplyTimeoutError,
    TimeSyncError,
)
from sensorhub.ble.manager import (
    BackoffPolicy,
    BleManager,
    ManagerConfig,
    SensorEvent,
    SensorStatus,
    TimeSyncResult,
)

__all__ = [
    "AssignmentError",
    "BackoffPolicy",
    "BleBackend",
    "BleError",
    "BleManager",
    "BleakBleBackend",
    "ClientLike",
    "CommandRefusedError",
    "ControlCommandError",
    "FoundSensor",
    "ManagerConfig",
    "NoSensorsFoundError",
    "ReplyTimeoutError",
    "SensorEvent",
    "SensorStatus",
    "TimeSyncError",
    "TimeSyncResult",
]
