"""SQLite tables for sessions, reps, angle frames, sensor status and raw IMU, with the history queries.

Used whole by the embedded store, and as the local session/rep index of the InfluxDB store (which
keeps only the time series in InfluxDB). Rows are keyed like InfluxDB points (series + timestamp),
and written with ``INSERT OR REPLACE``, so writing a record twice keeps one row.

One connection in WAL mode, guarded by a lock: the writer thread writes, request handlers read.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sensorhub.storage.base import StorageError, WeeklyTrend
from sensorhub.storage.history import trend_window, weekly_trends
from sensorhub.storage.model import (
    AngleFrame,
    ImuBlock,
    RepRecord,
    SensorStatus,
    SessionRecord,
)
from sensorhub.storage.schema import timestamp_ns

logger = logging.getLogger(__name__)


def _where(*conditions: tuple[str, object, str]) -> tuple[str, tuple[object, ...]]:
    """``WHERE`` clause and parameters for the (column, value, operator) conditions whose value is set."""
    used = [(column, op, value) for column, value, op in conditions if value is not None]
    if not used:
        return "", ()
    return "WHERE " + " AND ".join(f"{column} {op} ?" for column, op, _ in used), tuple(v for *_, v in used)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, athlete TEXT NOT NULL, drill TEXT NOT NULL, side TEXT NOT NULL,
    started_unix_s REAL NOT NULL, ended_unix_s REAL, summary_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_athlete_drill ON sessions (athlete, drill, started_unix_s);
CREATE TABLE IF NOT EXISTS reps (
    session TEXT NOT NULL, side TEXT NOT NULL, idx INTEGER NOT NULL, athlete TEXT NOT NULL, drill TEXT NOT NULL,
    t_start_unix_s REAL NOT NULL, t_end_unix_s REAL NOT NULL,
    peak_internal_rotation_deg REAL, peak_external_rotation_deg REAL, arc_deg REAL,
    compensations_json TEXT NOT NULL, score REAL, score_components_json TEXT NOT NULL,
    PRIMARY KEY (session, side, idx)
);
CREATE INDEX IF NOT EXISTS reps_athlete_drill ON reps (athlete, drill, t_start_unix_s);
CREATE TABLE IF NOT EXISTS angle_frames (
    session TEXT NOT NULL, side TEXT NOT NULL, t_ns INTEGER NOT NULL, athlete TEXT NOT NULL, drill TEXT NOT NULL,
    hip_flexion_deg REAL, hip_adduction_deg REAL, hip_rotation_deg REAL,
    pelvis_tilt_deg REAL, pelvis_obliquity_deg REAL, pelvis_rotation_deg REAL,
    PRIMARY KEY (session, side, t_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS angle_frames_athlete ON angle_frames (athlete);
CREATE TABLE IF NOT EXISTS sensor_status (
    sensor TEXT NOT NULL, t_ns INTEGER NOT NULL, athlete TEXT NOT NULL,
    battery_pct REAL, loss_fraction REAL, rate_hz REAL, connected INTEGER NOT NULL,
    PRIMARY KEY (sensor, t_ns)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS imu_raw (
    sensor TEXT NOT NULL, t_ns INTEGER NOT NULL, athlete TEXT NOT NULL, session TEXT NOT NULL,
    acc_x_m_s2 REAL, acc_y_m_s2 REAL, acc_z_m_s2 REAL, gyr_x_rad_s REAL, gyr_y_rad_s REAL, gyr_z_rad_s REAL,
    mag_x_uT REAL, mag_y_uT REAL, mag_z_uT REAL,
    PRIMARY KEY (sensor, t_ns)
) WITHOUT ROWID;
"""


def _nan_to_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _none_to_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


class SqliteDatabase:
    """The SQLite file at ``path`` with sensorhub's tables."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open the SQLite store {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        try:
            with self._lock:
                cursor = self._conn.execute(sql, params)
                cursor.row_factory = sqlite3.Row
                return cursor.fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"query on the SQLite store {self.path} failed: {exc}") from exc

    # ------------------------------------------------------------------------------------ writes
    def insert(
        self,
        *,
        frames: list[AngleFrame] = [],  # noqa: B006 - read-only defaults
        reps: list[RepRecord] = [],  # noqa: B006
        sessions: list[SessionRecord] = [],  # noqa: B006
        statuses: list[SensorStatus] = [],  # noqa: B006
        imu: list[ImuBlock] = [],  # noqa: B006
    ) -> int:
        """Insert or replace the records in one transaction; returns the number of rows written.

        Raises :class:`sqlite3.Error` (e.g. ``SQLITE_FULL``) for the caller to turn into a state.
        """
        n = 0
        with self._transaction() as conn:
            if sessions:
                conn.executemany(
                    "INSERT OR REPLACE INTO sessions VALUES (?,?,?,?,?,?,?)",
                    [
                        (s.id, s.athlete, s.drill, s.side, s.started, s.ended, json.dumps(dict(s.summary), default=str))
                        for s in sessions
                    ],
                )
                n += len(sessions)
            if reps:
                conn.executemany(
                    "INSERT OR REPLACE INTO reps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            r.session,
                            r.side,
                            r.index,
                            r.athlete,
                            r.drill,
                            r.t_start_s,
                            r.t_end_s,
                            _nan_to_none(r.peak_internal_rotation_deg),
                            _nan_to_none(r.peak_external_rotation_deg),
                            _nan_to_none(r.arc_deg),
                            json.dumps(list(r.compensations)),
                            _nan_to_none(r.score),
                            json.dumps(dict(r.score_components)),
                        )
                        for r in reps
                    ],
                )
                n += len(reps)
            if frames:
                conn.executemany(
                    "INSERT OR REPLACE INTO angle_frames VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            f.session,
                            f.side,
                            timestamp_ns(f.t_s),
                            f.athlete,
                            f.drill,
                            _nan_to_none(f.hip_flexion_deg),
                            _nan_to_none(f.hip_adduction_deg),
                            _nan_to_none(f.hip_rotation_deg),
                            _nan_to_none(f.pelvis_tilt_deg),
                            _nan_to_none(f.pelvis_obliquity_deg),
                            _nan_to_none(f.pelvis_rotation_deg),
                        )
                        for f in frames
                    ],
                )
                n += len(frames)
            if statuses:
                conn.executemany(
                    "INSERT OR REPLACE INTO sensor_status VALUES (?,?,?,?,?,?,?)",
                    [
                        (
                            s.sensor_id,
                            timestamp_ns(s.t_s or 0.0),
                            s.athlete,
                            _nan_to_none(s.battery_pct),
                            _nan_to_none(s.loss_fraction),
                            _nan_to_none(s.rate_hz),
                            int(s.connected),
                        )
                        for s in statuses
                    ],
                )
                n += len(statuses)
            for block in imu:
                smp = block.samples
                mag = smp.mag_uT
                rows = [
                    (
                        block.sensor_id,
                        timestamp_ns(block.unix_offset_s + float(smp.t_s[i])),
                        block.athlete,
                        block.session,
                        *map(float, smp.acc_m_s2[i]),
                        *map(float, smp.gyr_rad_s[i]),
                        *((float(v) for v in mag[i]) if mag is not None else (None, None, None)),
                    )
                    for i in range(len(smp))
                ]
                conn.executemany("INSERT OR REPLACE INTO imu_raw VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
                n += len(rows)
        return n

    def delete_athlete(self, athlete: str) -> int:
        """Delete every row of ``athlete``; returns the number of rows deleted."""
        try:
            with self._transaction() as conn:
                n = 0
                for table in ("sessions", "reps", "angle_frames", "sensor_status", "imu_raw"):
                    n += conn.execute(f"DELETE FROM {table} WHERE athlete = ?", (athlete,)).rowcount
        except sqlite3.Error as exc:
            raise StorageError(f"deleting athlete {athlete!r} from {self.path} failed: {exc}") from exc
        return n

    # ------------------------------------------------------------------------------------ reads
    def sessions(
        self,
        athlete: str | None = None,
        drill: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[SessionRecord]:
        where, params = _where(
            ("athlete", athlete, "="),
            ("drill", drill, "="),
            ("started_unix_s", since, ">="),
            ("started_unix_s", until, "<"),
        )
        rows = self._query(f"SELECT * FROM sessions {where} ORDER BY started_unix_s, id", params)
        return [self._session(row) for row in rows]

    def session(self, session_id: str) -> SessionRecord | None:
        rows = self._query("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return self._session(rows[0]) if rows else None

    @staticmethod
    def _session(row: sqlite3.Row) -> SessionRecord:
        return SessionRecord(
            id=row["id"],
            athlete=row["athlete"],
            drill=row["drill"],
            side=row["side"],
            started=row["started_unix_s"],
            ended=row["ended_unix_s"],
            summary=json.loads(row["summary_json"]),
        )

    def reps(
        self,
        session_id: str | None = None,
        *,
        athlete: str | None = None,
        drill: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[RepRecord]:
        where, params = _where(
            ("session", session_id, "="),
            ("athlete", athlete, "="),
            ("drill", drill, "="),
            ("t_start_unix_s", since, ">="),
            ("t_start_unix_s", until, "<"),
        )
        rows = self._query(f"SELECT * FROM reps {where} ORDER BY t_start_unix_s, side, idx", params)
        return [
            RepRecord(
                athlete=row["athlete"],
                session=row["session"],
                side=row["side"],
                drill=row["drill"],
                index=row["idx"],
                t_start_s=row["t_start_unix_s"],
                t_end_s=row["t_end_unix_s"],
                peak_internal_rotation_deg=_none_to_nan(row["peak_internal_rotation_deg"]),
                peak_external_rotation_deg=_none_to_nan(row["peak_external_rotation_deg"]),
                arc_deg=_none_to_nan(row["arc_deg"]),
                compensations=tuple(json.loads(row["compensations_json"])),
                score=_none_to_nan(row["score"]),
                score_components=json.loads(row["score_components_json"]),
            )
            for row in rows
        ]

    def angles(self, session_id: str) -> list[AngleFrame]:
        rows = self._query("SELECT * FROM angle_frames WHERE session = ? ORDER BY t_ns, side", (session_id,))
        return [
            AngleFrame(
                t_s=row["t_ns"] / 1e9,
                athlete=row["athlete"],
                session=row["session"],
                side=row["side"],
                drill=row["drill"],
                hip_flexion_deg=_none_to_nan(row["hip_flexion_deg"]),
                hip_adduction_deg=_none_to_nan(row["hip_adduction_deg"]),
                hip_rotation_deg=_none_to_nan(row["hip_rotation_deg"]),
                pelvis_tilt_deg=_none_to_nan(row["pelvis_tilt_deg"]),
                pelvis_obliquity_deg=_none_to_nan(row["pelvis_obliquity_deg"]),
                pelvis_rotation_deg=_none_to_nan(row["pelvis_rotation_deg"]),
            )
            for row in rows
        ]

    def trend(
        self, athlete: str, drill: str, weeks: int = 12, until: float | None = None, tz: dt.tzinfo = dt.UTC
    ) -> list[WeeklyTrend]:
        """Per-week summary of ``athlete`` in ``drill`` over the last ``weeks`` (see history.weekly_trends)."""
        since, stop = trend_window(weeks, until, tz)
        return weekly_trends(
            self.sessions(athlete, drill, since, stop),
            self.reps(athlete=athlete, drill=drill, since=since, until=stop),
            tz,
        )

    def athletes(self) -> list[str]:
        rows = self._query("SELECT athlete FROM sessions UNION SELECT athlete FROM reps ORDER BY athlete")
        return [row["athlete"] for row in rows]

    def count(self, table: str) -> int:
        if table not in ("sessions", "reps", "angle_frames", "sensor_status", "imu_raw"):
            raise ValueError(f"unknown table {table!r}")
        return int(self._query(f"SELECT count(*) AS n FROM {table}")[0]["n"])
