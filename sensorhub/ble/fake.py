"""A fake sensorhub peripheral that speaks the GATT profile byte for byte, plugged in under bleak.

Nothing here imitates the manager's interface. :class:`FakeRadio` provides two *bleak platform
backends* (subclasses of bleak's own :class:`~bleak.backends.scanner.BaseBleakScanner` and
:class:`~bleak.backends.client.BaseBleakClient`); bleak 3 accepts them through ``backend=``, so the
manager, :class:`~sensorhub.ble.backend.BleakBleBackend`, :class:`bleak.BleakScanner` and
:class:`bleak.BleakClient` all run unchanged on top of them, as they do over BlueZ.

A :class:`FakePeripheral` behaves like the firmware described in firmware_protocol/PROTOCOL.md:

* advertises :data:`SERVICE_UUID`; serves the 14-byte info record (:func:`encode_info`);
* accepts control writes, parsed with :func:`decode_control`, answered with ACK / ERROR /
  TIME_SYNC_REPLY notifications on the control characteristic (the reply carries its own µs clock,
  which has an offset and a drift against the host's monotonic clock);
* streams data notifications built with :func:`encode_packet` at the configured rate from a
  :class:`SampleSource`, batched to fit the MTU, with sequence numbers and u32 µs timestamps;
  packets keep being produced (and counted in ``seq``) while no hub listens, as firmware does when
  its notification queue is full, so the hub sees the outage as a sequence gap;
* faults on request: :meth:`FakePeripheral.drop_connection` (optionally out of range for a while),
  :meth:`~FakePeripheral.lose_next`, random ``loss``, :meth:`~FakePeripheral.duplicate_next`,
  :meth:`~FakePeripheral.reboot` (seq and clock start again).

It runs on asyncio time in real time; keep tests to a few seconds of streaming. Everything it sends
and everything written to it is recorded (:attr:`FakePeripheral.packets`,
:attr:`FakePeripheral.control_writes`) so tests can compare bytes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

import numpy as np
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDBusError, BleakDeviceNotFoundError, BleakError

from sensorhub.ble.backend import BleakBleBackend
from sensorhub.protocol import (
    COMMAND_OPCODES,
    CONTROL_CHAR_UUID,
    DATA_CHAR_UUID,
    INFO_CHAR_UUID,
    RANGE_CODES,
    SAMPLE_RATES_HZ,
    SERVICE_UUID,
    STANDARD_GRAVITY_M_S2,
    Ack,
    ControlErrorCode,
    ControlMessage,
    ErrorReply,
    SensorInfo,
    SetRanges,
    SetSampleRate,
    StartStreaming,
    StopStreaming,
    TimeSyncReply,
    TimeSyncRequest,
    control_length,
    decode_control,
    encode_control,
    encode_info,
    encode_packet,
    max_samples_per_packet,
)
from sensorhub.samples import FloatArray

if TYPE_CHECKING:
    from sensorhub.sim import SimulatedSensor

log = logging.getLogger(__name__)

U32 = 1 << 32
BLUEZ_IN_PROGRESS = "org.bluez.Error.InProgress"

__all__ = [
    "ArraySource",
    "FakePeripheral",
    "FakeRadio",
    "RotatingSource",
    "SampleSource",
    "SentPacket",
    "StillSource",
    "simulated_radio",
]


# --------------------------------------------------------------------------------------------------
# Sample sources
# --------------------------------------------------------------------------------------------------


class SampleSource(Protocol):
    """Where a fake sensor's samples come from (SI units, sensor body frame)."""

    @property
    def has_mag(self) -> bool: ...

    def take(self, n: int, rate_hz: float) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        """The next ``n`` samples at ``rate_hz``: acc_m_s2 (n,3), gyr_rad_s (n,3), mag_uT (n,3) or None."""
        ...


@dataclass
class StillSource:
    """A sensor lying still: constant specific force, gyroscope and field."""

    acc_m_s2: tuple[float, float, float] = (0.0, 0.0, STANDARD_GRAVITY_M_S2)
    gyr_rad_s: tuple[float, float, float] = (0.0, 0.0, 0.0)
    mag_uT: tuple[float, float, float] | None = None

    @property
    def has_mag(self) -> bool:
        return self.mag_uT is not None

    def take(self, n: int, rate_hz: float) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        acc = np.tile(np.asarray(self.acc_m_s2, dtype=np.float64), (n, 1))
        gyr = np.tile(np.asarray(self.gyr_rad_s, dtype=np.float64), (n, 1))
        mag = None if self.mag_uT is None else np.tile(np.asarray(self.mag_uT, dtype=np.float64), (n, 1))
        return acc, gyr, mag


@dataclass
class RotatingSource:
    """A sensor flat on a turntable: z up, turning about z at ``rate_rad_s``; the earth field turns in its frame."""

    rate_rad_s: float = 1.0
    mag_earth_uT: tuple[float, float, float] | None = (0.0, 20.0, -44.0)
    _angle_rad: float = field(default=0.0, init=False)

    @property
    def has_mag(self) -> bool:
        return self.mag_earth_uT is not None

    def take(self, n: int, rate_hz: float) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        angle = self._angle_rad + np.arange(n) * self.rate_rad_s / rate_hz
        self._angle_rad = float(angle[-1] + self.rate_rad_s / rate_hz)
        acc = np.tile([0.0, 0.0, STANDARD_GRAVITY_M_S2], (n, 1))
        gyr = np.tile([0.0, 0.0, self.rate_rad_s], (n, 1))
        mag = None
        if self.mag_earth_uT is not None:
            ex, ey, ez = self.mag_earth_uT
            c, s = np.cos(angle), np.sin(angle)
            # Field in the sensor frame: the earth vector rotated by -angle about z.
            mag = np.column_stack([c * ex + s * ey, -s * ex + c * ey, np.full(n, ez)])
        return acc, gyr, mag


class ArraySource:
    """Replays recorded or simulated arrays in order, looping at the end (``loop``) or holding the last sample."""

    def __init__(self, acc_m_s2: FloatArray, gyr_rad_s: FloatArray, mag_uT: FloatArray | None = None,
                 *, loop: bool = True) -> None:
        if acc_m_s2.shape != gyr_rad_s.shape or acc_m_s2.ndim != 2 or acc_m_s2.shape[1] != 3 or len(acc_m_s2) == 0:
            raise ValueError(f"ArraySource: acc {acc_m_s2.shape} and gyr {gyr_rad_s.shape} must both be (n>0, 3)")
        if mag_uT is not None and mag_uT.shape != acc_m_s2.shape:
            raise ValueError(f"ArraySource: mag {mag_uT.shape} must match acc {acc_m_s2.shape}")
        self._acc, self._gyr, self._mag = acc_m_s2, gyr_rad_s, mag_uT
        self._loop = loop
        self._i = 0

    @classmethod
    def from_simulated(cls, sensor: SimulatedSensor) -> ArraySource:
        """The readings of one sensor of :func:`sensorhub.sim.simulate` (before the simulated BLE link)."""
        r = sensor.readings
        return cls(r.acc_m_s2, r.gyr_rad_s, r.mag_uT)

    @property
    def has_mag(self) -> bool:
        return self._mag is not None

    def take(self, n: int, rate_hz: float) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        total = len(self._acc)
        idx = np.arange(self._i, self._i + n)
        idx = idx % total if self._loop else np.minimum(idx, total - 1)
        self._i += n
        return self._acc[idx], self._gyr[idx], None if self._mag is None else self._mag[idx]


# --------------------------------------------------------------------------------------------------
# The peripheral
# --------------------------------------------------------------------------------------------------


@dataclass
class SentPacket:
    """One data packet the fake produced (whether or not it reached a hub)."""

    seq: int
    t_first_us: int
    payload: bytes
    delivered: bool
    """True if handed to a subscribed hub (and still connected when the notification arrived)."""
    reason: str = ""
    """Why it was not delivered: 'not connected', 'not subscribed', 'lost', 'disconnected in flight'."""
    duplicated: bool = False
    boot: int = 0
    """Boot counter of the fake when the packet was produced (a reboot increments it)."""


class FakePeripheral:
    """One simulated IMU sensor running the sensorhub firmware protocol (see the module docstring).

    ``clock`` is the host's monotonic clock in seconds (the fake's µs clock is derived from it with
    ``clock_offset_us`` and ``clock_drift_ppm``: ``S = offset + elapsed · 1e6 · (1 + drift·1e-6)``,
    mod 2³²). ``link_latency_s`` is the one-way delay of every notification, write and read.
    """

    def __init__(
        self,
        sensor_id: str,
        *,
        name: str | None = None,
        address: str | None = None,
        source: SampleSource | None = None,
        rate_code: int = 3,
        range_code: int = 1,
        firmware_version: tuple[int, int, int] = (1, 0, 0),
        battery_percent: int | None = 87,
        mtu: int = 247,
        samples_per_packet: int | None = None,
        clock_offset_us: int = 0,
        clock_drift_ppm: float = 0.0,
        link_latency_s: float = 0.002,
        connect_delay_s: float = 0.05,
        loss: float = 0.0,
        supported_rate_codes: Iterable[int] | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sensor_id = sensor_id
        self.address = address or ":".join(sensor_id[i:i + 2] for i in range(0, 12, 2)).upper()
        self.name = name or f"sensorhub-{sensor_id[-4:]}"
        self.source: SampleSource = source or StillSource()
        self.firmware_version = firmware_version
        self.battery_percent = battery_percent
        self.mtu = mtu
        self.has_mag = self.source.has_mag and max_samples_per_packet(mtu, True) > 0
        self.rate_code = rate_code
        self.range_code = range_code
        self._fixed_spp = samples_per_packet
        self.link_latency_s = link_latency_s
        self.connect_delay_s = connect_delay_s
        self.loss = loss
        self.supported_rate_codes = frozenset(supported_rate_codes if supported_rate_codes is not None
                                              else SAMPLE_RATES_HZ)
        self.clock = clock
        self._rng = random.Random(seed)
        self._clock_t0_s = clock()
        self.clock_offset_us = clock_offset_us
        self.clock_drift_ppm = clock_drift_ppm
        encode_info(self.info())  # fail early on a bad id, battery or code

        self.advertising = True
        self.available = True
        """False: out of range; connects fail (after the connect delay) until it is True again."""
        self.boot = 0
        self.seq = self._rng.randrange(1 << 16)  # "starts at any value after boot"
        self.streaming = False
        self._stream_task: asyncio.Task[None] | None = None
        self._client: FakeBleakClientBackend | None = None
        self._subscriptions: dict[str, Callable[[bytearray], None]] = {}
        self._lose_next = 0
        self._duplicate_next = 0

        self.packets: list[SentPacket] = []
        self.control_writes: list[bytes] = []
        """Every control write, byte for byte, in order."""
        self.control_replies: list[bytes] = []
        self.clients: list[FakeBleakClientBackend] = []
        """Every client object that connected, in order (a reconnect must bring a new one)."""

    # -- state seen by tests -------------------------------------------------------------------------

    def info(self) -> SensorInfo:
        return SensorInfo(1, self.firmware_version, self.sensor_id, self.battery_percent, self.has_mag,
                          self.rate_code, self.range_code)

    @property
    def rate_hz(self) -> float:
        return SAMPLE_RATES_HZ[self.rate_code]

    @property
    def samples_per_packet(self) -> int:
        """Samples per notification: fixed if given, else about 50 ms of data, at most what the MTU holds."""
        fit = max_samples_per_packet(self.mtu, self.has_mag)
        wanted = self._fixed_spp or max(1, round(self.rate_hz * 0.05))
        return max(1, min(fit, wanted))

    @property
    def is_connected(self) -> bool:
        return self._client is not None

    def sensor_time_us(self, t_host_s: float | None = None) -> int:
        """The fake's free-running µs clock (u32) at host time ``t_host_s`` (default: now)."""
        return self.sensor_clock_us(t_host_s) % U32

    def sensor_clock_us(self, t_host_s: float | None = None) -> int:
        """The fake's µs clock at host time ``t_host_s`` before the 32-bit wrap (tests compare offsets with it)."""
        t = self.clock() if t_host_s is None else t_host_s
        return self.clock_offset_us + math.floor((t - self._clock_t0_s) * 1e6 * (1.0 + self.clock_drift_ppm * 1e-6))

    def delivered(self) -> list[SentPacket]:
        return [p for p in self.packets if p.delivered]

    # -- faults --------------------------------------------------------------------------------------

    def drop_connection(self, unavailable_for_s: float = 0.0) -> None:
        """Drop the link as a radio fade would; optionally stay out of range for a while."""
        client = self._client
        if client is None:
            return
        log.info("%s: dropping the connection (out of range for %.2f s)", self.name, unavailable_for_s)
        self._detach(client)
        if unavailable_for_s > 0:
            self.available = False
            asyncio.get_running_loop().call_later(unavailable_for_s, setattr, self, "available", True)
        client.notify_disconnected()

    def lose_next(self, n: int = 1) -> None:
        """The next ``n`` data packets are produced (seq advances) but never arrive."""
        self._lose_next += n

    def duplicate_next(self, n: int = 1) -> None:
        """The next ``n`` delivered data packets arrive twice."""
        self._duplicate_next += n

    def reboot(self) -> None:
        """Restart the firmware: the link drops, seq and the µs clock start again, streaming stops."""
        self.boot += 1
        self.seq = 0
        self._clock_t0_s = self.clock()
        self.clock_offset_us = 0
        self._stop_streaming()
        client = self._client
        if client is not None:
            self._detach(client)
            client.notify_disconnected()

    # -- GATT server side ----------------------------------------------------------------------------

    def _attach(self, client: FakeBleakClientBackend) -> None:
        if self._client is not None:
            raise BleakError(f"{self.name}: already connected to another central")
        self._client = client
        self.clients.append(client)

    def _detach(self, client: FakeBleakClientBackend) -> None:
        if self._client is client:
            self._client = None
            self._subscriptions.clear()  # no bonding: the CCCDs reset with the link

    def _subscribe(self, client: FakeBleakClientBackend, uuid: str, callback: Callable[[bytearray], None]) -> None:
        if uuid not in (DATA_CHAR_UUID, CONTROL_CHAR_UUID):
            raise BleakError(f"{self.name}: characteristic {uuid} does not notify")
        self._subscriptions[uuid] = callback

    def _unsubscribe(self, uuid: str) -> None:
        self._subscriptions.pop(uuid, None)

    def _notify(self, uuid: str, payload: bytes, record: SentPacket | None = None) -> bool:
        """Send a notification after the link latency; False if nobody listens."""
        client = self._client
        callback = self._subscriptions.get(uuid)
        if client is None or callback is None:
            if record is not None:
                record.reason = "not connected" if client is None else "not subscribed"
            return False

        def arrive() -> None:
            if self._client is client and self._subscriptions.get(uuid) is callback:
                callback(bytearray(payload))
            elif record is not None:
                record.delivered = False
                record.reason = "disconnected in flight"

        asyncio.get_running_loop().call_later(self.link_latency_s, arrive)
        return True

    def _read(self, uuid: str) -> bytes:
        if uuid != INFO_CHAR_UUID:
            raise BleakError(f"{self.name}: characteristic {uuid} is not readable")
        return encode_info(self.info())

    def _write(self, uuid: str, data: bytes) -> None:
        """A control write has reached the sensor: act on it and notify the reply."""
        if uuid != CONTROL_CHAR_UUID:
            raise BleakError(f"{self.name}: characteristic {uuid} is not writable")
        self.control_writes.append(bytes(data))
        reply = self._handle_command(bytes(data))
        payload = encode_control(reply)
        self.control_replies.append(payload)
        self._notify(CONTROL_CHAR_UUID, payload)

    def _handle_command(self, data: bytes) -> ControlMessage:
        refused = self._refusal(data)
        if refused is not None:
            return refused
        cmd = decode_control(data)
        if isinstance(cmd, TimeSyncRequest):
            # Read the clock as late as possible, as PROTOCOL.md 5.3 asks of firmware.
            return TimeSyncReply(cmd.token, cmd.host_time_us, self.sensor_time_us())
        if isinstance(cmd, StartStreaming):
            self._start_streaming()
        elif isinstance(cmd, StopStreaming):
            self._stop_streaming()
        elif isinstance(cmd, SetSampleRate):
            self.rate_code = cmd.rate_code
        elif isinstance(cmd, SetRanges):
            self.range_code = cmd.range_code
        return Ack(data[0])

    def _refusal(self, data: bytes) -> ErrorReply | None:
        """The ERROR reply firmware sends for a write it cannot parse or carry out (PROTOCOL.md 5.1)."""
        if not data:
            return ErrorReply(0, ControlErrorCode.BAD_LENGTH)
        op = data[0]
        if op not in COMMAND_OPCODES:
            return ErrorReply(op, ControlErrorCode.UNKNOWN_OPCODE)
        if len(data) != control_length(op):
            return ErrorReply(op, ControlErrorCode.BAD_LENGTH)
        if op == 0x03 and data[1] not in self.supported_rate_codes:
            return ErrorReply(op, ControlErrorCode.UNKNOWN_RATE_CODE)
        if op == 0x04 and data[1] not in RANGE_CODES:
            return ErrorReply(op, ControlErrorCode.UNKNOWN_RANGE_CODE)
        return None

    # -- streaming -----------------------------------------------------------------------------------

    def _start_streaming(self) -> None:
        self.streaming = True
        if self._stream_task is None or self._stream_task.done():
            self._stream_task = asyncio.get_running_loop().create_task(self._stream(), name=f"fake-stream {self.name}")

    def _stop_streaming(self) -> None:
        self.streaming = False
        if self._stream_task is not None:
            self._stream_task.cancel()
            self._stream_task = None

    async def _stream(self) -> None:
        """Produce packets on the sensor's own clock: each one when its last sample has been taken."""
        next_t_us = float(self.sensor_clock_us())  # sensor time of the next sample to take
        while self.streaming:
            # Rate and samples per packet are read per packet: a SET_SAMPLE_RATE takes effect at a
            # packet boundary (PROTOCOL.md 5.1).
            period_us = 1e6 / self.rate_hz
            n = self.samples_per_packet
            now_us = self.sensor_clock_us()
            while next_t_us + (n - 1) * period_us <= now_us:
                self._produce(round(next_t_us), n)
                next_t_us += n * period_us
            wait_us = next_t_us + (n - 1) * period_us - now_us
            await asyncio.sleep(wait_us * 1e-6 / (1.0 + self.clock_drift_ppm * 1e-6) + 1e-4)

    def _produce(self, t_first_us: int, n: int) -> None:
        acc, gyr, mag = self.source.take(n, self.rate_hz)
        payload = encode_packet(
            seq=self.seq, t_first_us=t_first_us % U32, rate_code=self.rate_code, range_code=self.range_code,
            acc_m_s2=acc, gyr_rad_s=gyr, mag_uT=mag if self.has_mag else None,
        )
        record = SentPacket(self.seq, t_first_us % U32, payload, delivered=False, boot=self.boot)
        self.packets.append(record)
        self.seq = (self.seq + 1) & 0xFFFF
        if self._lose_next > 0 or (self.loss > 0 and self._rng.random() < self.loss):
            self._lose_next = max(0, self._lose_next - 1)
            record.reason = "lost"
            return
        record.delivered = self._notify(DATA_CHAR_UUID, payload, record)
        if record.delivered and self._duplicate_next > 0:
            self._duplicate_next -= 1
            record.duplicated = True
            self._notify(DATA_CHAR_UUID, payload)

    async def close(self) -> None:
        """Stop the streaming task (end of a test or of ``--fake-sensors``)."""
        task = self._stream_task
        self._stop_streaming()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)


# --------------------------------------------------------------------------------------------------
# bleak platform backends
# --------------------------------------------------------------------------------------------------


class FakeRadio:
    """The air around the hub: fake peripherals plus bleak backends that reach them.

    It enforces what BlueZ enforces: a second connect while one is in progress fails with
    ``org.bluez.Error.InProgress`` (bleak #1036). ``max_concurrent_connects`` and ``connect_log``
    let tests check that the manager serialises connects.
    """

    def __init__(self, peripherals: Iterable[FakePeripheral] = (),
                 other_devices: Sequence[tuple[str, str]] = (("C4:7C:8D:00:00:01", "Polar H10"),)) -> None:
        self.peripherals: dict[str, FakePeripheral] = {}
        self.other_devices = list(other_devices)
        """(address, name) of devices in range that do not advertise the sensorhub service."""
        self.connecting = 0
        self.max_concurrent_connects = 0
        self.connect_log: list[tuple[str, float, float, bool]] = []
        """(address, start, end, succeeded) of every connect attempt, host monotonic seconds."""
        self.scans = 0
        for p in peripherals:
            self.add(p)
        radio = self
        self.scanner_backend: type[BaseBleakScanner] = type(
            "FakeBleakScannerBackend", (FakeBleakScannerBackend,), {"radio": radio})
        self.client_backend: type[BaseBleakClient] = type(
            "FakeBleakClientBackend", (FakeBleakClientBackend,), {"radio": radio})

    def add(self, peripheral: FakePeripheral) -> FakePeripheral:
        self.peripherals[peripheral.address] = peripheral
        return peripheral

    def backend(self, **kwargs: Any) -> BleakBleBackend:
        """The production :class:`BleakBleBackend` wired to this radio instead of the OS's stack."""
        return BleakBleBackend(scanner_backend=self.scanner_backend, client_backend=self.client_backend, **kwargs)

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.peripherals.values()))


class FakeBleakScannerBackend(BaseBleakScanner):
    """bleak scanner backend: reports every advertising fake peripheral once per scan."""

    radio: ClassVar[FakeRadio]

    def __init__(self, detection_callback: AdvertisementDataCallback | None, service_uuids: list[str] | None,
                 scanning_mode: str = "active", **kwargs: Any) -> None:
        super().__init__(detection_callback, service_uuids)

    async def start(self) -> None:
        self.seen_devices = {}
        self.radio.scans += 1
        adverts: list[tuple[str, str, Any, list[str]]] = [
            (p.address, p.name, p, [SERVICE_UUID]) for p in self.radio.peripherals.values() if p.advertising
        ]
        adverts += [(address, name, None, ["0000180d-0000-1000-8000-00805f9b34fb"])
                    for address, name in self.radio.other_devices]
        for address, name, details, uuids in adverts:
            if not self.is_allowed_uuid(uuids):
                continue
            adv = AdvertisementData(name, {}, {}, uuids, None, -60, ())
            device = self.create_or_update_device(address, address, name, details, adv)
            self.call_detection_callbacks(device, adv)

    async def stop(self) -> None:
        return None


class FakeBleakClientBackend(BaseBleakClient):
    """bleak client backend: one connection to one :class:`FakePeripheral` through the radio."""

    radio: ClassVar[FakeRadio]
    _CHAR_PROPS: ClassVar[dict[str, list[str]]] = {
        DATA_CHAR_UUID: ["notify"],
        CONTROL_CHAR_UUID: ["write", "notify"],
        INFO_CHAR_UUID: ["read"],
    }

    def __init__(self, address_or_ble_device: BLEDevice | str, *, disconnected_callback: Callable[[], None] | None,
                 timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        details = address_or_ble_device.details if isinstance(address_or_ble_device, BLEDevice) else None
        self.peripheral: FakePeripheral | None = (
            details if isinstance(details, FakePeripheral) else self.radio.peripherals.get(self.address)
        )

    # -- connection ----------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.peripheral.name if self.peripheral else self.address

    @property
    def mtu_size(self) -> int:
        return self.peripheral.mtu if self.peripheral else 23

    @property
    def is_connected(self) -> bool:
        return self.peripheral is not None and self.peripheral._client is self

    def _peripheral(self) -> FakePeripheral:
        if self.peripheral is None or not self.is_connected:
            raise BleakError(f"{self.address}: not connected")
        return self.peripheral

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        radio = self.radio
        if radio.connecting:
            raise BleakDBusError(BLUEZ_IN_PROGRESS, ["Operation already in progress"])
        radio.connecting += 1
        radio.max_concurrent_connects = max(radio.max_concurrent_connects, radio.connecting)
        start = time.monotonic()
        ok = False
        try:
            p = self.peripheral
            await asyncio.sleep(p.connect_delay_s if p is not None else 0.05)
            if p is None or not p.available:
                raise BleakDeviceNotFoundError(self.address, f"Device with address {self.address} was not found.")
            p._attach(self)
            self.services = self._build_services()
            ok = True
        finally:
            radio.connecting -= 1
            radio.connect_log.append((self.address, start, time.monotonic(), ok))

    def _build_services(self) -> BleakGATTServiceCollection:
        services = BleakGATTServiceCollection()
        service = BleakGATTService(None, 1, SERVICE_UUID)
        services.add_service(service)
        mtu = self.mtu_size
        for i, (uuid, props) in enumerate(self._CHAR_PROPS.items()):
            char = BleakGATTCharacteristic(None, 2 + 2 * i, uuid, props, lambda: mtu - 3, service)  # type: ignore[arg-type]
            services.add_characteristic(char)
        return services

    async def disconnect(self) -> None:
        if self.peripheral is not None:
            self.peripheral._detach(self)

    def notify_disconnected(self) -> None:
        """The peripheral dropped us: tell bleak's user, as the OS stack would, from the event loop."""
        if self._disconnected_callback is not None:
            asyncio.get_running_loop().call_soon(self._disconnected_callback)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def unpair(self) -> None:
        return None

    # -- GATT ----------------------------------------------------------------------------------------

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False,
                             **kwargs: Any) -> bytearray:
        p = self._peripheral()
        await asyncio.sleep(p.link_latency_s)
        value = self._peripheral()._read(characteristic.uuid)
        await asyncio.sleep(p.link_latency_s)
        return bytearray(value)

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any, response: bool) -> None:
        p = self._peripheral()
        await asyncio.sleep(p.link_latency_s)
        self._peripheral()._write(characteristic.uuid, bytes(data))
        if response:
            await asyncio.sleep(p.link_latency_s)

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: Callable[[bytearray], None],
                           **kwargs: Any) -> None:
        p = self._peripheral()
        await asyncio.sleep(p.link_latency_s)
        self._peripheral()._subscribe(self, characteristic.uuid, callback)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._peripheral()._unsubscribe(characteristic.uuid)

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False,
                                   **kwargs: Any) -> bytearray:
        raise BleakError(f"{self.address}: the fake peripheral has no descriptors")

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        raise BleakError(f"{self.address}: the fake peripheral has no descriptors")


# --------------------------------------------------------------------------------------------------
# A ready-made pair of sensors for ``--fake-sensors``
# --------------------------------------------------------------------------------------------------

FAKE_PELVIS_ID: Final = "5e4500000001"
FAKE_THIGH_ID: Final = "5e4500000002"


def simulated_radio(*, side: str = "right", drill: str = "seated_rotation", seed: int = 0, rate_code: int = 3,
                    clock: Callable[[], float] = time.monotonic) -> tuple[FakeRadio, dict[str, tuple[str, str | None]]]:
    """Two fake sensors (pelvis, thigh on ``side``) streaming a simulated session's IMU readings.

    Returns the radio and each fake sensor's default role ``{sensor_id: (segment, side)}``, used when
    the assignment store says nothing about them. The sensors' clocks have realistic offsets and
    drifts (±20 ppm), so the hub's clock mapping has work to do.
    """
    from sensorhub.sim import SimConfig, simulate

    session = simulate(SimConfig(drill=drill, side=side, seed=seed, reps=3, compensation_reps=(2,),
                                 rates_hz=(SAMPLE_RATES_HZ[rate_code],) * 2))
    pelvis = FakePeripheral(FAKE_PELVIS_ID, name="sensorhub-fake-pelvis", rate_code=rate_code,
                            source=ArraySource.from_simulated(session.sensors["pelvis"]),
                            clock_offset_us=1_000_000, clock_drift_ppm=20.0, battery_percent=91, seed=seed, clock=clock)
    thigh = FakePeripheral(FAKE_THIGH_ID, name="sensorhub-fake-thigh", rate_code=rate_code,
                           source=ArraySource.from_simulated(session.sensors["thigh"]),
                           clock_offset_us=2_500_000_000, clock_drift_ppm=-15.0, battery_percent=64, seed=seed + 1,
                           clock=clock)
    roles: dict[str, tuple[str, str | None]] = {FAKE_PELVIS_ID: ("pelvis", None), FAKE_THIGH_ID: ("thigh", side)}
    return FakeRadio([pelvis, thigh]), roles
