"""Constants of the sensor wire protocol, version 1: GATT UUIDs and the code tables.

This module is the Python twin of the tables in firmware_protocol/PROTOCOL.md and of
firmware_protocol/c/sensorhub_protocol.h. It holds data only; the codecs live next to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Final

from sensorhub.protocol.errors import UnknownCodeError

# --- GATT --------------------------------------------------------------------------------------
SERVICE_UUID: Final = "7a1d0001-5c3e-4b8e-9f3a-2b6d8c4e1f00"
DATA_CHAR_UUID: Final = "7a1d0002-5c3e-4b8e-9f3a-2b6d8c4e1f00"
"""Data packets; notify."""
CONTROL_CHAR_UUID: Final = "7a1d0003-5c3e-4b8e-9f3a-2b6d8c4e1f00"
"""Commands (write) and their replies (notify)."""
INFO_CHAR_UUID: Final = "7a1d0004-5c3e-4b8e-9f3a-2b6d8c4e1f00"
"""Fixed 14-byte info record; read."""

PROTOCOL_VERSION: Final = 1

# --- BLE sizes ---------------------------------------------------------------------------------
ATT_HEADER_BYTES: Final = 3
"""A notification carries ATT_MTU - 3 bytes of value (opcode + handle)."""
MIN_ATT_MTU: Final = 23
MAX_ATT_MTU: Final = 517

# --- data packet layout ------------------------------------------------------------------------
DATA_HEADER_BYTES: Final = 8
MAX_SAMPLES_PER_PACKET: Final = 16
"""The sample-count field is 4 bits wide and stores count - 1."""
AXES_6: Final = 6
AXES_9: Final = 9
BYTES_PER_VALUE: Final = 2

STANDARD_GRAVITY_M_S2: Final = 9.80665
INT16_FULL_SCALE: Final = 32768
"""value_SI = raw / 32768 * range, so raw -32768 is exactly -range and +32767 is one LSB below +range."""
MAG_UT_PER_LSB: Final = 0.15
"""Magnetometer scale is fixed in version 1 (AK09916: 0.15 µT/LSB, ±4912 µT)."""


class SensorState(IntEnum):
    """Bits 7-6 of the descriptor: how far the consumer can trust this packet."""

    STREAMING = 0
    """Normal operation."""
    WARMING_UP = 1
    """Sensor settling or its clock not yet time-synced; samples valid, timing provisional."""
    DEGRADED = 2
    """A fault the firmware knows about (e.g. self-test failed); samples may be wrong."""
    # 3 is reserved: receiving it is a malformation.


SAMPLE_RATES_HZ: Final[Mapping[int, float]] = MappingProxyType(
    {0: 25.0, 1: 50.0, 2: 60.0, 3: 100.0, 4: 120.0, 5: 200.0, 6: 400.0}
)
"""Sample-rate code (descriptor bits 5-3) -> output data rate in Hz. Code 7 is reserved."""


@dataclass(frozen=True, slots=True)
class FullScaleRange:
    """One full-scale range code: the accelerometer and gyroscope ranges the raw counts refer to."""

    acc_g: float
    gyr_dps: float

    @property
    def acc_m_s2_per_lsb(self) -> float:
        return self.acc_g * STANDARD_GRAVITY_M_S2 / INT16_FULL_SCALE

    @property
    def gyr_rad_s_per_lsb(self) -> float:
        return math.radians(self.gyr_dps) / INT16_FULL_SCALE


RANGE_CODES: Final[Mapping[int, FullScaleRange]] = MappingProxyType(
    {
        0: FullScaleRange(2.0, 250.0),
        1: FullScaleRange(4.0, 500.0),
        2: FullScaleRange(8.0, 1000.0),
        3: FullScaleRange(16.0, 2000.0),
        4: FullScaleRange(4.0, 2000.0),
        5: FullScaleRange(8.0, 2000.0),
    }
)
"""Range code (descriptor bits 2-0) -> (±g, ±dps). Codes 6 and 7 are reserved."""


def sample_rate_hz(rate_code: int, where: str = "data packet") -> float:
    """Rate in Hz for ``rate_code``; :class:`UnknownCodeError` for a reserved code."""
    try:
        return SAMPLE_RATES_HZ[rate_code]
    except KeyError:
        raise UnknownCodeError(
            f"{where}: sample-rate code {rate_code} is reserved, expected one of {sorted(SAMPLE_RATES_HZ)}"
        ) from None


def full_scale_range(range_code: int, where: str = "data packet") -> FullScaleRange:
    """Ranges for ``range_code``; :class:`UnknownCodeError` for a reserved code."""
    try:
        return RANGE_CODES[range_code]
    except KeyError:
        raise UnknownCodeError(
            f"{where}: full-scale range code {range_code} is reserved, expected one of {sorted(RANGE_CODES)}"
        ) from None


def sensor_state(value: int, where: str = "data packet") -> SensorState:
    """:class:`SensorState` for ``value``; :class:`UnknownCodeError` for the reserved state 3."""
    try:
        return SensorState(value)
    except ValueError:
        raise UnknownCodeError(
            f"{where}: sensor state {value} is reserved, expected 0 (streaming), 1 (warming up) or 2 (degraded)"
        ) from None


def rate_code_for_hz(rate_hz: float) -> int:
    """Inverse of :data:`SAMPLE_RATES_HZ`; :class:`UnknownCodeError` if the rate has no code."""
    for code, hz in SAMPLE_RATES_HZ.items():
        if hz == rate_hz:
            return code
    raise UnknownCodeError(
        f"sample rate {rate_hz} Hz has no rate code, expected one of {sorted(SAMPLE_RATES_HZ.values())} Hz"
    )


def range_code_for(acc_g: float, gyr_dps: float) -> int:
    """Inverse of :data:`RANGE_CODES`; :class:`UnknownCodeError` if the pair has no code."""
    for code, rng in RANGE_CODES.items():
        if rng.acc_g == acc_g and rng.gyr_dps == gyr_dps:
            return code
    pairs = ", ".join(f"{c}: ±{r.acc_g:g} g/±{r.gyr_dps:g} dps" for c, r in RANGE_CODES.items())
    raise UnknownCodeError(f"range pair ±{acc_g:g} g/±{gyr_dps:g} dps has no range code, expected one of {pairs}")
