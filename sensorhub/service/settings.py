"""Configuration of the live service: one pydantic-settings class read from ``SENSORHUB_*``.

``sensorhub serve`` builds a :class:`ServiceSettings` from the environment and overrides fields from
its command-line flags with ``settings.model_copy(update={...})``; tests build one directly.
Storage has its own settings class (:class:`sensorhub.storage.StorageSettings`), nested here so one
object describes the whole service.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sensorhub.service.security import SecuritySettings
from sensorhub.storage import StorageSettings

#: ``dashboards/`` of the source tree (the package is installed editable); None when absent.
_REPO_DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"


class ServiceSettings(BaseSettings):
    """What the service listens on, where its data comes from and how it treats clients."""

    model_config = SettingsConfigDict(env_prefix="SENSORHUB_", extra="ignore")

    host: str = "127.0.0.1"
    """Bind address. Loopback by default; any other address needs ``SENSORHUB_API_TOKEN``."""
    port: int = Field(default=8000, ge=0, le=65535)

    replay: Path | None = None
    """Serve this recording as if its sensors were live (None: live BLE or idle)."""
    replay_speed: float = Field(default=1.0, gt=0)
    replay_loop: bool = False
    fake_sensors: bool = False
    """Live mode against the BLE layer's fake peripherals instead of a radio."""
    ble: bool = True
    """Without ``replay``: run the BLE manager (False: no source, API only — tests, history browsing)."""

    display_rate_hz: float = Field(default=30.0, gt=0, le=240)
    """Largest rate at which one stream's angles are pushed to the browsers."""
    max_message_rate_hz: float = Field(default=100.0, gt=0, le=1000)
    """Largest average rate of WebSocket ``frame`` messages (each carries every stream due at that
    moment); up to ``hub.MESSAGE_BURST`` (2) may go out back to back."""
    client_queue_size: int = Field(default=256, ge=2)
    """Messages a WebSocket client may have waiting before it is dropped as too slow."""
    status_interval_s: float = Field(default=1.0, gt=0)
    sensor_lost_after_s: float = Field(default=1.0, gt=0)
    """A connected sensor silent for this long (wall time) is reported lost."""
    angle_rate_hz: float = Field(default=100.0, gt=0)
    """Rate of the angle frames the pipeline produces per stream."""

    dashboards_dir: Path | None = _REPO_DASHBOARDS if _REPO_DASHBOARDS.is_dir() else None
    """Static files served at ``/`` (None or missing: no dashboard, API only)."""
    storage: StorageSettings = Field(default_factory=StorageSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    """API token, CORS origins, size limits (``SENSORHUB_API_TOKEN``, ...): docs/privacy.md."""

    @field_validator("replay")
    @classmethod
    def _replay_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"replay recording {str(value)!r} does not exist or is not a file")
        return value

    @property
    def mode(self) -> str:
        """``"replay"``, ``"ble"`` (real or fake sensors) — the source the hub runs."""
        if self.replay is not None:
            return "replay"
        return "ble" if self.ble or self.fake_sensors else "idle"
