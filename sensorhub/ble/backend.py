"""The narrow interface between the BLE manager and a BLE stack, and its implementation on bleak.

The manager needs very little of a BLE library: one scan that returns the devices advertising the
sensorhub service, and per connection a client with the subset of :class:`bleak.BleakClient` listed
in :class:`ClientLike`. :class:`BleBackend` is that interface; :class:`BleakBleBackend` implements it
with bleak and is what ``sensorhub record`` runs.

Tests do not replace this class. They hand bleak itself a fake *platform backend* (bleak 3 accepts
``backend=`` for both :class:`~bleak.BleakScanner` and :class:`~bleak.BleakClient`, see
:mod:`sensorhub.ble.fake`), so the code path under test is exactly the one a user runs, down to
bleak's characteristic resolution and callback wrapping.

This module does no decoding; it knows only the service UUID.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from bleak import BleakClient, BleakScanner
from bleak.args.bluez import BlueZClientArgs, BlueZNotifyArgs, BlueZScannerArgs
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import BleakError

from sensorhub.ble.errors import BleError
from sensorhub.protocol import SERVICE_UUID

log = logging.getLogger(__name__)

NotifyCallback = Callable[[Any, bytearray], None]
"""``callback(sender, data)`` as bleak calls it; ``sender`` is the characteristic."""


@dataclass(frozen=True)
class FoundSensor:
    """A device seen in the scan that advertises the sensorhub service."""

    device: BLEDevice
    """Connect by this object, not by address: an address makes bleak scan again per client (bleak #618)."""
    address: str
    name: str | None
    rssi_dbm: int | None = None
    service_uuids: tuple[str, ...] = field(default_factory=tuple)


@runtime_checkable
class ClientLike(Protocol):
    """The subset of :class:`bleak.BleakClient` the manager uses (characteristics given by UUID)."""

    @property
    def is_connected(self) -> bool: ...

    @property
    def mtu_size(self) -> int: ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def start_notify(self, char_specifier: str, callback: NotifyCallback) -> None: ...

    async def stop_notify(self, char_specifier: str) -> None: ...

    async def write_gatt_char(self, char_specifier: str, data: bytes, response: bool = ...) -> None: ...

    async def read_gatt_char(self, char_specifier: str) -> bytearray: ...


class BleBackend(Protocol):
    """What the manager needs from a BLE stack: one scan, and a fresh client per connection attempt."""

    async def scan(self, timeout_s: float) -> list[FoundSensor]:
        """Devices advertising :data:`sensorhub.protocol.SERVICE_UUID` seen within ``timeout_s``."""
        ...

    def client_for(self, device: BLEDevice, disconnected_callback: Callable[[Any], None]) -> ClientLike:
        """A new, unconnected client for ``device``; ``disconnected_callback(client)`` on a drop."""
        ...


class BleakBleBackend:
    """:class:`BleBackend` on bleak.

    ``scanner_backend`` / ``client_backend`` are bleak platform backends; ``None`` (the default, what
    users run) lets bleak pick the OS's (BlueZ on Linux). ``use_start_notify`` asks BlueZ for
    ``StartNotify`` instead of ``AcquireNotify``, which some peripherals need (bleak #1885).
    """

    def __init__(
        self,
        *,
        scanner_backend: type[BaseBleakScanner] | None = None,
        client_backend: type[BaseBleakClient] | None = None,
        connect_timeout_s: float = 20.0,
        use_start_notify: bool = False,
        adapter: str | None = None,
    ) -> None:
        self._scanner_backend = scanner_backend
        self._client_backend = client_backend
        self._connect_timeout_s = connect_timeout_s
        self._scanner_bluez: BlueZScannerArgs = {} if adapter is None else {"adapter": adapter}
        self._client_bluez: BlueZClientArgs = {} if adapter is None else {"adapter": adapter}
        self._notify_bluez: BlueZNotifyArgs = {"use_start_notify": True} if use_start_notify else {}

    async def scan(self, timeout_s: float) -> list[FoundSensor]:
        kwargs: BleakScanner.ExtraArgs = {"service_uuids": [SERVICE_UUID], "bluez": self._scanner_bluez}
        if self._scanner_backend is not None:
            kwargs["backend"] = self._scanner_backend
        try:
            found = await BleakScanner.discover(timeout_s, return_adv=True, **kwargs)
        except (BleakError, OSError) as exc:
            raise BleError(
                f"BLE scan failed ({type(exc).__name__}: {exc}); is bluetoothd running, the adapter powered "
                "on (bluetoothctl power on) and the system D-Bus reachable?"
            ) from exc
        sensors: list[FoundSensor] = []
        for device, adv in found.values():
            uuids = tuple(u.lower() for u in adv.service_uuids)
            # The OS filter is best effort (another app may be scanning too); check the advertisement.
            if SERVICE_UUID not in uuids:
                continue
            sensors.append(FoundSensor(device, device.address, adv.local_name or device.name, adv.rssi, uuids))
        sensors.sort(key=lambda s: s.address)
        log.info("scan (%.1f s): %d sensorhub sensor(s) of %d device(s)", timeout_s, len(sensors), len(found))
        return sensors

    def client_for(self, device: BLEDevice, disconnected_callback: Callable[[Any], None]) -> ClientLike:
        client = BleakClient(
            device,
            disconnected_callback=disconnected_callback,
            timeout=self._connect_timeout_s,
            bluez=self._client_bluez,
            backend=self._client_backend,
        )
        return _BleakClientAdapter(client, self._notify_bluez)


class _BleakClientAdapter:
    """Passes :class:`ClientLike` calls to a :class:`BleakClient`, adding the BlueZ notify option."""

    def __init__(self, client: BleakClient, notify_bluez: BlueZNotifyArgs) -> None:
        self.client = client
        self._notify_bluez = notify_bluez

    @property
    def is_connected(self) -> bool:
        return self.client.is_connected

    @property
    def mtu_size(self) -> int:
        return self.client.mtu_size

    async def connect(self) -> None:
        await self.client.connect()

    async def disconnect(self) -> None:
        await self.client.disconnect()

    async def start_notify(self, char_specifier: str, callback: NotifyCallback) -> None:
        await self.client.start_notify(char_specifier, callback, bluez=self._notify_bluez)

    async def stop_notify(self, char_specifier: str) -> None:
        await self.client.stop_notify(char_specifier)

    async def write_gatt_char(self, char_specifier: str, data: bytes, response: bool = True) -> None:
        await self.client.write_gatt_char(char_specifier, data, response=response)

    async def read_gatt_char(self, char_specifier: str) -> bytearray:
        return await self.client.read_gatt_char(char_specifier)

    def __repr__(self) -> str:
        return f"<BleakClient {self.client.address} via {self.client.backend_id}>"
