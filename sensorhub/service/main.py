"""Build the FastAPI app of the live service: ``create_app(settings)``.

The app's lifespan opens the store, builds the :class:`~sensorhub.service.hub.Hub` with its
notification source (a replayed recording, the BLE manager, or none), starts it, and on shutdown
stops it and closes the store (pending writes are written or spooled). Routers live in
:mod:`sensorhub.service.routers`, one per resource; errors of the runtime map to HTTP status codes
here, once. The dashboard (``dashboards/``) is served at ``/`` and plotly.js from the installed
``plotly`` package at ``/vendor/plotly.min.js``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from sensorhub import __version__
from sensorhub.assignments import AssignmentStore
from sensorhub.drills import UnknownDrillError
from sensorhub.errors import ConfigurationError, SensorhubError
from sensorhub.service.athletes import (
    AthleteRegistry,
    DuplicateAthleteError,
    UnknownAthleteError,
)
from sensorhub.service.broadcast import Broadcaster
from sensorhub.service.hub import ConflictError, Hub, NotFoundError
from sensorhub.service.metrics import LiveMetrics
from sensorhub.service.routers import (
    athletes,
    calibration,
    drills,
    health,
    history,
    live,
    sensors,
    sessions,
    streams,
)
from sensorhub.service.security import install_security
from sensorhub.service.settings import ServiceSettings
from sensorhub.service.sources import NotificationSource, ReplayNotificationSource
from sensorhub.storage import StorageError, StorageUnavailableError, Store, open_store

log = logging.getLogger(__name__)


def plotly_js_path() -> Path:
    """plotly.min.js shipped inside the installed ``plotly`` Python package."""
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def assignment_store(settings: ServiceSettings) -> AssignmentStore:
    from sensorhub.service.ble_source import assignment_store as store_of

    return store_of(settings)


def default_source(settings: ServiceSettings) -> NotificationSource | None:
    """The source the settings ask for: a replay, the BLE manager (real or fake sensors), or None."""
    if settings.replay is not None:
        return ReplayNotificationSource(settings.replay, speed=settings.replay_speed, loop=settings.replay_loop)
    if settings.mode == "idle":
        return None
    from sensorhub.service.ble_source import BleNotificationSource

    return BleNotificationSource(fake=settings.fake_sensors, settings=settings)


def _error(status: int, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status)


def create_app(
    settings: ServiceSettings | None = None,
    *,
    source: NotificationSource | None = None,
    store: Store | None = None,
    metrics: LiveMetrics | None = None,
) -> FastAPI:
    """The service app. ``source``/``store``/``metrics`` replace the defaults built from ``settings``."""
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        the_store = open_store(settings.storage) if own_store else store
        data_dir = settings.storage.data_dir
        hub = Hub(
            settings,
            store=the_store,
            metrics=metrics or LiveMetrics(),
            broadcaster=Broadcaster(settings.client_queue_size),
            athletes=AthleteRegistry(Path(data_dir) / "athletes.json"),
            source=source if source is not None else default_source(settings),
            assignments=assignment_store(settings) if settings.mode == "ble" and source is None else None,
        )
        hub.broadcaster._on_latency = hub.metrics.observe_latency
        hub.broadcaster._on_drop = lambda _client: hub.metrics.dropped_clients.inc()
        app.state.hub = hub
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            if own_store and the_store is not None:
                the_store.close()

    app = FastAPI(
        title="sensorhub live service",
        version=__version__,
        description="Live hip rotation from wearable IMUs: sensors, calibration, sessions, reps, history. "
        "WebSocket contract: docs/live-api.md.",
        lifespan=lifespan,
    )

    @app.exception_handler(UnknownDrillError)
    async def _unknown_drill(request: Request, exc: UnknownDrillError) -> JSONResponse:
        return _error(404 if request.method == "GET" else 422, exc)

    for exc_type, code in (
        (NotFoundError, 404), (UnknownAthleteError, 404), (ConflictError, 409), (DuplicateAthleteError, 409),
        (ConfigurationError, 422), (StorageUnavailableError, 503), (StorageError, 503), (SensorhubError, 400),
    ):
        app.add_exception_handler(exc_type, lambda _r, e, code=code: _error(code, e))  # type: ignore[misc]

    for module in (health, drills, athletes, sessions, sensors, streams, calibration, history, live):
        app.include_router(module.router)
    # Token, size limits, CORS and /login; before the dashboard mount so /login is not a static file.
    install_security(app, settings.security, settings.host)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        return FileResponse(plotly_js_path(), media_type="application/javascript")

    dashboards = settings.dashboards_dir
    if dashboards is not None and Path(dashboards).is_dir():
        # Mounted last: the API routes above take precedence over files.
        app.mount("/", StaticFiles(directory=dashboards, html=True), name="dashboard")
    return app
