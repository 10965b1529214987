"""Codec for data packets: the notifications of the data characteristic.

Pure functions, bytes in and an immutable :class:`DataPacket` out (and back); no I/O, no logging,
no clocks. The layout (firmware_protocol/PROTOCOL.md, "Data packet"), all little-endian::

    bytes 0-1  u16 descriptor  bits 15-14 version (1)
                               bits 13-10 sample count - 1 (1..16)
                               bit  9     magnetometer present
                               bit  8     clipping (a value in this packet hit full scale)
                               bits 7-6   sensor state (SensorState; 3 reserved)
                               bits 5-3   sample-rate code (SAMPLE_RATES_HZ; 7 reserved)
                               bits 2-0   full-scale range code (RANGE_CODES; 6, 7 reserved)
    bytes 2-3  u16 seq         +1 per packet, wraps 65535 -> 0
    bytes 4-7  u32 t_first_us  sensor clock at the first sample, wraps every 2^32 µs (71.6 min)
    bytes 8-   int16 samples   per sample: acc x,y,z, gyr x,y,z[, mag x,y,z]

Decoding checks the version before anything else (a future version may change the header), then
the header length, the codes and finally the exact byte length the count implies.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sensorhub.protocol.errors import (
    FieldValueError,
    LengthMismatchError,
    ProtocolError,
    TruncatedPacketError,
    UnsupportedVersionError,
)
from sensorhub.protocol.spec import (
    ATT_HEADER_BYTES,
    AXES_6,
    AXES_9,
    BYTES_PER_VALUE,
    DATA_HEADER_BYTES,
    MAG_UT_PER_LSB,
    MAX_ATT_MTU,
    MAX_SAMPLES_PER_PACKET,
    MIN_ATT_MTU,
    PROTOCOL_VERSION,
    SensorState,
    full_scale_range,
    sample_rate_hz,
)
from sensorhub.protocol.spec import (
    sensor_state as _sensor_state_code,
)

FloatArray = NDArray[np.float64]
Int16Array = NDArray[np.int16]

_HEADER: Final = struct.Struct("<HHI")
_INT16_MIN: Final = -32768
_INT16_MAX: Final = 32767
_WHERE: Final = "data packet"

# (shift, width) of each descriptor field; one table shared by packing and unpacking.
_VERSION: Final = (14, 2)
_COUNT_MINUS_1: Final = (10, 4)
_MAG: Final = (9, 1)
_CLIPPING: Final = (8, 1)
_STATE: Final = (6, 2)
_RATE: Final = (3, 3)
_RANGE: Final = (0, 3)


def _get(word: int, field: tuple[int, int]) -> int:
    shift, width = field
    return (word >> shift) & ((1 << width) - 1)


def _put(value: int, field: tuple[int, int]) -> int:
    shift, width = field
    return (value & ((1 << width) - 1)) << shift


@dataclass(frozen=True, eq=False, slots=True)
class DataPacket:
    """One decoded data packet, values in SI units (arrays are read-only float64, shape (n, 3)).

    The three SI arrays are column views of one (n, 6|9) array, so they are not C-contiguous:
    copy (``np.ascontiguousarray``) before handing them to C extensions such as vqf.

    Sensor axes are the sensor's own body frame as the firmware reports it; accelerometer values
    are specific force (+9.81 m/s² on the axis pointing up at rest).
    """

    version: int
    seq: int
    """Packet counter, 0..65535, wraps; unwrap with :func:`sensorhub.protocol.unwrap_seq`."""
    t_first_us: int
    """Sensor clock (µs, u32, wraps) at the first sample; unwrap with :func:`unwrap_time_us`."""
    rate_code: int
    sample_rate_hz: float
    sample_period_us: float
    """Exactly 1e6 / sample_rate_hz (60 Hz -> 16666.67 µs); never rounded on the wire."""
    n_samples: int
    has_mag: bool
    clipping: bool
    """True if at least one value in this packet reached full scale (the true value may be larger)."""
    sensor_state: SensorState
    range_code: int
    acc_range_g: float
    gyr_range_dps: float
    acc_m_s2: FloatArray
    gyr_rad_s: FloatArray
    mag_uT: FloatArray | None
    raw: Int16Array
    """The int16 counts as sent, shape (n, 6) or (n, 9): acc xyz, gyr xyz[, mag xyz]."""

    def sample_times_us(self) -> FloatArray:
        """Sensor time of each sample in µs relative to ``t_first_us`` (0, T, 2T, ...), float64."""
        return np.arange(self.n_samples, dtype=np.float64) * self.sample_period_us


def packet_size_bytes(n_samples: int, has_mag: bool) -> int:
    """Byte length of a data packet with ``n_samples`` samples (6- or 9-axis)."""
    axes = AXES_9 if has_mag else AXES_6
    return DATA_HEADER_BYTES + n_samples * axes * BYTES_PER_VALUE


def max_samples_per_packet(mtu: int, has_mag: bool) -> int:
    """How many samples one notification can carry at ATT MTU ``mtu`` (capped at 16).

    Returns 0 when not even one sample fits (9-axis needs MTU >= 29). ``mtu`` outside the BLE
    range 23..517 raises :class:`FieldValueError`.
    """
    if not MIN_ATT_MTU <= mtu <= MAX_ATT_MTU:
        raise FieldValueError(f"ATT MTU {mtu} is outside the BLE range {MIN_ATT_MTU}..{MAX_ATT_MTU}")
    stride = (AXES_9 if has_mag else AXES_6) * BYTES_PER_VALUE
    payload = mtu - ATT_HEADER_BYTES
    return max(0, min(MAX_SAMPLES_PER_PACKET, (payload - DATA_HEADER_BYTES) // stride))


@functools.cache
def _scale_row(range_code: int, has_mag: bool) -> FloatArray:
    """SI units per count for each column of a sample row (acc, gyr[, mag])."""
    rng = full_scale_range(range_code, _WHERE)
    row = [rng.acc_m_s2_per_lsb] * 3 + [rng.gyr_rad_s_per_lsb] * 3 + ([MAG_UT_PER_LSB] * 3 if has_mag else [])
    scale = np.array(row, dtype=np.float64)
    scale.flags.writeable = False
    return scale


def decode_packet(payload: bytes | bytearray | memoryview) -> DataPacket:
    """Decode one data-characteristic notification.

    Raises a :class:`sensorhub.errors.ProtocolError` subclass for any malformation:
    :class:`TruncatedPacketError` (shorter than the header or than the count implies),
    :class:`UnsupportedVersionError`, :class:`UnknownCodeError` (reserved rate, range or state
    code) and :class:`LengthMismatchError` (longer than the count implies).
    """
    n_bytes = len(payload)
    if n_bytes < 2:
        raise TruncatedPacketError(f"{_WHERE}: {n_bytes} bytes, expected at least the 2-byte descriptor")
    (descriptor,) = struct.unpack_from("<H", payload)
    version = _get(descriptor, _VERSION)
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersionError(
            f"{_WHERE}: protocol version {version} (descriptor 0x{descriptor:04x}), expected {PROTOCOL_VERSION}"
        )
    if n_bytes < DATA_HEADER_BYTES:
        raise TruncatedPacketError(f"{_WHERE}: {n_bytes} bytes, expected at least the {DATA_HEADER_BYTES}-byte header")
    _, seq, t_first_us = _HEADER.unpack_from(payload)

    rate_code = _get(descriptor, _RATE)
    range_code = _get(descriptor, _RANGE)
    rate_hz = sample_rate_hz(rate_code, _WHERE)
    rng = full_scale_range(range_code, _WHERE)
    state = _sensor_state_code(_get(descriptor, _STATE), _WHERE)

    n = _get(descriptor, _COUNT_MINUS_1) + 1
    has_mag = bool(_get(descriptor, _MAG))
    axes = AXES_9 if has_mag else AXES_6
    expected = packet_size_bytes(n, has_mag)
    if n_bytes != expected:
        error = TruncatedPacketError if n_bytes < expected else LengthMismatchError
        raise error(f"{_WHERE}: sample count {n} with {axes}-axis samples needs {expected} bytes, got {n_bytes}")

    raw = np.frombuffer(payload, dtype="<i2", offset=DATA_HEADER_BYTES).reshape(n, axes).astype(np.int16)
    # One multiplication by a per-column scale row; the SI arrays are read-only views of its result.
    si: FloatArray = raw * _scale_row(range_code, has_mag)
    raw.flags.writeable = False
    si.flags.writeable = False
    return DataPacket(
        version=version,
        seq=seq,
        t_first_us=t_first_us,
        rate_code=rate_code,
        sample_rate_hz=rate_hz,
        sample_period_us=1e6 / rate_hz,
        n_samples=n,
        has_mag=has_mag,
        clipping=bool(_get(descriptor, _CLIPPING)),
        sensor_state=state,
        range_code=range_code,
        acc_range_g=rng.acc_g,
        gyr_range_dps=rng.gyr_dps,
        acc_m_s2=si[:, 0:3],
        gyr_rad_s=si[:, 3:6],
        mag_uT=si[:, 6:9] if has_mag else None,
        raw=raw,
    )


@functools.cache
def _layout(descriptor: int) -> tuple[int, float, float, int, bool, bool, SensorState, int, float, float] | None:
    """Header fields a descriptor implies, or None if any code in it is invalid.

    Returns (rate_code, rate_hz, period_us, n_samples, has_mag, clipping, state, range_code,
    acc_range_g, gyr_range_dps); there are at most 2^16 descriptors, so the cache stays small.
    """
    if _get(descriptor, _VERSION) != PROTOCOL_VERSION:
        return None
    rate_code, range_code, state = _get(descriptor, _RATE), _get(descriptor, _RANGE), _get(descriptor, _STATE)
    try:
        rate_hz = sample_rate_hz(rate_code, _WHERE)
        rng = full_scale_range(range_code, _WHERE)
        state_enum = _sensor_state_code(state, _WHERE)
    except ProtocolError:
        return None
    return (rate_code, rate_hz, 1e6 / rate_hz, _get(descriptor, _COUNT_MINUS_1) + 1, bool(_get(descriptor, _MAG)),
            bool(_get(descriptor, _CLIPPING)), state_enum, range_code, rng.acc_g, rng.gyr_dps)


def decode_packets(payloads: Sequence[bytes | bytearray | memoryview]) -> list[DataPacket | ProtocolError]:
    """Decode many data packets at once: the batch form of :func:`decode_packet`.

    Element ``k`` of the result is what ``decode_packet(payloads[k])`` returns, or the
    :class:`~sensorhub.errors.ProtocolError` it raises (returned, not raised, so one bad payload does
    not stop the batch). Payloads of one byte length are parsed together with NumPy (one
    ``np.frombuffer`` over their concatenation, one scaling per layout); the arrays of the returned
    packets are read-only views into those shared arrays. Any payload the bulk path does not accept
    (short, wrong version, reserved code, length not matching its count) goes through
    :func:`decode_packet` itself, so errors and their messages are exactly those of the single decoder.
    """
    out: list[DataPacket | ProtocolError | None] = [None] * len(payloads)
    by_length: dict[int, list[int]] = {}
    for k, payload in enumerate(payloads):
        by_length.setdefault(len(payload), []).append(k)
    for n_bytes, idx in by_length.items():
        fallback: list[int] = []
        if n_bytes >= DATA_HEADER_BYTES:
            block = np.frombuffer(b"".join(payloads[k] for k in idx), dtype=np.uint8).reshape(len(idx), n_bytes)
            header = np.ascontiguousarray(block[:, :DATA_HEADER_BYTES])
            descriptors = header[:, 0:2].copy().view("<u2")[:, 0].tolist()
            seqs = header[:, 2:4].copy().view("<u2")[:, 0].tolist()
            t_firsts = header[:, 4:8].copy().view("<u4")[:, 0].tolist()
            # Rows grouped by descriptor: one layout and one scale row per group.
            groups: dict[int, list[int]] = {}
            for row, descriptor in enumerate(descriptors):
                groups.setdefault(descriptor, []).append(row)
            for descriptor, rows in groups.items():
                layout = _layout(descriptor)
                if layout is None or packet_size_bytes(layout[3], layout[4]) != n_bytes:
                    fallback += [idx[r] for r in rows]
                    continue
                _decode_group(block[rows], layout, [idx[r] for r in rows],
                              [seqs[r] for r in rows], [t_firsts[r] for r in rows], out)
        else:
            fallback = idx
        for k in fallback:
            try:
                out[k] = decode_packet(payloads[k])
            except ProtocolError as exc:
                out[k] = exc
    return out  # type: ignore[return-value]  # every slot has been filled


def _decode_group(
    rows: NDArray[np.uint8],
    layout: tuple[int, float, float, int, bool, bool, SensorState, int, float, float],
    where: list[int],
    seqs: list[int],
    t_firsts: list[int],
    out: list[DataPacket | ProtocolError | None],
) -> None:
    """Decode payloads of one descriptor (and so one layout) into ``out[where[i]]``."""
    rate_code, rate_hz, period_us, n, has_mag, clipping, state, range_code, acc_g, gyr_dps = layout
    axes = AXES_9 if has_mag else AXES_6
    raw = np.ascontiguousarray(rows[:, DATA_HEADER_BYTES:]).view("<i2").reshape(len(where), n, axes).astype(np.int16)
    si: FloatArray = raw * _scale_row(range_code, has_mag)  # the same product decode_packet takes
    raw.flags.writeable = False
    si.flags.writeable = False
    for i, k in enumerate(where):
        si_k = si[i]
        out[k] = DataPacket(
            version=PROTOCOL_VERSION,
            seq=seqs[i],
            t_first_us=t_firsts[i],
            rate_code=rate_code,
            sample_rate_hz=rate_hz,
            sample_period_us=period_us,
            n_samples=n,
            has_mag=has_mag,
            clipping=clipping,
            sensor_state=state,
            range_code=range_code,
            acc_range_g=acc_g,
            gyr_range_dps=gyr_dps,
            acc_m_s2=si_k[:, 0:3],
            gyr_rad_s=si_k[:, 3:6],
            mag_uT=si_k[:, 6:9] if has_mag else None,
            raw=raw[i],
        )


def _check_uint(name: str, value: int, bits: int) -> int:
    if not isinstance(value, (int, np.integer)) or not 0 <= value < (1 << bits):
        raise FieldValueError(f"{_WHERE}: {name} {value!r} is not an unsigned {bits}-bit integer")
    return int(value)


def encode_packet_raw(
    *,
    seq: int,
    t_first_us: int,
    rate_code: int,
    range_code: int,
    raw: ArrayLike,
    sensor_state: SensorState | int = SensorState.STREAMING,
    clipping: bool = False,
) -> bytes:
    """Encode int16 counts ``raw`` (shape (n, 6) or (n, 9), n = 1..16) as a data packet.

    This is the firmware's view and the reference the C encoder matches byte for byte. The
    clipping bit is ``clipping`` OR "some count equals -32768 or +32767", so firmware only needs to
    pass its own saturation knowledge (e.g. an IMU status bit) on top of what the counts show.
    """
    counts = np.asarray(raw)
    if counts.ndim != 2 or counts.shape[1] not in (AXES_6, AXES_9):
        raise FieldValueError(f"{_WHERE}: raw samples have shape {counts.shape}, expected (n, 6) or (n, 9)")
    n = counts.shape[0]
    if not 1 <= n <= MAX_SAMPLES_PER_PACKET:
        raise FieldValueError(f"{_WHERE}: sample count {n}, expected 1..{MAX_SAMPLES_PER_PACKET}")
    if not np.issubdtype(counts.dtype, np.integer) or counts.min() < _INT16_MIN or counts.max() > _INT16_MAX:
        raise FieldValueError(f"{_WHERE}: raw samples must be integers in {_INT16_MIN}..{_INT16_MAX}")
    _check_codes(rate_code, range_code)
    state = _state_value(sensor_state)
    hit_full_scale = bool(np.any((counts == _INT16_MIN) | (counts == _INT16_MAX)))
    descriptor = (
        _put(PROTOCOL_VERSION, _VERSION)
        | _put(n - 1, _COUNT_MINUS_1)
        | _put(int(counts.shape[1] == AXES_9), _MAG)
        | _put(int(clipping or hit_full_scale), _CLIPPING)
        | _put(state, _STATE)
        | _put(rate_code, _RATE)
        | _put(range_code, _RANGE)
    )
    header = _HEADER.pack(descriptor, _check_uint("seq", seq, 16), _check_uint("t_first_us", t_first_us, 32))
    return header + counts.astype("<i2").tobytes()


def _check_codes(rate_code: int, range_code: int) -> None:
    sample_rate_hz(rate_code, _WHERE)
    full_scale_range(range_code, _WHERE)


def _state_value(state: SensorState | int) -> int:
    return int(_sensor_state_code(int(state), _WHERE))


def _quantise(values_si: ArrayLike, si_per_lsb: float, name: str, n: int | None) -> Int16Array:
    arr = np.asarray(values_si, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or (n is not None and arr.shape[0] != n):
        expected = f"({n if n is not None else 'n'}, 3)"
        raise FieldValueError(f"{_WHERE}: {name} has shape {arr.shape}, expected {expected}")
    if not np.all(np.isfinite(arr)):
        raise FieldValueError(f"{_WHERE}: {name} contains NaN or infinite values")
    # Saturate like an ADC does; a count at either rail sets the clipping bit in encode_packet_raw.
    return np.clip(np.rint(arr / si_per_lsb), _INT16_MIN, _INT16_MAX).astype(np.int16)


def encode_packet(
    *,
    seq: int,
    t_first_us: int,
    rate_code: int,
    range_code: int,
    acc_m_s2: ArrayLike,
    gyr_rad_s: ArrayLike,
    mag_uT: ArrayLike | None = None,
    sensor_state: SensorState | int = SensorState.STREAMING,
    clipping: bool = False,
) -> bytes:
    """Quantise SI samples (each (n, 3), n = 1..16) to int16 counts and encode a data packet.

    Values are rounded to the nearest count and saturated at the int16 rails; a value that
    reaches a rail sets the clipping bit. ``mag_uT`` given means a 9-axis packet. Intended for the
    simulator and tests; the inverse of :func:`decode_packet` up to half a count.
    """
    rng = full_scale_range(range_code, _WHERE)
    acc = _quantise(acc_m_s2, rng.acc_m_s2_per_lsb, "acc_m_s2", None)
    parts = [acc, _quantise(gyr_rad_s, rng.gyr_rad_s_per_lsb, "gyr_rad_s", acc.shape[0])]
    if mag_uT is not None:
        parts.append(_quantise(mag_uT, MAG_UT_PER_LSB, "mag_uT", acc.shape[0]))
    return encode_packet_raw(
        seq=seq,
        t_first_us=t_first_us,
        rate_code=rate_code,
        range_code=range_code,
        raw=np.hstack(parts),
        sensor_state=sensor_state,
        clipping=clipping,
    )


__all__ = [
    "DataPacket",
    "decode_packet",
    "decode_packets",
    "encode_packet",
    "encode_packet_raw",
    "max_samples_per_packet",
    "packet_size_bytes",
]
