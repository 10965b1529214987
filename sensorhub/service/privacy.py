"""Erase an athlete entirely: what ``DELETE /api/athletes/{id}`` does (docs/privacy.md).

One call removes, in this order:

1. the athlete's live state in the hub: running sessions are stopped, then every session of the
   athlete is dropped from memory, with its streams (angles, calibration) and its recent events;
2. the sensor assignments naming the athlete, in the hub and in ``assignments.json`` of the data
   directory;
3. everything the store holds about the athlete (SQLite: sessions, reps, angle frames, sensor
   status, raw IMU rows; InfluxDB: the series tagged with the athlete, the local session index and
   the spool), after flushing what the writer still buffers so nothing lands after the deletion;
4. recordings (``*.shr``) inside the data directory whose metadata names the athlete; recordings
   elsewhere (the replay being served, files a coach saved elsewhere) are not touched and are listed
   in the report, so the operator can delete them;
5. the athlete's entry in the register (``athletes.json``), last: if a step above fails (InfluxDB
   unreachable), the athlete is still known and the deletion can simply be repeated.

The hub's state is changed on the event loop thread; storage calls run in the thread pool.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fastapi.concurrency import run_in_threadpool

from sensorhub.assignments import FILE_NAME as ASSIGNMENTS_FILE
from sensorhub.assignments import AssignmentStore
from sensorhub.recording import open_recording
from sensorhub.service.athletes import UnknownAthleteError
from sensorhub.service.hub import Hub

log = logging.getLogger(__name__)

#: Seconds the store may take to write what it still buffers before the deletion.
FLUSH_TIMEOUT_S = 5.0


@dataclass
class ErasureReport:
    """What :func:`erase_athlete` removed (the JSON body of ``DELETE /api/athletes/{id}``)."""

    athlete: str
    register: bool = False
    """The athlete was in the register (athletes.json) and is removed from it."""
    live_sessions: list[str] = field(default_factory=list)
    """Sessions of the athlete held in the hub's memory (running ones were stopped first)."""
    streams: list[str] = field(default_factory=list)
    sensors_unassigned: list[str] = field(default_factory=list)
    stored_data: str = "none"
    """``"deleted"`` (store emptied of the athlete) or ``"none"`` (no store configured)."""
    recordings_deleted: list[str] = field(default_factory=list)
    recordings_kept: list[str] = field(default_factory=list)
    """Recordings naming the athlete outside the data directory: not deleted, delete them yourself."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def erase_athlete(hub: Hub, athlete_id: str, data_dir: Path) -> ErasureReport:
    """Remove every trace of ``athlete_id`` the service knows; :class:`UnknownAthleteError` if none.

    Storage errors (``StorageUnavailableError`` when InfluxDB is unreachable) propagate after the
    local parts are done; repeating the call is safe.
    """
    report = ErasureReport(athlete_id, register=athlete_id in hub.athletes)
    stored = await run_in_threadpool(hub.store.athletes) if hub.store is not None else []
    file_assignments = _assignment_file(data_dir)
    known = (report.register or athlete_id in stored
             or any(s.athlete == athlete_id for s in hub.sessions.values())
             or any(st.assignment is not None and st.assignment.athlete == athlete_id for st in hub.sensors.values())
             or (file_assignments is not None and bool(file_assignments.list(athlete_id))))
    recordings = _recordings_of(athlete_id, data_dir, hub.settings.replay)
    if not known and not any(recordings):
        raise UnknownAthleteError(f"no athlete with id {athlete_id!r} in the register, the store or the assignments")

    _erase_live_state(hub, athlete_id, report)
    if file_assignments is not None:
        for a in file_assignments.list(athlete_id):
            file_assignments.unassign(a.sensor_id)
            if a.sensor_id not in report.sensors_unassigned:
                report.sensors_unassigned.append(a.sensor_id)

    if hub.store is not None:
        store = hub.store
        await run_in_threadpool(store.flush, FLUSH_TIMEOUT_S)
        await run_in_threadpool(store.delete_athlete, athlete_id)
        report.stored_data = "deleted"

    inside, outside = recordings
    for path in inside:
        try:
            path.unlink()
            report.recordings_deleted.append(str(path))
        except OSError as exc:
            log.error("cannot delete recording %s: %s", path, exc)
            report.recordings_kept.append(str(path))
    report.recordings_kept.extend(str(p) for p in outside)

    if report.register:
        hub.athletes.delete(athlete_id)
    log.info("athlete %s erased: %d live sessions, %d sensors unassigned, %d recordings deleted, %d kept",
             athlete_id, len(report.live_sessions), len(report.sensors_unassigned),
             len(report.recordings_deleted), len(report.recordings_kept))
    return report


def _erase_live_state(hub: Hub, athlete_id: str, report: ErasureReport) -> None:
    for session in [s for s in hub.sessions.values() if s.athlete == athlete_id]:
        if session.active:
            hub.stop_session(session.id)  # stored with its summary, deleted with the rest below
        del hub.sessions[session.id]
        report.live_sessions.append(session.id)
    for sensor_id, state in hub.sensors.items():
        if state.assignment is not None and state.assignment.athlete == athlete_id:
            hub.unassign_sensor(sensor_id)
            report.sensors_unassigned.append(sensor_id)
    for key in [k for k, s in hub.streams.items() if s.athlete == athlete_id]:
        del hub.streams[key]
        report.streams.append(key)
    prefix = f"{athlete_id}/"
    kept = [e for e in hub.recent_events if not str(e.get("key") or "").startswith(prefix)]
    hub.recent_events.clear()
    hub.recent_events.extend(kept)


def _assignment_file(data_dir: Path) -> AssignmentStore | None:
    path = Path(data_dir) / ASSIGNMENTS_FILE
    return AssignmentStore(path) if path.is_file() else None


def _recordings_of(athlete_id: str, data_dir: Path, replay: Path | None) -> tuple[list[Path], list[Path]]:
    """Recordings naming ``athlete_id``: (inside ``data_dir``, outside it — only the served replay)."""
    inside = [p for p in sorted(Path(data_dir).rglob("*.shr")) if _names(p, athlete_id)]
    outside: list[Path] = []
    if replay is not None:
        root = Path(data_dir).resolve()
        resolved = Path(replay).resolve()
        if not resolved.is_relative_to(root) and _names(resolved, athlete_id):
            outside.append(resolved)
    return inside, outside


def _names(path: Path, athlete_id: str) -> bool:
    try:
        athlete = open_recording(path).meta.athlete
    except Exception as exc:  # noqa: BLE001 - an unreadable file is reported, never a reason to stop
        log.warning("cannot read recording %s while erasing an athlete: %s", path, exc)
        return False
    return athlete is not None and athlete.id == athlete_id
