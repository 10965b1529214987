"""Where notifications come from: the seam between live BLE / replay and the hub.

A :class:`NotificationSource` is anything with ``async run(sink)``. It declares the sensors it knows
(:meth:`HubInput.sensor_found`), hands every :class:`~sensorhub.notification.Notification` to
:meth:`HubInput.submit` — the one entry point of the pipeline, identical for BLE and replay — and
reports link events (lost, back, battery) through :meth:`HubInput.sensor_event`. ``submit`` only
timestamps and enqueues; the hub's consumer task does the work, so a BLE callback never waits.

:class:`ReplayNotificationSource` plays a recording as if its sensors were live: the sensor
assignment comes from the recording's sensor descriptors (segment, side), the athlete and drill
from its metadata, and each loop pass starts a new session (the recording starts over with the
calibration protocol, and the sensors look rebooted to ingest).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sensorhub.notification import Notification
from sensorhub.recording import Recording, open_recording
from sensorhub.replay import ReplaySource

log = logging.getLogger(__name__)

SEGMENTS = ("pelvis", "thigh")


@dataclass(frozen=True)
class SensorInfo:
    """A sensor a source knows about, with its body assignment when the source knows it."""

    sensor_id: str
    segment: str | None = None
    """"pelvis" or "thigh" (None: not assigned yet)."""
    side: str | None = None
    """"left"/"right" for a thigh; None for the pelvis."""
    athlete: str | None = None
    has_mag: bool | None = None
    rate_hz: float | None = None
    name: str | None = None


@dataclass(frozen=True)
class SessionPlan:
    """What a source knows about the session it carries (a recording's metadata)."""

    athlete_id: str
    athlete_name: str
    drill: str | None
    side: str | None


@runtime_checkable
class HubInput(Protocol):
    """What a source may call on the hub (all from the event loop thread)."""

    def submit(self, notification: Notification) -> None:
        """One notification enters the pipeline (timestamped and queued; never blocks)."""
        ...

    def sensor_found(self, info: SensorInfo) -> None: ...

    def sensor_event(self, sensor_id: str, kind: str, **data: object) -> None:
        """``kind``: "connected", "disconnected", "lost", "back", "battery" (``battery_pct=``)."""
        ...

    def plan_session(self, plan: SessionPlan) -> None:
        """Start (or restart, on a new replay pass) the session the source carries."""
        ...

    def source_finished(self) -> None: ...


@runtime_checkable
class NotificationSource(Protocol):
    """A producer of notifications for the hub."""

    name: str

    async def run(self, hub: HubInput) -> None: ...


class ReplayNotificationSource:
    """A recording, paced by its receive times, fed to the hub as if live (see the module docstring)."""

    name = "replay"

    def __init__(self, recording: Recording | str | os.PathLike[str], *, speed: float | None = 1.0,
                 loop: bool = False, loop_gap_s: float = 1.0) -> None:
        self.recording = recording if isinstance(recording, Recording) else open_recording(recording)
        self.speed = speed
        self.loop = loop
        self.loop_gap_s = loop_gap_s
        self.passes = 0

    def plan(self) -> SessionPlan:
        meta = self.recording.meta
        athlete = meta.athlete
        stem = self.recording.path.stem
        side = meta.side or next((s.side for s in self.recording.sensors if s.segment == "thigh" and s.side), None)
        return SessionPlan(
            athlete_id=athlete.id if athlete else f"replay-{stem}",
            athlete_name=(athlete.name if athlete and athlete.name else (athlete.id if athlete else stem)),
            drill=meta.drill,
            side=side,
        )

    def sensors(self) -> list[SensorInfo]:
        plan = self.plan()
        return [
            SensorInfo(s.sensor_id, s.segment if s.segment in SEGMENTS else None,
                       s.side if s.segment == "thigh" else None, plan.athlete_id, s.has_mag, s.rate_hz, s.name)
            for s in self.recording.sensors
        ]

    async def run(self, hub: HubInput) -> None:
        for info in self.sensors():
            hub.sensor_found(info)
            hub.sensor_event(info.sensor_id, "connected")
        plan = self.plan()
        shift_s = 0.0
        try:
            while True:
                hub.plan_session(plan)
                first: float | None = None
                last: float | None = None
                async for note in ReplaySource(self.recording, self.speed, loop=False):
                    if first is None:
                        first = note.t_host_s
                    last = note.t_host_s
                    hub.submit(note if shift_s == 0.0 else Notification(note.sensor_id, note.t_host_s + shift_s, note.payload))
                self.passes += 1
                if not self.loop or first is None or last is None:
                    break
                # Host times keep increasing across passes; the sensors look rebooted to ingest.
                shift_s += (last - first) + self.loop_gap_s
                log.info("replay of %s: pass %d done, starting over", self.recording.path.name, self.passes)
                await asyncio.sleep(self.loop_gap_s / self.speed if self.speed else 0.0)
        finally:
            hub.source_finished()
