"""``/api/calibration``: the guided protocol (steps), live status per stream, restart, result."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from sensorhub.service import views
from sensorhub.service.routers.deps import HubDep
from sensorhub.service.schemas import CalibrationStart

router = APIRouter(prefix="/api/calibration", tags=["calibration"])


def _stream(hub: HubDep, key: str) -> Any:
    stream = hub.streams.get(key)
    if stream is None:
        raise HTTPException(404, f"no stream {key!r}; known: {sorted(hub.streams)}")
    return stream


@router.get("")
async def status(hub: HubDep, key: str | None = None) -> list[dict[str, Any]] | dict[str, Any]:
    if key is not None:
        return hub.calibration_json(_stream(hub, key))
    return [hub.calibration_json(s) for s in hub.streams.values()]


@router.get("/steps")
async def steps() -> list[dict[str, Any]]:
    return views.calibration_steps_json()


@router.post("/start")
async def start(body: CalibrationStart, hub: HubDep) -> dict[str, Any]:
    return hub.calibration_json(hub.restart_calibration(body.key))


@router.get("/result")
async def result(key: str, hub: HubDep) -> dict[str, Any]:
    out = hub.calibration_json(_stream(hub, key))
    if out["result"] is None:
        raise HTTPException(404, f"{key}: no calibration result yet (step {out['step']})")
    return {"key": key, **out["result"]}
