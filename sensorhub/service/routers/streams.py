"""``/api/streams``: the measured hips (athlete/side) with calibration and session state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sensorhub.service.routers.deps import HubDep

router = APIRouter(prefix="/api/streams", tags=["streams"])


@router.get("")
async def list_streams(hub: HubDep) -> list[dict[str, Any]]:
    return hub.streams_json()
