"""The live hub service: FastAPI app, runtime, WebSocket fan-out, metrics.

``create_app(settings)`` (:mod:`.main`) builds the app; :class:`~.hub.Hub` is the runtime;
``sensorhub serve`` runs it under uvicorn. The REST/WebSocket contract is ``docs/live-api.md``.
"""

from sensorhub.service.main import create_app
from sensorhub.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
