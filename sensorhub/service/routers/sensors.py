"""``/api/sensors``: status of every sensor seen, and its assignment to an athlete's segment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response, status

from sensorhub.service.routers.deps import HubDep
from sensorhub.service.schemas import SensorAssignmentIn

router = APIRouter(prefix="/api/sensors", tags=["sensors"])


def _one(hub: Any, sensor_id: str) -> dict[str, Any]:
    for s in hub.sensors_json():
        if s["sensor_id"] == sensor_id:
            return s  # type: ignore[no-any-return]
    raise HTTPException(404, f"no sensor {sensor_id!r}")


@router.get("")
async def list_sensors(hub: HubDep) -> list[dict[str, Any]]:
    return hub.sensors_json()


@router.get("/{sensor_id}")
async def get_sensor(sensor_id: str, hub: HubDep) -> dict[str, Any]:
    return _one(hub, sensor_id)


@router.put("/{sensor_id}/assignment")
async def assign(sensor_id: str, body: SensorAssignmentIn, hub: HubDep) -> dict[str, Any]:
    if body.segment == "thigh" and body.side is None:
        raise HTTPException(422, "a thigh sensor needs 'side' (left or right)")
    if body.athlete not in hub.athletes:
        raise HTTPException(422, f"unknown athlete {body.athlete!r}; create it with POST /api/athletes")
    hub.assign_sensor(sensor_id, body.athlete, body.segment, body.side)
    return _one(hub, sensor_id)


@router.delete("/{sensor_id}/assignment", status_code=status.HTTP_204_NO_CONTENT)
async def unassign(sensor_id: str, hub: HubDep) -> Response:
    hub.unassign_sensor(sensor_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
