"""``/api/athletes``: create, list, read, update, delete athletes (the service's register)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, status

from sensorhub.service.limits import AthleteIdPath
from sensorhub.service.privacy import erase_athlete
from sensorhub.service.routers.deps import HubDep
from sensorhub.service.schemas import AthleteCreate, AthleteOut, AthleteUpdate

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/athletes", tags=["athletes"])


@router.get("", response_model=list[AthleteOut])
async def list_athletes(hub: HubDep) -> list[AthleteOut]:
    return [AthleteOut(id=a.id, name=a.name, notes=a.notes) for a in hub.athletes.list()]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AthleteOut)
async def create_athlete(body: AthleteCreate, hub: HubDep) -> AthleteOut:
    a = hub.athletes.create(body.name, body.id, body.notes)
    return AthleteOut(id=a.id, name=a.name, notes=a.notes)


@router.get("/{athlete_id}", response_model=AthleteOut)
async def get_athlete(athlete_id: AthleteIdPath, hub: HubDep) -> AthleteOut:
    a = hub.athletes.get(athlete_id)
    return AthleteOut(id=a.id, name=a.name, notes=a.notes)


@router.put("/{athlete_id}", response_model=AthleteOut)
async def update_athlete(athlete_id: AthleteIdPath, body: AthleteUpdate, hub: HubDep) -> AthleteOut:
    a = hub.athletes.update(athlete_id, name=body.name, notes=body.notes)
    return AthleteOut(id=a.id, name=a.name, notes=a.notes)


@router.delete("/{athlete_id}")
async def delete_athlete(athlete_id: AthleteIdPath, hub: HubDep) -> dict[str, Any]:
    """Erase the athlete everywhere (register, sessions, reps, angles, assignments, recordings in the
    data directory); the report lists what was removed and recordings kept elsewhere (docs/privacy.md)."""
    report = await erase_athlete(hub, athlete_id, Path(hub.settings.storage.data_dir))
    return report.to_json()
