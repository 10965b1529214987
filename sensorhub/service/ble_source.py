"""Live BLE sensors as a :class:`~sensorhub.service.sources.NotificationSource` of the hub.

:class:`BleNotificationSource` runs :class:`sensorhub.ble.BleManager` (bleak on a real radio, or
the BLE layer's fake peripherals with ``fake=True``) and moves every notification from the
manager's queue into :meth:`Hub.submit` unchanged — the same entry point a replay uses. Link
events map onto hub sensor events (connected, lost, back, battery).

Sensor-to-body assignments come from :class:`sensorhub.assignments.AssignmentStore` (the same file
``sensorhub record`` reads, in the data directory); the hub writes REST assignment changes back to
it. With fake sensors, unassigned fakes are strapped to a demo athlete and a session of the fake
drill starts on its own, so ``sensorhub serve --fake-sensors`` shows something straight away.

The manager's callback already only stamps and enqueues; this source is the consumer of that queue
and does nothing else, so a notification waits one event-loop turn between the two queues.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sensorhub.assignments import AssignmentStore
from sensorhub.ble import BleakBleBackend, BleManager, ManagerConfig, SensorEvent
from sensorhub.ble.backend import BleBackend
from sensorhub.ble.errors import BleError
from sensorhub.service.settings import ServiceSettings
from sensorhub.service.sources import HubInput, SensorInfo, SessionPlan

log = logging.getLogger(__name__)

FAKE_ATHLETE_ID = "fake-athlete"
FAKE_DRILL = "seated_rotation"
FAKE_SIDE = "right"

_EVENT_KINDS = {"connected": "connected", "lost": "lost", "back": "back", "stopped": "disconnected", "failed": "lost"}


def assignment_store(settings: ServiceSettings) -> AssignmentStore:
    """The assignment file in the service's data directory (shared with ``sensorhub record``)."""
    return AssignmentStore(Path(settings.storage.data_dir) / "assignments.json")


class BleNotificationSource:
    """BLE sensors (real or fake) feeding the hub; see the module docstring."""

    name = "ble"

    def __init__(self, *, fake: bool = False, settings: ServiceSettings | None = None,
                 config: ManagerConfig | None = None, store: AssignmentStore | None = None) -> None:
        self.fake = fake
        self.settings = settings or ServiceSettings()
        self.config = config
        self.store = store or assignment_store(self.settings)
        self.manager: BleManager | None = None

    async def run(self, hub: HubInput) -> None:
        radio: Any = None
        backend: BleBackend
        plan: SessionPlan | None = None
        if self.fake:
            from sensorhub.ble.fake import simulated_radio

            radio, roles = simulated_radio(side=FAKE_SIDE, drill=FAKE_DRILL)
            backend = radio.backend()
            assigned = {a.sensor_id for a in self.store.list()}
            for sid, (segment, side) in roles.items():
                if sid not in assigned:
                    self.store.assign(sid, FAKE_ATHLETE_ID, segment, side)
            plan = SessionPlan(FAKE_ATHLETE_ID, "Fake athlete (simulated sensors)", FAKE_DRILL, FAKE_SIDE)
        else:
            backend = BleakBleBackend()
        for a in self.store.list():
            hub.sensor_found(SensorInfo(a.sensor_id, a.segment, a.side, a.athlete))
        if plan is not None:
            hub.plan_session(plan)

        def on_event(ev: SensorEvent) -> None:
            if ev.sensor_id is None:
                return
            if ev.kind == "battery":
                hub.sensor_event(ev.sensor_id, "battery", battery_pct=ev.data.get("battery_percent"))
            elif ev.kind in _EVENT_KINDS:
                hub.sensor_event(ev.sensor_id, _EVENT_KINDS[ev.kind], reason=ev.detail)
            if ev.kind in ("connected", "back") and self.manager is not None:
                # The info record read on connect carries the battery level.
                for st in self.manager.status():
                    if st.sensor_id == ev.sensor_id and st.battery_percent is not None:
                        hub.sensor_event(ev.sensor_id, "battery", battery_pct=st.battery_percent)

        cfg = self.config or ManagerConfig(scan_timeout_s=0.3 if self.fake else 5.0)
        manager = self.manager = BleManager(backend, cfg, on_event=on_event)
        wanted = {a.sensor_id for a in self.store.list()}
        try:
            await manager.start(wanted_ids=wanted or None)
            queue = manager.notifications
            while True:
                hub.submit(await queue.get())
        except BleError as exc:
            # No adapter, no sensor in range, ...: the service stays up (history, REST) and says why.
            log.warning("live BLE source stopped: %s", exc)
        finally:
            await manager.stop()
            if radio is not None:
                await radio.close()
            hub.source_finished()
