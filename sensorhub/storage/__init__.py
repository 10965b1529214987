"""Storage of hip angle frames, reps, sessions and sensor status: InfluxDB or embedded SQLite.

Entry point for the service::

    settings = StorageSettings.from_env(influx_url=args.influx_url)  # environment + CLI flags
    store = open_store(settings)                       # InfluxStore if influx_url is set, else SqliteStore
    store.write_frames(frames)                         # never blocks, never raises
    store.health()                                     # ok / degraded / down, spool depth, last error
    store.reps(session_id); store.trend(athlete, drill)
    session_reps_csv(store, session_id)
    store.close()

Schema and design: ``docs/storage.md``. This package must not import the pipeline (motion, drills,
ingest); it only knows the records in :mod:`sensorhub.storage.model`.
"""

from __future__ import annotations

from sensorhub.storage.base import (
    ErasureIncompleteError,
    SideTrend,
    StorageError,
    StorageHealth,
    StorageState,
    StorageUnavailableError,
    Store,
    WeeklyTrend,
)
from sensorhub.storage.history import (
    angles_csv,
    reps_csv,
    session_angles_csv,
    session_reps_csv,
    weekly_trends,
)
from sensorhub.storage.model import (
    AngleFrame,
    ImuBlock,
    RepRecord,
    SensorStatus,
    SessionRecord,
)
from sensorhub.storage.settings import StorageSettings


def open_store(settings: StorageSettings | None = None) -> Store:
    """The configured store: :class:`InfluxStore` when ``influx_url`` is set, else :class:`SqliteStore`."""
    settings = settings or StorageSettings()
    if settings.influx_enabled:
        from sensorhub.storage.influx import InfluxStore

        return InfluxStore(settings)
    from sensorhub.storage.sqlite_store import SqliteStore

    return SqliteStore(settings)


__all__ = [
    "AngleFrame",
    "ErasureIncompleteError",
    "ImuBlock",
    "RepRecord",
    "SensorStatus",
    "SessionRecord",
    "SideTrend",
    "StorageError",
    "StorageHealth",
    "StorageSettings",
    "StorageState",
    "StorageUnavailableError",
    "Store",
    "WeeklyTrend",
    "angles_csv",
    "open_store",
    "reps_csv",
    "session_angles_csv",
    "session_reps_csv",
    "weekly_trends",
]
