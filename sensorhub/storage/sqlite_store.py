"""The embedded store: everything in one SQLite file in the data directory, no server needed.

Writes go through the same non-blocking :class:`~sensorhub.storage.writer.AsyncWriter` as the InfluxDB
store. A failing disk (``SQLITE_FULL``, I/O error) costs the records of that batch, sets state DOWN
with an alert, and never raises to the caller; the next successful batch clears the alert.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Self

from sensorhub.storage.base import StorageHealth, StorageState, WeeklyTrend
from sensorhub.storage.model import (
    AngleFrame,
    ImuBlock,
    RepRecord,
    SensorStatus,
    SessionRecord,
)
from sensorhub.storage.settings import StorageSettings
from sensorhub.storage.sqlite_db import SqliteDatabase
from sensorhub.storage.writer import AsyncWriter, RecordBatch

logger = logging.getLogger(__name__)

DB_FILENAME = "sensorhub.sqlite3"

#: A drop of records within this many seconds keeps the state DOWN.
DROP_ALERT_HOLD_S = 30.0


class _SqliteSink:
    def __init__(self, db: SqliteDatabase, store_raw_imu: bool) -> None:
        self.db = db
        self.store_raw_imu = store_raw_imu
        self._lock = threading.Lock()
        self.written = 0
        self.dropped = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.failing = False

    def handle(self, batch: RecordBatch) -> None:
        try:
            n = self.db.insert(
                frames=batch.frames,
                reps=batch.reps,
                sessions=batch.sessions,
                statuses=batch.statuses,
                imu=batch.imu if self.store_raw_imu else [],
            )
        except sqlite3.Error as exc:
            with self._lock:
                self.dropped += len(batch)
                self.failing = True
                self.last_error = f"writing {len(batch)} records to {self.db.path} failed: {exc}"
                self.last_error_at = time.time()
            logger.error("storage: %s", self.last_error)
            return
        with self._lock:
            self.written += n
            self.failing = False

    def background(self) -> bool:
        return False

    def pending_points(self) -> int:
        return 0

    def close(self) -> None:
        self.db.close()


class SqliteStore:
    """:class:`~sensorhub.storage.base.Store` on a SQLite file (``<data_dir>/sensorhub.sqlite3``)."""

    backend = "sqlite"

    def __init__(self, settings: StorageSettings | None = None, *, path: Path | None = None) -> None:
        self.settings = settings or StorageSettings()
        self.path = path or self.settings.data_dir / DB_FILENAME
        self.db = SqliteDatabase(self.path)
        self._sink = _SqliteSink(self.db, self.settings.store_raw_imu)
        self._writer = AsyncWriter(
            self._sink,
            angle_rate_hz=self.settings.angle_rate_hz,
            batch_size=self.settings.batch_size,
            flush_interval_s=self.settings.flush_interval_s,
            max_buffered_records=self.settings.max_buffered_records,
            name="sensorhub-sqlite-writer",
        )

    # -- writes
    def write_frames(self, frames: Iterable[AngleFrame]) -> None:
        self._writer.submit(frames)

    def write_reps(self, reps: Iterable[RepRecord]) -> None:
        self._writer.submit(reps)

    def write_session(self, session: SessionRecord) -> None:
        self._writer.submit((session,))

    def write_status(self, statuses: Iterable[SensorStatus]) -> None:
        self._writer.submit(statuses)

    def write_imu(self, block: ImuBlock) -> None:
        if self.settings.store_raw_imu:
            self._writer.submit((block,))

    def flush(self, timeout_s: float = 10.0) -> bool:
        return self._writer.flush(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        self._writer.close(timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self) -> StorageHealth:
        sink, writer = self._sink, self._writer
        recent_drop = writer.last_drop_at is not None and time.time() - writer.last_drop_at < DROP_ALERT_HOLD_S
        alert = None
        if sink.failing:
            alert = f"cannot write to {self.path} (disk full or failing?): records are being lost"
        elif recent_drop:
            alert = "the in-memory queue overflowed: records are being lost (disk too slow?)"
        return StorageHealth(
            state=StorageState.DOWN if alert else StorageState.OK,
            backend=self.backend,
            target=str(self.path),
            database_reachable=not sink.failing,
            spool_points=0,
            spool_bytes=0,
            spool_max_bytes=0,
            buffered_records=writer.buffered_records,
            written_points=sink.written,
            dropped_records=sink.dropped + writer.dropped_records,
            rejected_points=0,
            last_error=sink.last_error,
            last_error_at=sink.last_error_at,
            alert=alert,
        )

    # -- history
    def sessions(
        self,
        athlete: str | None = None,
        drill: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SessionRecord]:
        return self.db.sessions(athlete, drill, since, until)

    def session(self, session_id: str) -> SessionRecord | None:
        return self.db.session(session_id)

    def reps(self, session_id: str) -> list[RepRecord]:
        return self.db.reps(session_id)

    def angles(self, session_id: str) -> list[AngleFrame]:
        return self.db.angles(session_id)

    def trend(
        self, athlete: str, drill: str, weeks: int = 12, until: float | None = None, tz: dt.tzinfo = dt.UTC
    ) -> list[WeeklyTrend]:
        return self.db.trend(athlete, drill, weeks, until, tz)

    def athletes(self) -> list[str]:
        return self.db.athletes()

    def delete_athlete(self, athlete: str) -> None:
        """Delete every record of ``athlete``, including records still queued before this call."""
        n = self._writer.call(lambda: self.db.delete_athlete(athlete))
        logger.info("storage: deleted athlete %r (%d rows) from %s", athlete, n, self.path)
