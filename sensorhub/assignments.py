"""Which sensor is strapped where: the sensor-to-body assignment, remembered across sessions.

An :class:`Assignment` says that sensor ``sensor_id`` (the 12-hex-digit id from its info record, see
firmware_protocol/PROTOCOL.md 6) sits on ``segment`` ("pelvis" or "thigh"), on ``side`` ("left" or
"right"; none for the pelvis) of ``athlete``. :class:`AssignmentStore` keeps them in one JSON file,
``assignments.json`` in the data directory (``$SENSORHUB_DATA_DIR``, default
``~/.local/share/sensorhub``), written atomically (temporary file, fsync, rename), so a crash never
leaves a half-written file and two processes (the service and ``sensorhub record``) see each other's
changes: every call reads the file again.

Rules: a sensor has at most one assignment; an athlete has at most one sensor per (segment, side).
Assigning a sensor to a slot that another sensor holds moves the slot to the new sensor (the old one
becomes unassigned), because swapping a flat sensor for a charged one is the common case.

The file (version 1)::

    {"version": 1,
     "assignments": [{"sensor_id": "a1b2c3d4e5f6", "athlete": "ath-7", "segment": "thigh",
                      "side": "right", "assigned_at": "2026-11-21T09:00:00+00:00"}, ...]}
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import re
import tempfile
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sensorhub.ble.errors import AssignmentError

log = logging.getLogger(__name__)

__all__ = ["SEGMENTS", "SIDES", "Assignment", "AssignmentError", "AssignmentStore", "data_dir"]

SEGMENTS: Final = ("pelvis", "thigh")
SIDES: Final = ("left", "right")
FILE_NAME: Final = "assignments.json"
FILE_VERSION: Final = 1
_SENSOR_ID: Final = re.compile(r"^[0-9a-f]{12}$")


def data_dir() -> Path:
    """``$SENSORHUB_DATA_DIR`` if set, else ``$XDG_DATA_HOME/sensorhub`` or ``~/.local/share/sensorhub``."""
    env = os.environ.get("SENSORHUB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sensorhub"


@dataclass(frozen=True)
class Assignment:
    sensor_id: str
    athlete: str
    segment: str
    """"pelvis" or "thigh" (the segments of :class:`sensorhub.recording.SensorDescriptor`)."""
    side: str | None = None
    """"left" / "right" for a thigh; None for the pelvis."""
    assigned_at: str = ""
    """ISO 8601 UTC time of the assignment."""

    @property
    def slot(self) -> tuple[str, str, str | None]:
        return self.athlete, self.segment, self.side

    @property
    def label(self) -> str:
        return f"{self.side} {self.segment}" if self.side else self.segment

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _validate(sensor_id: str, athlete: str, segment: str, side: str | None, where: str) -> tuple[str, str | None]:
    if not isinstance(sensor_id, str) or not _SENSOR_ID.match(sensor_id):
        raise AssignmentError(f"{where}: sensor id {sensor_id!r} is not 12 lowercase hex digits (as the info record gives it)")
    if not isinstance(athlete, str) or not athlete.strip():
        raise AssignmentError(f"{where}: athlete must be a non-empty string, got {athlete!r}")
    if segment not in SEGMENTS:
        raise AssignmentError(f"{where}: segment {segment!r} is not one of {', '.join(SEGMENTS)}")
    if segment == "pelvis":
        if side not in (None, ""):
            raise AssignmentError(f"{where}: the pelvis sensor has no side, got side {side!r}")
        return segment, None
    if side not in SIDES:
        raise AssignmentError(f"{where}: a thigh sensor needs side 'left' or 'right', got {side!r}")
    return segment, side


class AssignmentStore:
    """Sensor-to-body assignments in ``path`` (default: ``data_dir()/assignments.json``). Thread-safe."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else data_dir() / FILE_NAME
        self._lock = threading.Lock()

    # -- API -----------------------------------------------------------------------------------------

    def assign(self, sensor_id: str, athlete: str, segment: str, side: str | None = None) -> Assignment:
        """Put ``sensor_id`` on ``segment``/``side`` of ``athlete``; returns the stored assignment.

        Replaces the sensor's previous assignment and whatever sensor held that slot before.
        """
        segment, side = _validate(sensor_id, athlete, segment, side, "assign")
        new = Assignment(sensor_id, athlete.strip(), segment, side, datetime.now(UTC).isoformat(timespec="seconds"))
        with self._lock:
            current = self._load()
            kept = [a for a in current if a.sensor_id != sensor_id and a.slot != new.slot]
            for dropped in current:
                if dropped.sensor_id != sensor_id and dropped.slot == new.slot:
                    log.info("sensor %s replaces %s as %s of %s", sensor_id, dropped.sensor_id, new.label, new.athlete)
            self._save([*kept, new])
        return new

    def unassign(self, sensor_id: str) -> Assignment | None:
        """Forget the sensor's assignment; returns it, or None if it had none."""
        with self._lock:
            current = self._load()
            removed = next((a for a in current if a.sensor_id == sensor_id), None)
            if removed is not None:
                self._save([a for a in current if a.sensor_id != sensor_id])
        return removed

    def list(self, athlete: str | None = None) -> builtins.list[Assignment]:
        """All assignments (or one athlete's), sorted by athlete, segment, side."""
        with self._lock:
            items = self._load()
        if athlete is not None:
            items = [a for a in items if a.athlete == athlete]
        return sorted(items, key=lambda a: (a.athlete, a.segment, a.side or ""))

    def get(self, sensor_id: str) -> Assignment | None:
        return next((a for a in self.list() if a.sensor_id == sensor_id), None)

    # -- file ----------------------------------------------------------------------------------------

    def _load(self) -> builtins.list[Assignment]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AssignmentError(f"{self.path}: cannot read sensor assignments: {exc.strerror}") from exc
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AssignmentError(f"{self.path}: line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}") from exc
        if not isinstance(doc, dict) or doc.get("version") != FILE_VERSION or not isinstance(doc.get("assignments"), list):
            raise AssignmentError(
                f"{self.path}: expected an object with \"version\": {FILE_VERSION} and an \"assignments\" list"
            )
        out: builtins.list[Assignment] = []
        for i, item in enumerate(doc["assignments"]):
            where = f"{self.path}: assignments[{i}]"
            if not isinstance(item, dict):
                raise AssignmentError(f"{where}: expected an object, got {type(item).__name__}")
            segment, side = _validate(item.get("sensor_id"), item.get("athlete"), item.get("segment"),  # type: ignore[arg-type]
                                      item.get("side"), where)
            out.append(Assignment(item["sensor_id"], item["athlete"], segment, side, str(item.get("assigned_at") or "")))
        return out

    def _save(self, items: builtins.list[Assignment]) -> None:
        doc = {"version": FILE_VERSION, "assignments": [a.to_json() for a in items]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
