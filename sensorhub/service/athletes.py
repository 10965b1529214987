"""The athlete register of the service: id, display name and notes, kept in ``athletes.json``.

Storage keys everything by athlete id and keeps no profile; the names a coach types live here, in
the data directory next to the SQLite store or InfluxDB spool. Writes are atomic (temporary file,
then rename). Small by design: a club has tens of athletes, not millions.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from sensorhub.errors import ConfigurationError, SensorhubError

log = logging.getLogger(__name__)

ATHLETE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class AthleteError(SensorhubError):
    """An athlete operation failed (unknown id, duplicate id)."""


class UnknownAthleteError(AthleteError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DuplicateAthleteError(AthleteError):
    pass


@dataclass
class Athlete:
    id: str
    name: str
    notes: str = ""


class AthleteRegistry:
    """Athletes by id, persisted to ``path`` (None: in memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._athletes: dict[str, Athlete] = {}
        if path is not None and path.is_file():
            try:
                rows = json.loads(path.read_text(encoding="utf-8"))
                for row in rows:
                    self._athletes[str(row["id"])] = Athlete(str(row["id"]), str(row.get("name", "")), str(row.get("notes", "")))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ConfigurationError(f"{path}: cannot read the athlete register ({exc})") from exc

    def list(self) -> list[Athlete]:
        return sorted(self._athletes.values(), key=lambda a: (a.name.lower(), a.id))

    def get(self, athlete_id: str) -> Athlete:
        try:
            return self._athletes[athlete_id]
        except KeyError:
            raise UnknownAthleteError(f"no athlete with id {athlete_id!r}") from None

    def find(self, athlete_id: str) -> Athlete | None:
        return self._athletes.get(athlete_id)

    def __contains__(self, athlete_id: object) -> bool:
        return athlete_id in self._athletes

    def create(self, name: str, athlete_id: str | None = None, notes: str = "") -> Athlete:
        athlete_id = athlete_id or uuid.uuid4().hex[:10]
        if not ATHLETE_ID_RE.match(athlete_id):
            raise ConfigurationError(f"athlete id {athlete_id!r}: use 1-64 letters, digits, '_', '.', '-'")
        if athlete_id in self._athletes:
            raise DuplicateAthleteError(f"an athlete with id {athlete_id!r} exists already")
        athlete = self._athletes[athlete_id] = Athlete(athlete_id, name, notes)
        self._save()
        return athlete

    def ensure(self, athlete_id: str, name: str) -> Athlete:
        """The athlete ``athlete_id``, created with ``name`` when unknown (replay metadata)."""
        if athlete_id in self._athletes:
            return self._athletes[athlete_id]
        return self.create(name or athlete_id, athlete_id)

    def update(self, athlete_id: str, *, name: str | None = None, notes: str | None = None) -> Athlete:
        athlete = self.get(athlete_id)
        if name is not None:
            athlete.name = name
        if notes is not None:
            athlete.notes = notes
        self._save()
        return athlete

    def delete(self, athlete_id: str) -> None:
        self.get(athlete_id)
        del self._athletes[athlete_id]
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps([asdict(a) for a in self._athletes.values()], indent=1), encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:
            # The register in memory stays right; only persistence failed.
            log.error("cannot write the athlete register %s: %s", self.path, exc)
