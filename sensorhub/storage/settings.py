"""Storage configuration: one pydantic-settings class read from ``SENSORHUB_*`` environment variables.

The service builds its settings with :meth:`StorageSettings.from_env`, passing its command-line flags
as overrides (flags left unset, i.e. None, keep the environment's value). InfluxDB is used when
``influx_url`` is set; otherwise everything goes to SQLite in ``data_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Per-user data directory: ``$XDG_DATA_HOME/sensorhub`` or ``~/.local/share/sensorhub``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sensorhub"


class StorageSettings(BaseSettings):
    """Where and how sensorhub stores data. Every field can be set as ``SENSORHUB_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="SENSORHUB_", extra="ignore")

    influx_url: str | None = None
    """InfluxDB base URL (e.g. ``http://localhost:8086``); unset = embedded SQLite store."""
    influx_token: SecretStr = SecretStr("")
    """API token (2.x/3.x) or ``user:password`` (1.8+)."""
    influx_org: str = "-"
    """Organisation (2.x); ignored by 1.x and 3.x."""
    influx_bucket: str = "sensorhub"
    """Bucket (2.x), database (3.x) or ``database/retention_policy`` (1.x)."""
    data_dir: Path = Field(default_factory=default_data_dir)
    """SQLite store, metadata index and spool live here."""

    angle_rate_hz: float = Field(default=50.0, gt=0)
    """Angle frames are downsampled to at most this rate per athlete, session and side."""
    store_raw_imu: bool = False
    """Also store raw IMU samples (large: about 400 points/s per sensor pair at 100 Hz)."""

    batch_size: int = Field(default=5000, ge=1)
    """Points per write request."""
    flush_interval_s: float = Field(default=1.0, gt=0)
    """Longest time a record waits in memory before it is written or spooled."""
    write_timeout_s: float = Field(default=10.0, gt=0)
    """HTTP timeout of one write request."""
    http_retries: int = Field(default=2, ge=0)
    """Immediate retries (with short exponential backoff) of one request on 429/5xx/timeouts."""
    retry_initial_delay_s: float = Field(default=0.5, gt=0)
    """First delay before the spool is retried after a failed write; doubles up to the maximum."""
    retry_max_delay_s: float = Field(default=30.0, gt=0)
    max_buffered_records: int = Field(default=200_000, ge=1)
    """Bound of the in-memory queue between callers and the writer thread (records beyond are dropped)."""
    spool_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    """Bound of the on-disk spool (line protocol bytes); beyond it new points are dropped and counted."""
    drain_batch_points: int = Field(default=20_000, ge=1)
    """Points per request while draining the spool."""

    @property
    def influx_enabled(self) -> bool:
        return bool(self.influx_url)

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """Settings from ``SENSORHUB_*`` variables, with every non-None override applied (validated).

        ``StorageSettings.from_env(influx_url=args.influx_url, data_dir=args.data_dir)``
        """
        return cls(**{name: value for name, value in overrides.items() if value is not None})
