"""The unit of data that enters the pipeline, live or replayed.

A :class:`Notification` is one BLE notification payload from one sensor, stamped with the hub's
receive time. The BLE callback builds one and enqueues it; a recording stores exactly these; replay
yields exactly these. Everything downstream (decoding, stream assembly, fusion) starts from here, so
live and replayed data take one path.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Notification:
    sensor_id: str
    """Stable sensor identifier (the id from the sensor's info characteristic, or its BLE address)."""
    t_host_s: float
    """Hub receive time, seconds on the hub's monotonic session clock (recording: seconds since its start)."""
    payload: bytes
    """The raw characteristic value, byte for byte."""
