"""``sensorhub record``: stream the sensors over BLE into a session recording.

Scans once, connects the sensors assigned to ``--athlete`` (or, without it, every assigned sensor in
range), streams them and writes every notification, byte for byte with its receive time, into
``--out`` (the format of docs/recording-format.md). Each sensor is declared with its segment and side
from the assignment store and its rate, magnetometer and firmware from its info record. Link events
(sensor lost / back, time-sync results) are written as marks. The session ends after
``--duration`` seconds or on Ctrl-C / SIGTERM, with the file closed cleanly either way.

``--fake-sensors`` runs the same code against two fake sensors (pelvis and thigh) that stream a
simulated session through bleak's client machinery; no Bluetooth hardware is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensorhub.errors import ConfigurationError

logger = logging.getLogger(__name__)

Roles = dict[str, tuple[str, str | None]]
"""sensor_id -> (segment, side)."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "record",
        help="stream BLE sensors into a session recording",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, required=True, help="recording file to write")
    p.add_argument("--athlete", help="athlete id: record the sensors assigned to this athlete")
    p.add_argument("--drill", help="drill name stored in the recording's metadata")
    p.add_argument("--side", choices=("left", "right"),
                   help="measured side stored in the metadata (default: the side of the only thigh sensor)")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until Ctrl-C)")
    p.add_argument("--rate", type=float, metavar="HZ", help="sample rate to set on every sensor (25..400 Hz)")
    p.add_argument("--scan-timeout", type=float, metavar="S",
                   help="scan duration (default 5 s; 0.3 s with --fake-sensors)")
    p.add_argument("--connect-timeout", type=float, default=30.0, metavar="S",
                   help="give up if no sensor has connected after S seconds (default 30)")
    p.add_argument("--fake-sensors", action="store_true",
                   help="record two fake sensors streaming a simulated session (no Bluetooth needed)")
    p.add_argument("--force", action="store_true", help="overwrite an existing recording")
    p.set_defaults(func=run)


@dataclass
class RecordResult:
    path: Path
    duration_s: float
    """From the start of streaming to the end of the recording."""
    notifications: dict[str, int]
    summary: dict[str, Any]
    status: str


def run(args: argparse.Namespace) -> int:
    from sensorhub.protocol import rate_code_for_hz

    if args.out.exists() and not args.force:
        raise ConfigurationError(f"{args.out} exists; use --force to overwrite it")
    if args.duration is not None and args.duration <= 0:
        raise ConfigurationError(f"--duration must be > 0 s, got {args.duration}")
    try:
        rate_code = None if args.rate is None else rate_code_for_hz(args.rate)
    except ValueError as exc:
        raise ConfigurationError(f"--rate: {exc}") from None
    result = asyncio.run(record(
        args.out, athlete=args.athlete, drill=args.drill, side=args.side, duration_s=args.duration,
        rate_code=rate_code,
        scan_timeout_s=args.scan_timeout if args.scan_timeout is not None else (0.3 if args.fake_sensors else 5.0), connect_timeout_s=args.connect_timeout,
        fake_sensors=args.fake_sensors, overwrite=args.force,
    ))
    counts = ", ".join(f"{sid}: {n}" for sid, n in result.notifications.items())
    print(f"recording: {result.path} ({result.duration_s:.1f} s, {result.status}); notifications {counts}")
    for sid, s in result.summary.get("sensors", {}).items():
        print(f"  {sid} {s['role']}: {s['samples']} samples, {s['packets_lost']} packets lost, "
              f"{s['reconnects']} reconnects, {s['queue_drops']} queue drops")
    return 0


async def record(
    out: Path,
    *,
    athlete: str | None = None,
    drill: str | None = None,
    side: str | None = None,
    duration_s: float | None = None,
    rate_code: int | None = None,
    scan_timeout_s: float = 5.0,
    connect_timeout_s: float = 30.0,
    fake_sensors: bool = False,
    overwrite: bool = False,
    store_path: Path | None = None,
) -> RecordResult:
    """Scan, connect, stream into ``out`` until ``duration_s`` or a signal; the file is closed on every path."""
    # Everything the streaming path needs is imported now: importing sensorhub.ingest and
    # sensorhub.recording while streaming would stall the event loop, and with it every sensor's
    # callbacks, for about 80 ms (measured).
    import sensorhub.ingest
    import sensorhub.recording  # noqa: F401
    from sensorhub.assignments import AssignmentStore
    from sensorhub.ble import BleakBleBackend, BleManager, ManagerConfig, SensorEvent
    from sensorhub.ble.backend import BleBackend
    from sensorhub.ble.errors import BleError
    from sensorhub.ble.fake import FakeRadio, simulated_radio

    store = AssignmentStore(store_path)
    roles: Roles = {a.sensor_id: (a.segment, a.side) for a in store.list(athlete)}
    t0 = time.monotonic()

    def clock() -> float:
        return time.monotonic() - t0

    radio: FakeRadio | None = None
    backend: BleBackend
    if fake_sensors:
        radio, fake_roles = simulated_radio(side=side or "right", rate_code=rate_code if rate_code is not None else 3)
        assigned_elsewhere = {a.sensor_id for a in store.list()} - set(roles)
        for sid, role in fake_roles.items():
            if sid not in assigned_elsewhere:
                roles.setdefault(sid, role)
        backend = radio.backend()
    else:
        backend = BleakBleBackend()
    if athlete is not None and not roles:
        raise ConfigurationError(
            f"no sensors are assigned to athlete {athlete!r} (in {store.path}); assign them first "
            "(AssignmentStore.assign or the service's sensor page)"
        )

    events: list[SensorEvent] = []
    manager = BleManager(backend, ManagerConfig(scan_timeout_s=scan_timeout_s, rate_code=rate_code),
                         clock=clock, on_event=events.append)
    try:
        await manager.start(wanted_ids=set(roles) if roles else None)
        connected = await manager.wait_connected(connect_timeout_s)
        if not connected:
            raise BleError(f"no sensor connected within {connect_timeout_s:g} s: "
                           + "; ".join(f"{s.address}: {s.state} {s.last_error or ''}" for s in manager.status()))
        unassigned = [sid for sid in connected if sid not in roles]
        if unassigned:
            raise ConfigurationError(
                "sensors in range are not assigned to a body segment: " + ", ".join(unassigned)
                + f"; assign them (store {store.path}) and record again"
            )
        missing = sorted(set(roles) - set(connected)) if athlete is not None else []
        for sid in missing:
            logger.warning("assigned sensor %s (%s) did not connect; recording without it", sid, roles[sid])
        return await _stream_to_file(out, manager, connected, roles, events, athlete=athlete, drill=drill, side=side,
                                     duration_s=duration_s, fake=fake_sensors, overwrite=overwrite, clock=clock)
    finally:
        await manager.stop()
        if radio is not None:
            await radio.close()


class _Sink:
    """The consumer side: every notification of a session sensor goes to the file and to the ingest.

    A sensor is declared in the file before its first notification; an assigned sensor that connects
    only after recording started (it was out of range) is declared then.
    """

    def __init__(self, writer: Any, manager: Any, roles: Roles) -> None:
        from sensorhub.ingest import Ingest

        self.writer = writer
        self.manager = manager
        self.roles = roles
        self.ingest = Ingest()
        self.counts: dict[str, int] = {}
        self._events_done = 0

    def declare(self, sensor_id: str) -> bool:
        """Add the sensor to the file (role from the assignment, the rest from its info record)."""
        info = self.manager.sensor_info().get(sensor_id)
        status = next((s for s in self.manager.status() if s.sensor_id == sensor_id), None)
        if sensor_id not in self.roles or info is None or status is None:
            return False
        segment, side = self.roles[sensor_id]
        self.writer.add_sensor(sensor_id, segment=segment, side=side, has_mag=info.has_mag, rate_hz=status.rate_hz,
                               name=status.name, firmware=info.firmware_version_str, address=status.address,
                               battery_percent=info.battery_percent, mtu=status.mtu)
        self.counts[sensor_id] = 0
        return True

    def write(self, note: Any) -> None:
        if note.sensor_id not in self.counts and not self.declare(note.sensor_id):
            return  # not part of this session
        self.writer.write_notification(note)
        self.counts[note.sensor_id] += 1
        self.ingest.push(note)

    def write_events(self, events: list[Any]) -> None:
        """Link events as marks: ``sensor_lost``, ``sensor_back``, ``time_sync`` (with the detail text)."""
        labels = {"lost": "sensor_lost", "back": "sensor_back", "time_sync": "time_sync"}
        for event in events[self._events_done:]:
            label = labels.get(event.kind)
            if label is not None and event.sensor_id in self.counts:
                self.writer.write_mark(event.t_host_s, label, sensor_id=event.sensor_id, detail=event.detail,
                                      **event.data)
        self._events_done = len(events)


async def _stream_to_file(out: Path, manager: Any, connected: list[str], roles: Roles, events: list[Any], *,
                          athlete: str | None, drill: str | None, side: str | None, duration_s: float | None,
                          fake: bool, overwrite: bool, clock: Callable[[], float]) -> RecordResult:
    from sensorhub.recording import Athlete, RecordingWriter

    thigh_sides = {roles[sid][1] for sid in connected if roles[sid][0] == "thigh"}
    if side is None and len(thigh_sides) == 1:
        side = next(iter(thigh_sides))
    meta: dict[str, Any] = {
        "athlete": None if athlete is None else Athlete(athlete, athlete),
        "drill": drill,
        "side": side,
        "source": "ble-fake" if fake else "ble",
    }
    # Creating the file fsyncs it and its directory; off the event loop, so the streams do not stall.
    writer = await asyncio.to_thread(RecordingWriter, out, meta, overwrite=overwrite)
    sink = _Sink(writer, manager, roles)
    t_start_s = clock()
    outcome = "ok"
    try:
        for sid in connected:
            sink.declare(sid)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        if duration_s is not None:
            loop.call_later(duration_s, stop.set)
        queue = manager.notifications
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    sink.write(await asyncio.wait_for(queue.get(), 0.25))
                    while not queue.empty():
                        sink.write(queue.get_nowait())
                sink.write_events(events)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        await manager.stop()
        while not queue.empty():
            sink.write(queue.get_nowait())
        sink.write_events(events)
    except BaseException as exc:
        outcome = f"aborted: {type(exc).__name__}"
        raise
    finally:
        sink.ingest.flush()
        summary = _summary(manager, sink.ingest, roles)
        writer.close(summary=summary, status=outcome)
    return RecordResult(out, clock() - t_start_s, sink.counts, summary, outcome)


def _summary(manager: Any, ingest: Any, roles: Roles) -> dict[str, Any]:
    stats = ingest.stats()
    sensors: dict[str, Any] = {}
    for s in manager.status():
        if s.sensor_id is None or s.sensor_id not in stats:
            continue
        st = stats[s.sensor_id]
        segment, side = roles.get(s.sensor_id, ("?", None))
        sensors[s.sensor_id] = {
            "role": f"{side} {segment}" if side else segment,
            "samples": st.samples,
            "packets_received": st.packets_received,
            "packets_lost": st.packets_lost,
            "duplicates": st.duplicates,
            "resets": st.resets,
            "drift_ppm": st.drift_ppm,
            "reconnects": s.reconnects,
            "queue_drops": s.queue_drops,
            "battery_percent": s.battery_percent,
            "time_sync_offset_us": s.time_sync.offset_us if s.time_sync else None,
        }
    return {"sensors": sensors}
