"""The BLE manager: scan once, connect sensors one at a time, stream them in parallel, keep them connected.

Connection model (docs/ble.md explains the why):

* **One scan**, filtered on the sensorhub service UUID; connections use the scan's ``BLEDevice``
  objects (connecting by address makes bleak scan again per client, bleak #618).
* **One connect at a time** under an :class:`asyncio.Lock` (overlapping connects make BlueZ answer
  ``org.bluez.Error.InProgress``, bleak #1036). Everything after the connect (info read,
  subscriptions, time sync, streaming) runs in parallel across sensors.
* **The data callback only stamps and enqueues**: it reads the session clock, wraps the payload in a
  :class:`~sensorhub.notification.Notification` and puts it on a bounded :class:`asyncio.Queue`
  without waiting. A full queue drops the notification and counts it; the callback never
  blocks and never decodes. Decoding and stream assembly (:mod:`sensorhub.ingest`) happen in the
  consumer, which reads :attr:`BleManager.notifications`.
* **One supervisor task per sensor** owns its link. When the link drops it emits a ``lost`` event,
  then reconnects with exponential backoff with jitter (capped; :class:`BackoffPolicy`, run by
  tenacity) using a **fresh client** each attempt (bleak #762), re-subscribes, re-runs the time
  sync, re-sends the streaming configuration, emits ``back``, and the session carries on. Packets
  the sensor produced meanwhile never arrive, so the ingest sees a sequence gap: loss is counted and
  ``gap_before`` marks the place. Nothing is bridged.
* On each connect: read the info record (id, firmware, battery, codes), subscribe to control then
  data, a time-sync burst (NTP-style; the minimum-round-trip sample is kept), SET_SAMPLE_RATE /
  SET_RANGES when configured, START_STREAMING (firmware_protocol/PROTOCOL.md 5.2). While streaming,
  one time-sync round trip every ``time_sync_period_s`` and an info read for the battery every
  ``info_period_s``; a sensor silent for ``silence_timeout_s`` is disconnected and reconnected.

Callbacks run on the event loop thread (bleak delivers notifications there on every backend), so
the queue needs no extra locking. This module never decodes data packets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Self

from bleak.exc import BleakError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
)
from tenacity.wait import wait_base, wait_exponential, wait_random

from sensorhub.ble.backend import BleBackend, ClientLike, FoundSensor
from sensorhub.ble.errors import (
    BleError,
    CommandRefusedError,
    NoSensorsFoundError,
    ReplyTimeoutError,
    TimeSyncError,
)
from sensorhub.errors import ProtocolError
from sensorhub.notification import Notification
from sensorhub.protocol import (
    CONTROL_CHAR_UUID,
    DATA_CHAR_UUID,
    INFO_CHAR_UUID,
    RANGE_CODES,
    SAMPLE_RATES_HZ,
    Ack,
    ErrorReply,
    Opcode,
    SensorInfo,
    SetRanges,
    SetSampleRate,
    StartStreaming,
    StopStreaming,
    TimeSyncPoint,
    TimeSyncReply,
    TimeSyncRequest,
    decode_control,
    decode_info,
    encode_control,
    time_sync_point,
)

log = logging.getLogger(__name__)

__all__ = [
    "BackoffPolicy",
    "BleManager",
    "ManagerConfig",
    "SensorEvent",
    "SensorStatus",
    "TimeSyncResult",
]

Command = StartStreaming | StopStreaming | SetSampleRate | SetRanges
EventKind = Literal["found", "connected", "lost", "back", "ignored", "failed", "time_sync", "battery", "stopped"]

# Failures after which another connection attempt may succeed. A ProtocolError (e.g. another
# protocol version in the info record) or a refused command (e.g. a rate the sensor cannot do) is
# not among them: retrying cannot fix it, so the sensor is given up with that message.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    BleakError, ReplyTimeoutError, TimeSyncError, TimeoutError, OSError, EOFError)
LINK_ERRORS: tuple[type[BaseException], ...] = (*RETRYABLE_ERRORS, BleError, ProtocolError)
"""Every error a link can end in: retryable ones, refusals and malformed replies."""


@dataclass(frozen=True)
class BackoffPolicy:
    """Reconnect delays: ``min(initial_s · factor^(k-1), max_s) + U(0, jitter_s)`` before attempt k+1.

    The jitter keeps sensors that dropped together (the athlete walked out of range) from retrying in
    lockstep; the connect lock serialises them anyway.
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter_s: float = 0.5
    max_attempts: int | None = None
    """Give up on a sensor after this many failed attempts in a row (None: keep trying)."""

    def wait(self) -> wait_base:
        """The tenacity wait strategy: exponential growth capped at ``max_s``, plus uniform jitter."""
        return wait_exponential(multiplier=self.initial_s, max=self.max_s, exp_base=self.factor) + wait_random(
            0.0, self.jitter_s)


@dataclass(frozen=True)
class ManagerConfig:
    """Tuning of :class:`BleManager`; times in seconds."""

    scan_timeout_s: float = 5.0
    queue_size: int = 8192
    """Notifications waiting for the consumer; beyond this they are dropped and counted (80 s of 2 sensors at 50/s)."""
    rate_code: int | None = None
    """Sample-rate code sent on every (re)connect; None keeps the sensor's."""
    range_code: int | None = None
    """Full-scale range code sent on every (re)connect; None keeps the sensor's."""
    time_sync_rounds: int = 8
    time_sync_period_s: float | None = 10.0
    reply_timeout_s: float = 2.0
    connect_timeout_s: float = 20.0
    info_period_s: float | None = 60.0
    silence_timeout_s: float | None = 5.0
    """A streaming sensor that sends nothing for this long is disconnected and reconnected."""
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)

    def __post_init__(self) -> None:
        if self.queue_size < 1 or self.time_sync_rounds < 1 or self.reply_timeout_s <= 0:
            raise ValueError("ManagerConfig: queue_size and time_sync_rounds must be >= 1, reply_timeout_s > 0")
        if self.rate_code is not None and self.rate_code not in SAMPLE_RATES_HZ:
            raise ValueError(f"ManagerConfig: rate_code {self.rate_code} is not one of {sorted(SAMPLE_RATES_HZ)}")
        if self.range_code is not None and self.range_code not in RANGE_CODES:
            raise ValueError(f"ManagerConfig: range_code {self.range_code} is not one of {sorted(RANGE_CODES)}")


@dataclass(frozen=True)
class TimeSyncResult:
    """Best (minimum round trip) sample of a time-sync exchange."""

    offset_us: float
    """Sensor µs counter minus host session clock in µs at the same instant (the counter wraps at 2³²)."""
    round_trip_us: int
    """The offset is uncertain by at most half of this."""
    point: TimeSyncPoint
    rounds: int
    t_host_s: float


@dataclass
class SensorStatus:
    """What the hub knows about one sensor (JSON-ready through :meth:`to_json`)."""

    address: str
    name: str | None
    rssi_dbm: int | None
    state: Literal["found", "connecting", "connected", "reconnecting", "ignored", "failed", "stopped"] = "found"
    sensor_id: str | None = None
    firmware: str | None = None
    has_mag: bool | None = None
    battery_percent: int | None = None
    rate_hz: float | None = None
    range_code: int | None = None
    mtu: int | None = None
    last_seen_s: float | None = None
    """Session-clock time of the last data notification."""
    notifications: int = 0
    queue_drops: int = 0
    reconnects: int = 0
    time_sync: TimeSyncResult | None = None
    last_error: str | None = None

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["connected"] = self.connected
        if self.time_sync is not None:
            out["time_sync"] = {"offset_us": self.time_sync.offset_us, "round_trip_us": self.time_sync.round_trip_us,
                                "t_host_s": self.time_sync.t_host_s}
        return out


@dataclass(frozen=True)
class SensorEvent:
    """A change of a sensor's link, in session-clock time."""

    kind: EventKind
    address: str
    sensor_id: str | None
    t_host_s: float
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    """Numbers behind the detail (time_sync: ``offset_us``, ``round_trip_us``; battery: ``battery_percent``)."""


def _session_clock() -> Callable[[], float]:
    """Monotonic seconds since this call."""
    t0 = time.monotonic()

    def clock() -> float:
        return time.monotonic() - t0

    return clock


class _NotWanted(Exception):
    """The connected sensor is not one of the wanted ids."""


class _Link:
    """One sensor's connection state, owned by its supervisor task."""

    def __init__(self, found: FoundSensor) -> None:
        self.found = found
        self.status = SensorStatus(found.address, found.name, found.rssi_dbm)
        self.info: SensorInfo | None = None
        self.client: ClientLike | None = None
        self.lost = asyncio.Event()
        self.settled = asyncio.Event()
        """Set once the first connect succeeded, or the sensor was ignored or given up."""
        self.replies: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.command_lock = asyncio.Lock()
        self.token = 0
        # What the hub wants from this sensor; re-sent on every reconnect.
        self.want_streaming = True
        self.rate_code: int | None = None
        self.range_code: int | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        sid = self.status.sensor_id
        return f"{self.found.name or 'sensor'} {self.found.address}" + (f" ({sid})" if sid else "")


class BleManager:
    """Scans, connects and supervises sensorhub sensors; notifications come out of :attr:`notifications`.

    ``clock`` is the session clock in seconds (default: monotonic seconds since the manager was
    made); every :class:`Notification` is stamped with it. ``on_event`` receives every
    :class:`SensorEvent` (also kept in :attr:`event_log`). Use as ``async with BleManager(...) as m``
    or call :meth:`stop`.
    """

    def __init__(
        self,
        backend: BleBackend,
        config: ManagerConfig | None = None,
        *,
        clock: Callable[[], float] | None = None,
        on_event: Callable[[SensorEvent], None] | None = None,
    ) -> None:
        self.backend = backend
        self.config = config or ManagerConfig()
        self.clock = clock or _session_clock()
        self.on_event = on_event
        self.notifications: asyncio.Queue[Notification] = asyncio.Queue(maxsize=self.config.queue_size)
        self.event_log: deque[SensorEvent] = deque(maxlen=1000)
        self.queue_drops = 0
        self._connect_lock = asyncio.Lock()
        self._links: dict[str, _Link] = {}
        self._stopping = False
        self._wanted: frozenset[str] | None = None

    # -- public API ----------------------------------------------------------------------------------

    async def scan(self) -> list[FoundSensor]:
        """One scan for devices advertising the sensorhub service (under the connect lock)."""
        async with self._connect_lock:
            found = await self.backend.scan(self.config.scan_timeout_s)
        for f in found:
            self._emit("found", f.address, None, f.name or "")
        return found

    async def start(self, sensors: Sequence[FoundSensor] | None = None, *,
                    wanted_ids: Collection[str] | None = None) -> list[FoundSensor]:
        """Scan (unless ``sensors`` are given) and start one supervisor per sensor; returns the sensors.

        ``wanted_ids``: sensor ids (from the info record) to keep; any other sensor is disconnected
        after its info was read and marked ``ignored``. Raises :class:`NoSensorsFoundError` when
        the scan finds nothing.
        """
        if self._stopping:
            raise BleError("BleManager.start: the manager was stopped; make a new one")
        self._wanted = None if wanted_ids is None else frozenset(wanted_ids)
        found = list(sensors) if sensors is not None else await self.scan()
        if not found:
            raise NoSensorsFoundError(
                f"no sensor advertising the sensorhub service found in a {self.config.scan_timeout_s:g} s scan "
                "(are the sensors on, charged and not connected to another device?)"
            )
        for f in found:
            if f.address in self._links:
                continue
            link = self._links[f.address] = _Link(f)
            link.rate_code, link.range_code = self.config.rate_code, self.config.range_code
            link.task = asyncio.get_running_loop().create_task(self._supervise(link), name=f"ble-supervisor {f.address}")
        return found

    async def wait_connected(self, timeout_s: float | None = None) -> list[str]:
        """Wait until every sensor connected once (or was ignored or given up); returns connected ids."""
        waits = [link.settled.wait() for link in self._links.values()]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), timeout_s)
        return [link.status.sensor_id for link in self._links.values()
                if link.status.connected and link.status.sensor_id is not None]

    def status(self) -> list[SensorStatus]:
        """A snapshot of every found sensor's status, sorted by address."""
        return [replace(link.status) for _, link in sorted(self._links.items())]

    def sensor_info(self) -> dict[str, SensorInfo]:
        """Info records of the sensors that connected and were kept, by sensor id."""
        return {link.info.sensor_id: link.info for link in self._links.values()
                if link.info is not None and link.status.state not in ("ignored", "failed")}

    async def send_command(self, sensor_id: str, command: Command) -> Ack:
        """Send a control command to a connected sensor and wait for its ACK.

        Raises :class:`CommandRefusedError` on an ERROR reply and :class:`ReplyTimeoutError` without
        a reply. What the command sets (streaming on/off, rate, ranges) is remembered and re-sent
        after a reconnect.
        """
        link = self._link_by_id(sensor_id)
        if link.client is None or not link.status.connected:
            raise BleError(f"{link.label}: not connected; cannot send {type(command).__name__}")
        ack = await self._command(link, link.client, command)
        if isinstance(command, (StartStreaming, StopStreaming)):
            link.want_streaming = isinstance(command, StartStreaming)
        elif isinstance(command, SetSampleRate):
            link.rate_code = command.rate_code
            link.status.rate_hz = SAMPLE_RATES_HZ[command.rate_code]
        elif isinstance(command, SetRanges):
            link.range_code = link.status.range_code = command.range_code
        return ack

    async def time_sync(self, sensor_id: str, rounds: int | None = None) -> TimeSyncResult:
        """Run a time-sync exchange now with a connected sensor."""
        link = self._link_by_id(sensor_id)
        if link.client is None or not link.status.connected:
            raise BleError(f"{link.label}: not connected; cannot time-sync")
        return await self._time_sync(link, link.client, rounds or self.config.time_sync_rounds)

    async def stop(self) -> None:
        """Stop streaming, unsubscribe and disconnect every sensor; idempotent."""
        if self._stopping:
            return
        self._stopping = True
        tasks = [link.task for link in self._links.values() if link.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(self._close_link(link) for link in self._links.values()), return_exceptions=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- supervisor ----------------------------------------------------------------------------------

    async def _supervise(self, link: _Link) -> None:
        first = True
        try:
            while not self._stopping:
                try:
                    await self._connect_with_backoff(link, first)
                except _NotWanted:
                    link.status.state = "ignored"
                    self._emit("ignored", link.found.address, link.status.sensor_id, "not among the wanted sensors")
                    return
                except LINK_ERRORS as exc:
                    link.status.state = "failed"
                    link.status.last_error = str(exc)
                    log.error("%s: giving up: %s", link.label, exc)
                    self._emit("failed", link.found.address, link.status.sensor_id, str(exc))
                    return
                finally:
                    link.settled.set()
                if first:
                    self._emit("connected", link.found.address, link.status.sensor_id)
                else:
                    link.status.reconnects += 1
                    self._emit("back", link.found.address, link.status.sensor_id,
                               f"reconnect {link.status.reconnects}")
                first = False
                reason = await self._watch(link)
                if self._stopping:
                    return
                link.status.state = "reconnecting"
                link.status.last_error = reason
                log.warning("%s: link lost (%s); reconnecting", link.label, reason)
                self._emit("lost", link.found.address, link.status.sensor_id, reason)
                await self._discard_client(link)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not silently kill one sensor's supervision
            log.exception("%s: supervisor crashed", link.label)
            link.status.state = "failed"
            link.settled.set()

    async def _connect_with_backoff(self, link: _Link, first: bool) -> None:
        policy = self.config.backoff

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            link.status.last_error = str(exc)
            log.info("%s: connect attempt %d failed (%s: %s); next in %.2f s", link.label, state.attempt_number,
                     type(exc).__name__, exc, state.upcoming_sleep)

        retrying = AsyncRetrying(
            wait=policy.wait(),
            stop=stop_never if policy.max_attempts is None else stop_after_attempt(policy.max_attempts),
            retry=retry_if_exception_type(RETRYABLE_ERRORS),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._connect_once(link, first)

    async def _connect_once(self, link: _Link, first: bool) -> None:
        """One attempt with a fresh client: connect (serialised), set up, start streaming."""
        lost = asyncio.Event()
        client = self.backend.client_for(link.found.device, lambda _client: lost.set())
        try:
            async with self._connect_lock:
                link.status.state = "connecting"
                log.debug("%s: connecting", link.label)
                await asyncio.wait_for(client.connect(), self.config.connect_timeout_s)
            await self._setup(link, client, first)
        except BaseException:
            link.status.state = "reconnecting" if not first else "found"
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise
        link.client = client
        link.lost = lost
        link.status.state = "connected"
        log.info("%s: streaming (mtu %s, offset %.0f µs ± %.0f µs)", link.label, link.status.mtu,
                 link.status.time_sync.offset_us if link.status.time_sync else math.nan,
                 link.status.time_sync.round_trip_us / 2 if link.status.time_sync else math.nan)

    async def _setup(self, link: _Link, client: ClientLike, first: bool) -> None:
        info = await self._read_info(link, client)
        if first and self._wanted is not None and info.sensor_id not in self._wanted:
            link.status.sensor_id = info.sensor_id
            raise _NotWanted(info.sensor_id)
        if link.info is not None and info.sensor_id != link.info.sensor_id:
            # Another sensor now answers at this address: never file its data under the first one's id.
            raise BleError(f"{link.label}: the device now reports sensor id {info.sensor_id}; "
                           f"expected {link.info.sensor_id}")
        sensor_id = info.sensor_id
        link.info = info
        link.status.sensor_id = sensor_id
        link.status.mtu = client.mtu_size
        # Stale replies from the previous connection must not answer this one's commands.
        while not link.replies.empty():
            link.replies.get_nowait()
        await client.start_notify(CONTROL_CHAR_UUID, self._control_callback(link))
        await client.start_notify(DATA_CHAR_UUID, self._data_callback(link, sensor_id))
        await self._time_sync(link, client, self.config.time_sync_rounds)
        if link.rate_code is not None:
            await self._command(link, client, SetSampleRate(link.rate_code))
            link.status.rate_hz = SAMPLE_RATES_HZ[link.rate_code]
        if link.range_code is not None:
            await self._command(link, client, SetRanges(link.range_code))
            link.status.range_code = link.range_code
        if link.want_streaming:
            await self._command(link, client, StartStreaming())

    async def _watch(self, link: _Link) -> str:
        """Keep a connected link healthy until it drops; returns why it ended."""
        cfg = self.config
        client = link.client
        assert client is not None
        now = self.clock()
        next_sync = now + cfg.time_sync_period_s if cfg.time_sync_period_s else math.inf
        next_info = now + cfg.info_period_s if cfg.info_period_s else math.inf
        streaming_since = now
        tick_s = min(0.5, cfg.silence_timeout_s / 4) if cfg.silence_timeout_s else 0.5
        while True:
            # Wake for whatever is due first: a periodic exchange or the next health check.
            timeout_s = max(0.005, min(tick_s, next_sync - now, next_info - now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(link.lost.wait(), timeout_s)
            if link.lost.is_set():
                return "disconnected"
            if not client.is_connected:
                return "disconnected (no callback)"
            now = self.clock()
            last = link.status.last_seen_s
            if not link.want_streaming:
                streaming_since = now
            elif cfg.silence_timeout_s is not None and now - max(last or -math.inf,
                                                                  streaming_since) > cfg.silence_timeout_s:
                return f"no data for {cfg.silence_timeout_s:g} s"
            try:
                if now >= next_sync:
                    next_sync = now + (cfg.time_sync_period_s or math.inf)
                    await self._time_sync(link, client, 1)
                if now >= next_info:
                    next_info = now + (cfg.info_period_s or math.inf)
                    await self._read_info(link, client)
            except LINK_ERRORS as exc:
                log.warning("%s: periodic exchange failed: %s", link.label, exc)
                if not client.is_connected:
                    return f"disconnected ({exc})"

    # -- callbacks (event loop thread; stamp and enqueue only) ---------------------------------------

    def _data_callback(self, link: _Link, sensor_id: str) -> Callable[[Any, bytearray], None]:
        status = link.status
        queue = self.notifications
        clock = self.clock

        def on_data(_sender: Any, data: bytearray) -> None:
            t_host_s = clock()
            status.last_seen_s = t_host_s
            status.notifications += 1
            try:
                queue.put_nowait(Notification(sensor_id, t_host_s, bytes(data)))
            except asyncio.QueueFull:
                status.queue_drops += 1
                self.queue_drops += 1

        return on_data

    def _control_callback(self, link: _Link) -> Callable[[Any, bytearray], None]:
        replies = link.replies
        clock = self.clock

        def on_control(_sender: Any, data: bytearray) -> None:
            replies.put_nowait((clock(), bytes(data)))

        return on_control

    # -- control exchanges ---------------------------------------------------------------------------

    async def _read_info(self, link: _Link, client: ClientLike) -> SensorInfo:
        info = decode_info(await asyncio.wait_for(client.read_gatt_char(INFO_CHAR_UUID), self.config.reply_timeout_s))
        s = link.status
        if s.firmware is not None and info.battery_percent != s.battery_percent:
            self._emit("battery", link.found.address, s.sensor_id, f"battery {info.battery_percent} %",
                       battery_percent=info.battery_percent)
        s.firmware = info.firmware_version_str
        s.has_mag = info.has_mag
        s.battery_percent = info.battery_percent
        s.rate_hz = info.sample_rate_hz
        s.range_code = info.range_code
        return info

    async def _await_reply(self, link: _Link, accept: Callable[[Any], bool], what: str) -> tuple[float, Any]:
        """The first decodable control reply ``accept`` takes; others (late, foreign) are skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.reply_timeout_s
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ReplyTimeoutError(f"{link.label}: no reply to {what} within {self.config.reply_timeout_s:g} s")
            try:
                t_host_s, raw = await asyncio.wait_for(link.replies.get(), remaining)
            except TimeoutError:
                continue
            try:
                msg = decode_control(raw)
            except ProtocolError as exc:
                log.warning("%s: malformed control reply %s: %s", link.label, raw.hex(), exc)
                continue
            if accept(msg):
                return t_host_s, msg

    async def _command(self, link: _Link, client: ClientLike, command: Command) -> Ack:
        payload = encode_control(command)
        opcode = payload[0]
        name = type(command).__name__
        async with link.command_lock:
            await client.write_gatt_char(CONTROL_CHAR_UUID, payload, response=True)
            _, reply = await self._await_reply(
                link, lambda m: isinstance(m, (Ack, ErrorReply)) and m.opcode == opcode, name)
        if isinstance(reply, ErrorReply):
            raise CommandRefusedError(f"{link.label}: sensor refused {name} ({payload.hex()}): {reply.error.name}")
        return reply  # type: ignore[no-any-return]

    async def _time_sync(self, link: _Link, client: ClientLike, rounds: int) -> TimeSyncResult:
        best: TimeSyncPoint | None = None
        async with link.command_lock:
            for _ in range(rounds):
                link.token = (link.token + 1) & 0xFF
                token = link.token
                t1_us = max(0, round(self.clock() * 1e6))
                await client.write_gatt_char(CONTROL_CHAR_UUID, encode_control(TimeSyncRequest(token, t1_us)),
                                             response=True)

                def answers(msg: Any, token: int = token) -> bool:
                    return (isinstance(msg, TimeSyncReply) and msg.token == token) or (
                        isinstance(msg, ErrorReply) and msg.opcode == Opcode.TIME_SYNC_REQUEST)

                try:
                    t4_s, reply = await self._await_reply(link, answers, "time-sync request")
                except ReplyTimeoutError as exc:
                    log.debug("%s", exc)
                    continue
                if isinstance(reply, ErrorReply):
                    raise CommandRefusedError(f"{link.label}: sensor refused the time-sync request: {reply.error.name}")
                point = time_sync_point(reply, round(t4_s * 1e6))
                if best is None or point.round_trip_us < best.round_trip_us:
                    best = point
        if best is None:
            raise TimeSyncError(f"{link.label}: none of {rounds} time-sync requests was answered")
        result = TimeSyncResult(best.sensor_time_us - best.host_time_us, best.round_trip_us, best, rounds, self.clock())
        link.status.time_sync = result
        self._emit("time_sync", link.found.address, link.status.sensor_id,
                   f"offset {result.offset_us:.0f} µs, round trip {result.round_trip_us} µs",
                   offset_us=result.offset_us, round_trip_us=result.round_trip_us)
        return result

    # -- teardown ------------------------------------------------------------------------------------

    async def _discard_client(self, link: _Link) -> None:
        client, link.client = link.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()

    async def _close_link(self, link: _Link) -> None:
        client = link.client
        if client is not None and client.is_connected:
            try:
                await asyncio.wait_for(self._command(link, client, StopStreaming()), self.config.reply_timeout_s)
                await client.stop_notify(DATA_CHAR_UUID)
                await client.stop_notify(CONTROL_CHAR_UUID)
            except LINK_ERRORS as exc:  # best effort: the disconnect below still runs
                log.info("%s: clean stop failed: %s", link.label, exc)
        await self._discard_client(link)
        if link.status.state not in ("ignored", "failed"):
            link.status.state = "stopped"
            self._emit("stopped", link.found.address, link.status.sensor_id)

    # -- helpers -------------------------------------------------------------------------------------

    def _link_by_id(self, sensor_id: str) -> _Link:
        for link in self._links.values():
            if link.status.sensor_id == sensor_id:
                return link
        known = sorted(s for s in (link.status.sensor_id for link in self._links.values()) if s)
        raise BleError(f"unknown sensor id {sensor_id!r}; connected sensors: {', '.join(known) or 'none'}")

    def _emit(self, kind: EventKind, address: str, sensor_id: str | None, detail: str = "", **data: Any) -> None:
        event = SensorEvent(kind, address, sensor_id, self.clock(), detail, data)
        self.event_log.append(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("on_event callback failed for %s", event)
