"""``GET /api/health``: is the service up, what does it run on, how is storage."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sensorhub import __version__
from sensorhub.service.routers.deps import HubDep

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health")
async def health(hub: HubDep) -> dict[str, Any]:
    return {"status": "ok", "version": __version__, "mode": hub.mode, "uptime_s": round(hub.uptime_s, 3),
            "clients": len(hub.broadcaster), "storage": hub.storage_json()}
