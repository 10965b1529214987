"""The storage contract: the :class:`Store` protocol, its health report, history result types, errors.

Both stores (:class:`~sensorhub.storage.sqlite_store.SqliteStore` and
:class:`~sensorhub.storage.influx.InfluxStore`) implement :class:`Store`, so the service and the
history pages do not care which one is configured.

Writes never block and never raise: they enqueue and return; problems show up in :meth:`Store.health`.
Reads are synchronous and raise :class:`StorageError` subclasses.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sensorhub.errors import SensorhubError
from sensorhub.storage.model import (
    AngleFrame,
    ImuBlock,
    RepRecord,
    SensorStatus,
    SessionRecord,
)


class StorageError(SensorhubError):
    """A storage operation failed; the message names the store (path or URL) and the operation."""


class StorageUnavailableError(StorageError):
    """The database cannot be reached right now (retry later; nothing was lost)."""


class ErasureIncompleteError(StorageError):
    """Deleting an athlete could not be verified: the database still shows the athlete's id.

    The message says what is still visible (series, or only the id in the tag index) and what the
    operator must do before repeating the deletion (it is idempotent).
    """


class StorageState(str, enum.Enum):
    OK = "ok"
    """Writes reach the database; nothing waits in the spool."""
    DEGRADED = "degraded"
    """The database is unreachable, slow or rejecting writes, or the spool is draining: data is kept on
    disk and will be delivered; nothing is being lost."""
    DOWN = "down"
    """Data is being lost: spool bound reached, disk full, or the in-memory queue overflowed."""


@dataclass(frozen=True)
class StorageHealth:
    """A snapshot of a store's state for the service and the dashboard."""

    state: StorageState
    backend: str
    """"influxdb" or "sqlite"."""
    target: str
    """URL and bucket, or the SQLite path."""
    database_reachable: bool
    spool_points: int
    spool_bytes: int
    spool_max_bytes: int
    buffered_records: int
    """Records accepted but not yet written or spooled (in memory)."""
    written_points: int
    """Points (InfluxDB) or rows (SQLite) confirmed written since the store was opened."""
    dropped_records: int
    """Records or points lost since the store was opened (queue overflow, spool full, disk full)."""
    rejected_points: int
    """Points the database refused as malformed (HTTP 400) and that were discarded."""
    last_error: str | None
    last_error_at: float | None
    """Unix time of ``last_error``."""
    alert: str | None
    """Set while in state DOWN: what is wrong and what to do."""

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (for the service's status endpoint)."""
        return {k: (v.value if isinstance(v, StorageState) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class SideTrend:
    """One side's numbers in one week."""

    reps: int
    max_internal_rotation_deg: float
    max_external_rotation_deg: float
    max_arc_deg: float
    compensation_count: int
    """Reps with at least one compensation."""


@dataclass(frozen=True)
class WeeklyTrend:
    """One week of one athlete's drill: per-side maxima, symmetry and compensations."""

    week_start: dt.date
    """Monday of the (ISO) week in the requested time zone."""
    sessions: int
    reps: int
    compensation_count: int
    left: SideTrend | None
    right: SideTrend | None
    symmetry_pct: float | None
    """100 x smaller / larger of the two sides' best rotation arc; None unless both sides were measured."""


@runtime_checkable
class Store(Protocol):
    """What the service and history pages use; implemented by the SQLite and the InfluxDB store."""

    # --- writing: enqueue and return immediately, never raise -----------------------------------
    def write_frames(self, frames: Iterable[AngleFrame]) -> None: ...
    def write_reps(self, reps: Iterable[RepRecord]) -> None: ...
    def write_session(self, session: SessionRecord) -> None: ...
    def write_status(self, statuses: Iterable[SensorStatus]) -> None: ...
    def write_imu(self, block: ImuBlock) -> None: ...

    def health(self) -> StorageHealth: ...
    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every record accepted so far is written (True) or the timeout passes (False)."""
        ...

    def close(self, timeout_s: float = 10.0) -> None:
        """Write or spool what is pending, then stop; nothing accepted is lost."""
        ...

    # --- history: synchronous, may raise StorageError ------------------------------------------
    def sessions(
        self,
        athlete: str | None = None,
        drill: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SessionRecord]: ...
    def session(self, session_id: str) -> SessionRecord | None: ...
    def reps(self, session_id: str) -> list[RepRecord]: ...
    def angles(self, session_id: str) -> list[AngleFrame]: ...
    def trend(
        self, athlete: str, drill: str, weeks: int = 12, until: float | None = None, tz: dt.tzinfo = dt.UTC
    ) -> list[WeeklyTrend]: ...
    def athletes(self) -> list[str]: ...
    def delete_athlete(self, athlete: str) -> None: ...
